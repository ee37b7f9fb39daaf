import Foundation
import Torch

/// Trains a classifier into a run directory: SGD with Nesterov momentum, weight decay, warm-up
/// then cosine decay, augmentation, optional label smoothing and PGD adversarial training;
/// atomic checkpoints every N steps and on Ctrl-C; `resume` continues exactly where it stopped.
public final class ClassifierTrainer {
  public let run: RunDirectory
  public let config: ClassifierConfig
  public let options: ClassifierTrainingOptions
  let train: Dataset
  let test: Dataset
  let classifier: NetworkClassifier
  let optimizer: SGD
  let loader: DataLoader
  let augmentGenerator: Generator
  let attackGenerator: Generator
  let schedule: LinearWarmup<CosineSchedule>
  /// Where the network, batches and losses live (`--device`); augmentation and attack noise are
  /// drawn on the CPU and moved, so a seed gives the same draws on every device.
  public let device: Device
  public private(set) var step = 0
  /// Where progress lines go (standard error by default); set to nil for silence in tests.
  public var log: ((String) -> Void)? = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
  public var showProgress = true

  /// Prepares a run; `config` describes the network (its classes and input come from `train`).
  public init(
    run: RunDirectory, config: ClassifierConfig, options: ClassifierTrainingOptions, train: Dataset, test: Dataset,
    device: Device = .cpu
  ) throws {
    try device.checkAvailable()
    self.device = device
    guard train.classCount == config.classCount, train.channels == config.channels, train.resolution == config.resolution else {
      throw RunError("the classifier expects \(config.channels)×\(config.resolution)² images in \(config.classCount) classes; the data set has \(train.channels)×\(train.resolution)² in \(train.classCount)")
    }
    try checkClassNames(config.classNames, against: test)
    self.run = run
    var config = config
    config.training = options  // config.json records how the weights were made
    self.config = config
    self.options = options
    self.train = try options.trainCount.map { try Subset(train, count: $0) } ?? train
    self.test = test
    classifier = try NetworkClassifier(config: config, generator: Generator(seed: options.seed))
    classifier.move(to: device)
    // Channels-last convolution weights and images: oneDNN's CPU convolutions skip their layout
    // conversions (benchmarks/README.md). Saved weights are in standard order regardless.
    classifier.model.convertToChannelsLast()
    optimizer = SGD(
      classifier.model.namedParameters(), learningRate: options.learningRate, momentum: options.momentum,
      weightDecay: options.weightDecay, nesterov: options.momentum > 0)
    loader = DataLoader(self.train, batchSize: options.batchSize, shuffle: true, dropLast: true, seed: options.seed)
    guard loader.batchCount > 0 else {
      throw RunError("the training set has \(self.train.count) examples, fewer than one batch of \(options.batchSize)")
    }
    augmentGenerator = Generator(seed: options.seed &+ 1)
    attackGenerator = Generator(seed: options.seed &+ 2)
    let total = options.epochs * loader.batchCount
    schedule = LinearWarmup(CosineSchedule(base: options.learningRate, totalSteps: total), warmupSteps: min(options.warmupSteps, total / 10))
  }

  public var totalSteps: Int { options.epochs * loader.batchCount }

  // MARK: checkpoints

  /// Writes weights, optimizer state, step and generator states atomically.
  public func saveCheckpoint() throws {
    var tensors: [(name: String, tensor: Tensor)] = classifier.model.stateDict().map { ("model.\($0.name)", $0.tensor) }
    tensors += optimizer.stateTensors().map { ("optimizer.\($0.name)", $0.tensor) }
    tensors.append(("rng.augment", augmentGenerator.state))
    tensors.append(("rng.attack", attackGenerator.state))
    try Safetensors.write(tensors, metadata: ["step": String(step), "config": try config.jsonString(), "format": "afterimage-classifier-checkpoint"], to: run.checkpointURL)
  }

  /// Restores the state saved by `saveCheckpoint`.
  public func loadCheckpoint() throws {
    let (file, saved) = try run.readCheckpoint(kind: "classifier")
    let tensors = file.dictionary
    let section = file.section
    do {
      try classifier.model.loadStateDict(section("model."))
      try optimizer.loadState(section("optimizer."))
    } catch let error as TorchError {
      throw RunError("\(run.checkpointURL.path) does not fit this run: \(error.message)")
    }
    guard let augment = tensors["rng.augment"], let attack = tensors["rng.attack"] else {
      throw RunError("\(run.checkpointURL.path) lacks its generator states")
    }
    try augmentGenerator.restore(augment)
    try attackGenerator.restore(attack)
    step = saved
  }

  // MARK: training

  /// Trains until `options.epochs` are done, Ctrl-C, or step `stopAfter` (which, like Ctrl-C,
  /// leaves a checkpoint to resume from); returns what was measured.
  @discardableResult
  public func fit(resume: Bool, stopAfter: Int? = nil) throws -> ClassifierTrainingSummary {
    try run.create()
    if resume {
      try loadCheckpoint()
      try run.truncateMetrics(after: step)
      log?("resuming \(run.url.path) at step \(step) of \(totalSteps)")
    } else {
      try? FileManager.default.removeItem(at: run.metricsURL)
    }
    try run.writeJSON(config, to: run.configURL)
    Interruption.install()
    let start = Date()
    let perEpoch = loader.batchCount
    let progress = ProgressBar(total: totalSteps, label: "train", unit: "img", startingAt: step)
    var correct = 0.0
    var seen = 0.0
    var images = 0
    var interrupted = false
    training: while step < totalSteps {
      let epoch = step / perEpoch
      let skip = step % perEpoch
      let batches = loader.epoch(epoch, startingAt: skip).makeIterator()
      while let batch = batches.next() {
        optimizer.learningRate = schedule.learningRate(at: step)
        let (loss, hits) = try trainingStep(batch)
        step += 1
        images += batch.labels.count
        correct += hits
        seen += Double(batch.labels.count)
        if step % 25 == 0 || step == totalSteps {
          try run.appendMetrics(["loss": loss, "train_accuracy": correct / seen, "lr": optimizer.learningRate], step: step)
        }
        if showProgress {
          progress.update(step, items: images, metrics: ["epoch": "\(epoch + 1)/\(options.epochs)", "loss": String(format: "%.3f", loss), "acc": String(format: "%.1f%%", 100 * correct / max(seen, 1))])
        }
        if step % options.checkpointEvery == 0 { try saveCheckpoint() }
        if Interruption.requested || step == stopAfter {
          interrupted = true
          break training
        }
        if step % perEpoch == 0 { break }
      }
      if let error = batches.error { throw error }
      if step % perEpoch == 0 {
        let accuracy = try ClassifierEvaluation.evaluate(classifier, on: test, limit: options.evaluationCount).cleanAccuracy
        try run.appendMetrics(["test_accuracy": accuracy, "epoch": Double(step / perEpoch)], step: step)
        log?(String(format: "epoch %d: test accuracy %.2f%%", step / perEpoch, 100 * accuracy))
        correct = 0
        seen = 0
      }
    }
    try saveCheckpoint()
    let seconds = Date().timeIntervalSince(start)
    if interrupted {
      log?("stopped at step \(step); checkpoint saved. Continue with --resume.")
      return ClassifierTrainingSummary(steps: step, seconds: seconds, trainAccuracy: correct / max(seen, 1), evaluation: nil, interrupted: true)
    }
    classifier.train(false)
    try Classifiers.save(classifier, to: run)
    return ClassifierTrainingSummary(steps: step, seconds: seconds, trainAccuracy: correct / max(seen, 1), evaluation: nil, interrupted: false)
  }

  /// One SGD step on `batch` (replaced by its PGD examples in adversarial training); returns the
  /// loss and the number of correct predictions.
  public func trainingStep(_ batch: Batch) throws -> (loss: Double, correct: Double) {
    let augmentation = Augmentation(
      cropPadding: options.cropPadding, horizontalFlip: options.horizontalFlip, brightness: options.brightness,
      contrast: options.contrast, saturation: options.saturation)
    let labels = batch.labels.to(device)
    var images = augmentation(batch.images.to(device), generator: augmentGenerator).channelsLast()  // [B, C, H, W]
    if let attack = options.adversarial {
      images = try Attacks.perturb(images, labels: labels, classifier: classifier, spec: attack, generator: attackGenerator)
    }
    classifier.train(true)
    let logits = (options.precision ?? .float32).run(on: device) { classifier.logits(images) }.to(.float32)  // [B, K]
    let loss = Loss.crossEntropy(logits, labels, labelSmoothing: options.labelSmoothing)
    optimizer.zeroGrad()
    loss.backward()
    optimizer.step()
    let value = loss.item()
    guard value.isFinite else {
      throw RunError("the loss became \(value) at step \(step + 1); the last checkpoint is kept. Lower --lr and --resume, or start again")
    }
    let correct = withNoGrad { (logits.argmax(dim: 1) .== labels).to(.float32).sum().item() }
    return (value, correct)
  }
}

/// The first `count` examples of a data set.
final class Subset: Dataset {
  let base: Dataset
  let count: Int
  init(_ base: Dataset, count: Int) throws {
    guard count > 0 && count <= base.count else {
      throw RunError("asked for \(count) examples of \(base.name), which has \(base.count)")
    }
    self.base = base
    self.count = count
  }
  var name: String { base.name }
  var channels: Int { base.channels }
  var resolution: Int { base.resolution }
  var classNames: [String] { base.classNames }
  func example(at index: Int) throws -> Example { try base.example(at: index) }
  func batch(at indices: [Int]) throws -> Batch { try base.batch(at: indices) }
}
