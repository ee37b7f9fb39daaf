// The inverter, classifier and reconstruction measurements of afterimage-bench; the peer is
// benchmarks/peer/inverter.py. Every measurement prints one JSON line.
import Afterimage
import Foundation
import Torch

/// The value after `--name`, or `fallback`.
func stringOption(_ name: String, _ fallback: String) -> String {
  let arguments = CommandLine.arguments
  guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else { return fallback }
  return arguments[index + 1]
}

/// Peak resident memory of this process so far, in MB (Linux reports KiB).
func peakMemoryMB() -> Double {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return Double(usage.ru_maxrss) / 1024
}

/// A fresh scratch folder for the classifier, the run directory and the logit cache.
func scratchFolder() -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("afterimage-bench-\(UUID().uuidString)")
  try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// Runs `body`, printing a one-line error (not a stack trace) if it throws.
func reportingErrors(_ body: () throws -> Void) {
  do { try body() } catch {
    FileHandle.standardError.write(Data("afterimage-bench: error: \(error)\n".utf8))
    exit(1)
  }
}

/// The device named by `--device` (cpu by default, as the peer runs).
func deviceOption() throws -> Device { try Device.resolve(stringOption("device", "cpu")) }

/// With `--op-trace FILE`: one more call of `step`, untimed, under libtorch's profiler, its
/// operator calls written to FILE (benchmarks/flops.py counts their FLOPs).
func traceOperations(_ step: () throws -> Void) throws {
  let path = stringOption("op-trace", "")
  guard !path.isEmpty else { return }
  try Data(try Torch.recordOperations(step).utf8).write(to: URL(fileURLWithPath: path))
}

/// Seconds of each of `repeats` calls of `step`, after `warmup` untimed ones. Each call ends
/// when the GPU has finished its queued work (a no-op on the CPU).
func timedSteps(repeats: Int, warmup: Int, _ step: () throws -> Void) throws -> [Double] {
  for _ in 0..<warmup { try step() }
  Torch.synchronize()
  var times: [Double] = []
  for _ in 0..<repeats {
    var failure: Error?
    times.append(seconds { do { try step(); Torch.synchronize() } catch { failure = error } })
    if let failure { throw failure }
  }
  return times
}

func benchmarkFields(_ mode: String, _ extra: [String: Any]) -> [String: Any] {
  var fields = environmentFields()
  fields["impl"] = "swift"
  fields["mode"] = mode
  fields["device"] = stringOption("device", "cpu")
  fields["peak_rss_mb"] = peakMemoryMB()
  return fields.merging(extra) { _, new in new }
}

/// The equal-work check: the peer's initial weights and batch, one training iteration with the
/// peer's noise, the losses and parameter counts as JSON.
func inverterFirstStep(weightsPath: String, batchPath: String) throws {
  let weights = try Safetensors.read(URL(fileURLWithPath: weightsPath))
  let batchFile = try Safetensors.read(URL(fileURLWithPath: batchPath))
  let images = try batchFile.tensor("images")
  let folder = scratchFolder()
  defer { try? FileManager.default.removeItem(at: folder) }
  // The peer records the models' shape as JSON in the metadata.
  let shape = weights.metadata["config"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
  let benchmark = try InverterBenchmark(images: images, batchSize: images.shape[0], ch: shape?["ch"] as? Int ?? 16, weights: weights, folder: folder)
  let noise = InverterTrainer.StepNoise(discriminator: try batchFile.tensor("d_noise"), generator: try batchFile.tensor("g_noise"))
  let losses = try benchmark.step(try benchmark.firstBatch(), noise: noise)
  let counts = benchmark.parameterCounts
  printJSON(benchmarkFields("first-step", [
    "d_loss_real": losses.discriminatorReal, "d_loss_fake": losses.discriminatorFake, "g_loss_adv": losses[.adversarial],
    "g_loss_pixel": losses.pixel, "g_loss_perceptual": losses[.perceptual], "g_loss_logit": losses[.logitConsistency],
    "g_params": counts.generator, "d_params": counts.discriminator, "classifier_params": counts.classifier,
  ]))
}

/// Times training iterations as `afterimage inverter train` runs them: a batch from the loader,
/// its cached logits, one D and one G update, the EMA.
func measureInverterTraining(resolution: Int, channels: Int, batchSize: Int, ch: Int, repeats: Int, warmup: Int) throws {
  let folder = scratchFolder()
  defer { try? FileManager.default.removeItem(at: folder) }
  Torch.manualSeed(0)
  let images = Tensor.rand([batchSize * 4, channels, resolution, resolution])  // the training set
  let benchmark = try InverterBenchmark(images: images, batchSize: batchSize, ch: ch, folder: folder, device: try deviceOption())
  var epoch = 0
  var batches = benchmark.batches(epoch: 0).makeIterator()
  func step() throws {
    guard let batch = batches.next() else {
      epoch += 1
      batches = benchmark.batches(epoch: epoch).makeIterator()
      return try step()
    }
    try benchmark.step(batch)
  }
  let times = try timedSteps(repeats: repeats, warmup: warmup, step)
  try traceOperations(step)
  let counts = benchmark.parameterCounts
  printJSON(benchmarkFields("train", [
    "step_times_s": times, "resolution": resolution, "channels": channels, "batch_size": batchSize, "ch": ch,
    "g_params": counts.generator, "d_params": counts.discriminator,
  ]))
}

/// Feedforward reconstruction (the EMA generator, evaluation mode, no gradients) against
/// optimisation-based inversion of the same logits, in images per second.
func measureReconstruction(resolution: Int, channels: Int, batchSize: Int, ch: Int, repeats: Int, warmup: Int, optimizeSteps: Int) throws {
  let folder = scratchFolder()
  defer { try? FileManager.default.removeItem(at: folder) }
  Torch.manualSeed(0)
  let images = Tensor.rand([batchSize, channels, resolution, resolution])
  let device = try deviceOption()
  let benchmark = try InverterBenchmark(images: images, batchSize: batchSize, ch: ch, folder: folder, device: device)
  let generator = benchmark.trainer.networks.ema
  generator.eval()
  generator.convertToChannelsLast()  // as Inverter.load prepares it for reconstruction
  let logits = try withNoGrad { try benchmark.classifier.logits(images) }
  let noise = Tensor.randn([batchSize, generator.noiseSize]).to(device)
  func reconstruct() {
    _ = withNoGrad { generator(representation: logits, noise: noise) }
    Torch.synchronize()
  }
  for _ in 0..<warmup { reconstruct() }
  let times = (0..<repeats).map { _ in seconds(reconstruct) }
  var fields: [String: Any] = ["step_times_s": times, "resolution": resolution, "channels": channels, "batch_size": batchSize, "ch": ch]
  if optimizeSteps > 0 {
    var options = OptimizationInversion.Options()
    options.steps = optimizeSteps
    var failure: Error?
    var logitError = Double.nan
    let elapsed = seconds {
      do { logitError = try OptimizationInversion.invert(logits, classifier: benchmark.classifier, options: options).logitError } catch { failure = error }
    }
    if let failure { throw failure }
    fields["optimize_s"] = elapsed
    fields["optimize_logit_mse"] = logitError  // how far the optimisation got: it is still falling at 2000 steps
    fields["optimize_steps"] = optimizeSteps
  }
  printJSON(benchmarkFields("reconstruct", fields))
}

/// Times classifier training steps (ResNet-20 ½, batch 128, SGD with Nesterov momentum):
/// standard, or Madry PGD-7 (L∞ 8/255, steps ε/4) adversarial training.
func measureClassifierStep(adversarial: Bool, resolution: Int, channels: Int, batchSize: Int, repeats: Int, warmup: Int) throws {
  let folder = scratchFolder()
  defer { try? FileManager.default.removeItem(at: folder) }
  Torch.manualSeed(0)
  let count = batchSize * 4
  let images = (Tensor.rand([count, channels, resolution, resolution]) * 255).round().to(.uint8)  // 8-bit pixels
  let labels = (0..<count).map { Int64($0 % 10) }
  let data = InMemoryDataset(name: "synthetic", classNames: (0..<10).map { "class \($0)" }, pixels: images, labels: labels)
  let config = ClassifierConfig(
    architecture: .resnet20, width: 0.5, channels: channels, resolution: resolution, classNames: data.classNames,
    normalization: Normalization(mean: Array(repeating: 0.5, count: channels), std: Array(repeating: 0.25, count: channels)))
  var options = ClassifierTrainingOptions()
  options.batchSize = batchSize
  options.epochs = 1000
  if adversarial { options.adversarial = AttackSpec(norm: .linf, epsilon: 8.0 / 255, steps: 7, stepSize: 2.0 / 255) }
  let trainer = try ClassifierTrainer(run: RunDirectory(url: folder), config: config, options: options, train: data, test: data, device: try deviceOption())
  let loader = DataLoader(data, batchSize: batchSize, shuffle: true, dropLast: true, seed: 0)
  var epoch = 0
  var batches = loader.epoch(0).makeIterator()
  func step() throws {
    guard let batch = batches.next() else {
      epoch += 1
      batches = loader.epoch(epoch).makeIterator()
      return try step()
    }
    _ = try trainer.trainingStep(batch)
  }
  let times = try timedSteps(repeats: repeats, warmup: warmup, step)
  try traceOperations(step)
  printJSON(benchmarkFields(adversarial ? "classifier-adversarial" : "classifier-standard", [
    "step_times_s": times, "resolution": resolution, "channels": channels, "batch_size": batchSize,
  ]))
}

/// The same work on the CPU and on `--device`: one inverter training iteration at 32×32 and at
/// 64×64 from the same seeded weights, batch and noise (TF32 off, so both sides compute in
/// float32), and classifier logits; prints the losses of each side and their largest relative
/// difference as JSON.
func deviceParity() throws {
  let device = try deviceOption()
  Torch.allowTF32(false)
  defer { Torch.allowTF32(true) }
  var rows: [[String: Any]] = []
  for (resolution, channels) in [(32, 1), (64, 3)] {
    Torch.manualSeed(0)
    let images = Tensor.rand([32, channels, resolution, resolution])
    let noise = InverterTrainer.StepNoise(
      discriminator: Tensor.randn([16, 64], generator: Generator(seed: 5)), generator: Tensor.randn([16, 64], generator: Generator(seed: 6)))
    var losses: [[Double]] = []
    var logits: [Tensor] = []
    for side in [Device.cpu, device] {
      let folder = scratchFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      let benchmark = try InverterBenchmark(images: images, batchSize: 16, ch: 8, folder: folder, device: side)
      let step = try benchmark.step(try benchmark.firstBatch(), noise: noise)
      losses.append([step.discriminatorReal, step.discriminatorFake, step[.adversarial], step.pixel, step[.perceptual], step[.logitConsistency]])
      logits.append(try withNoGrad { try benchmark.classifier.logits(images) }.to(.cpu))
    }
    let relative = zip(losses[0], losses[1]).map { abs($0 - $1) / max(abs($0), 1e-6) }.max() ?? 0
    let logitDifference = (logits[0] - logits[1]).abs().max().item()
    rows.append([
      "resolution": resolution, "channels": channels, "cpu_losses": losses[0], "device_losses": losses[1],
      "largest_relative_loss_difference": relative, "largest_logit_difference": logitDifference,
    ])
  }
  printJSON(benchmarkFields("device-parity", ["rows": rows]))
}
