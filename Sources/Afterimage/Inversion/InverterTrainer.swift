import Foundation
import Torch

/// Trains a BigGAN inverter conditioned on a classifier's logits (or one of its feature maps)
/// into a run directory.
///
/// `init` sets up: the frozen classifier and its representation (`config.representation`: its
/// logits, or a pooled feature map) of the un-augmented training set (from `RepresentationCache`), the losses (`InverterObjective`), the networks and optimisers
/// (`InverterState`), the loader and the sample grid. `fit` is the loop; each `trainingStep`
/// is a batch, `dSteps` discriminator updates on real and fake images in one pass (both paired
/// with the real image's logits), one generator update, then the EMA of G.
public final class InverterTrainer {
  public typealias StepLosses = InverterStepLosses
  public let run: RunDirectory
  /// The run's config, with the logit statistics filled in when they standardise the logits.
  public let config: InverterConfig
  /// Where the networks, batches and losses live (`--device`). Noise and shuffling are drawn on
  /// the CPU and moved, so a seed gives the same draws on every device.
  public let device: Device
  public let state: InverterState
  let objective: InverterObjective
  /// The classifier's raw representation of the training set `[N, D]` (logits: D = K), on the CPU.
  let representations: Tensor
  public let loader: DataLoader
  let samples: InverterSamples
  public var log: ((String) -> Void)? = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
  public var showProgress = true
  /// The job's process group in a data-parallel run (see `init`).
  public let group: ProcessGroup?
  /// Whether this process writes the run's files: the only one, or rank 0.
  public var isWriter: Bool { (group?.rank ?? 0) == 0 }

  /// Generator updates done.
  public var step: Int { state.step }

  /// - Parameters:
  ///   - classifierPath: recorded in config.json so the run can find its classifier again.
  ///   - perceptualNetwork: the evaluation classifier, when the losses name one, and where it
  ///     was read from (its weights' digest is recorded like the classifier's).
  ///   - datasetKey: names the training set in the logit cache's key.
  ///   - device: where to train; the classifiers are moved there.
  ///   - group: the job's process group when this is one rank of a data-parallel run: it takes
  ///     its slice of every batch and of every batch's noise, gradients are averaged over the
  ///     ranks before each optimiser step (G's and D's), losses and Ctrl-C are agreed every step,
  ///     and rank 0 alone writes. Batch norm normalises with each rank's own batch statistics;
  ///     the running statistics are averaged over the ranks after every step.
  public init(
    run: RunDirectory, config: InverterConfig, classifier: any ImageClassifier, classifierPath: String,
    perceptualNetwork: (any ImageClassifier)? = nil, perceptualNetworkPath: String? = nil, train: Dataset, heldOut: Dataset,
    datasetKey: String, device: Device = .cpu, group: ProcessGroup? = nil
  ) throws {
    self.group = group
    if let group, config.training.batchSize % group.worldSize != 0 {
      throw RunError("a batch of \(config.training.batchSize) does not split evenly over \(group.worldSize) processes: choose a --batch-size divisible by \(group.worldSize)")
    }
    try config.checkFits(classifier: classifier, train: train)
    try InverterObjective.check(config.losses, preset: config.preset, classifier: classifier, perceptualNetwork: perceptualNetwork)
    try device.checkAvailable()
    if config.training.precision == .bf16 && device == .cpu {
      FileHandle.standardError.write(Data("note: bf16 autocast on the CPU is slow without AMX or AVX-512 BF16 (mixed precision is for CUDA)\n".utf8))
    }
    self.device = device
    self.run = run
    let options = config.training
    let subset: Dataset = try options.trainCount.map { try Subset(train, count: $0) } ?? train
    try Self.freeze(classifier, perceptualNetwork, on: device)
    let cached = try RepresentationCache.values(
      of: config.representation, classifier: classifier, classifierPath: classifierPath, dataset: train, datasetKey: datasetKey)
    let representations = cached.narrow(dim: 0, start: 0, length: subset.count)
    self.representations = representations
    let config = try config.stamped(
      classifier: classifier, classifierPath: classifierPath, perceptualNetwork: perceptualNetwork, perceptualNetworkPath: perceptualNetworkPath,
      train: train, heldOut: heldOut, representationValues: representations, run: run.url.path)
    self.config = config
    var objective = InverterObjective(
      weights: config.losses, orthogonalRegularization: options.orthogonalRegularization, classifier: classifier,
      perceptualNetwork: perceptualNetwork, representation: config.representation, logitScale: max(representations.standardDeviation().item(), 1e-6),
      precision: options.forwardPrecision, device: device)
    objective.seed = options.seed
    self.objective = objective
    state = try InverterState(config: config, device: device)
    // Channels-last like G and D (InverterState), after the logit cache has run.
    for network in [classifier.network, perceptualNetwork?.network].compactMap({ $0 }) { network.convertToChannelsLast() }
    loader = DataLoader(
      subset, batchSize: options.batchSize, shuffle: true, dropLast: true, seed: options.seed,
      shard: group.map { DataLoader.Shard(rank: $0.rank, count: $0.worldSize) })
    guard loader.batchCount > 0 else {
      throw RunError("the training set has \(subset.count) examples, fewer than one batch of \(options.batchSize)")
    }
    samples = try InverterSamples(
      heldOut: heldOut, classifier: classifier, representation: config.representation, noiseSize: state.generator.noiseSize, seed: options.seed &+ 2, device: device)
  }

  // MARK: the loop (`TrainingLoop`)

  /// Trains to `config.training.steps` (or `stopAfter`, or Ctrl-C, which leave a checkpoint to
  /// resume from) with `TrainingLoop`; at the end writes the EMA generator to model.safetensors
  /// and, on the writer, results.json.
  @discardableResult
  public func fit(resume: Bool, stopAfter: Int? = nil) throws -> InverterTrainingSummary {
    let (summary, _) = try TrainingLoop.fit(self, resume: resume, stopAfter: stopAfter)
    return InverterTrainingSummary(steps: summary.steps, stepsThisRun: summary.stepsThisRun, seconds: summary.seconds, finished: summary.finished)
  }

  // MARK: one step

  /// The noise of one step, when the caller supplies it (the benchmark's equal-work check
  /// against the PyTorch peer); otherwise it is drawn from the run's seeded generator.
  public struct StepNoise {
    /// `[B, noiseSize]` for the discriminator phase's fakes and for the generator update.
    public var discriminator: Tensor
    public var generator: Tensor
    public init(discriminator: Tensor, generator: Tensor) {
      self.discriminator = discriminator
      self.generator = generator
    }
  }

  /// The networks being trained, for loading given weights (the benchmark's equal-work check).
  public var networks: (generator: any ImageGenerator, discriminator: ProjectionDiscriminator, ema: any ImageGenerator) {
    (state.generator, state.discriminator, state.ema)
  }

  /// One discriminator phase, one generator update and the EMA. Gradient norms cost a pass over
  /// every parameter, so they are measured only when `measureGradients` (the steps that are logged).
  public func trainingStep(_ batch: Batch, noise given: StepNoise? = nil, measureGradients: Bool = true) throws -> StepLosses {
    var losses = StepLosses()
    let rawLogits = representations.indexSelect(dim: 0, index: Tensor(batch.indices.map(Int64.init))).to(device)  // [B, K]
    let conditioning = config.preprocess(rawLogits)
    let images = batch.images.to(device).channelsLast()  // [B, C, R, R] in [0, 1]
    let real = images * 2 - 1  // in [−1, 1]
    let count = batch.labels.count
    state.generator.train()
    state.discriminator.train()
    // Without an adversarial term (the up-convolutional baseline) there is no discriminator to train.
    for _ in 0..<(objective.isAdversarial ? config.training.discriminatorStepsPerGeneratorStep : 0) {
      let noise = given.map { $0.discriminator.to(device) } ?? drawNoise(count: count)
      try discriminatorStep(real: real, conditioning: conditioning, noise: noise, measureGradients: measureGradients, losses: &losses)
    }
    let noise = given.map { $0.generator.to(device) } ?? drawNoise(count: count)
    try generatorStep(
      images: images, conditioning: conditioning, rawLogits: rawLogits, noise: noise, measureGradients: measureGradients, losses: &losses)
    if let group {
      try group.averageBuffers(of: state.generator)  // batch norm's running statistics, before the EMA copies them
      losses = try group.agree(losses)
    }
    state.average.update(step: step)
    try checkDiverged(losses)
    return losses
  }

  /// Batch-norm statistics per group of B/N examples in G (`BatchNorm2d.statisticsGroups`):
  /// one process then takes the steps N data-parallel ranks take.
  public func setBatchNormGroups(_ groups: Int) {
    state.generator.setBatchNormGroups(groups)
  }

  /// Noise for `count` fakes from the run's generator. A rank of a data-parallel job draws the
  /// whole batch's noise (the same on every rank) and takes its slice, as the data loader does.
  func drawNoise(count: Int) -> Tensor {
    guard let group else { return state.drawNoise(count: count, device: device) }
    return state.drawNoise(count: count * group.worldSize, device: device).narrow(dim: 0, start: group.rank * count, length: count)
  }

  /// One D update on `real [B, C, R, R]` in [−1, 1] and on G's fakes from `noise`, in one pass
  /// over both (half the kernel launches of two passes).
  func discriminatorStep(real: Tensor, conditioning: Tensor, noise: Tensor, measureGradients: Bool, losses: inout StepLosses) throws {
    let (generator, discriminator) = (state.generator, state.discriminator)
    let scores = objective.precision.run(on: device) {
      let fake = withNoGrad { generator(representation: conditioning, noise: noise) }
      return discriminator(Tensor.cat([real, fake.to(real.dtype)], dim: 0), representation: Tensor.cat([conditioning, conditioning], dim: 0))
    }.to(.float32)  // [2B]
    let loss = objective.discriminatorLoss(scores: scores, count: real.shape[0], into: &losses)
    state.discriminatorOptimizer.zeroGrad()
    loss.backward()
    try group?.averageGradients(of: discriminator.parameters)
    if measureGradients { losses.discriminatorGradientNorm = InverterState.gradientNorm(discriminator) }
    state.discriminatorOptimizer.step()
  }

  /// One G update on its whole loss for the fakes from `noise`. D's weights take no gradients
  /// meanwhile (BigGAN-PyTorch's toggle_grad): the backward pass then skips D's weight
  /// gradients, which nothing would use.
  func generatorStep(
    images: Tensor, conditioning: Tensor, rawLogits: Tensor, noise: Tensor, measureGradients: Bool, losses: inout StepLosses
  ) throws {
    let (generator, discriminator) = (state.generator, state.discriminator)
    for parameter in discriminator.parameters { parameter.requiresGrad = false }
    defer { for parameter in discriminator.parameters { parameter.requiresGrad = true } }
    let fake = objective.precision.run(on: device) { generator(representation: conditioning, noise: noise) }.to(.float32)  // [B, C, R, R]
    let total = try objective.generatorLoss(
      fake: fake, images: images, conditioning: conditioning, rawLogits: rawLogits, generator: generator,
      discriminator: discriminator, step: step, into: &losses)
    state.generatorOptimizer.zeroGrad()
    total.backward()
    try group?.averageGradients(of: generator.parameters)
    if measureGradients { losses.generatorGradientNorm = InverterState.gradientNorm(generator) }
    state.generatorOptimizer.step()
    losses.generatorTotal = total.item()
  }

  /// Throws when a loss left the finite numbers or D's blew up, naming the checkpoint to go back to.
  func checkDiverged(_ losses: StepLosses) throws {
    let discriminatorLoss = losses.discriminatorReal + losses.discriminatorFake
    guard [losses.discriminatorReal, losses.discriminatorFake, losses.generatorTotal].allSatisfy(\.isFinite), discriminatorLoss < 1e4 else {
      throw RunError("training diverged at step \(step + 1) (D loss \(discriminatorLoss), G loss \(losses.generatorTotal)); \(run.whatIsKept(kind: "inverter"))")
    }
  }

  // MARK: set-up

  /// Freezes the classifiers on `device`: evaluation mode and no gradients for their weights,
  /// only through them to the images.
  static func freeze(_ classifier: any ImageClassifier, _ perceptualNetwork: (any ImageClassifier)?, on device: Device) throws {
    try classifier.train(false)
    for network in [classifier.network, perceptualNetwork?.network].compactMap({ $0 }) {
      network.eval()
      for parameter in network.parameters { parameter.requiresGrad = false }
    }
    try classifier.move(to: device)
    try perceptualNetwork?.move(to: device)
  }
}

extension ProcessGroup {
  /// One step's losses averaged over the ranks, so the logs, the progress line and the
  /// divergence check see the whole batch's losses on every rank.
  func agree(_ losses: InverterStepLosses) throws -> InverterStepLosses {
    let named = losses.averaged
    let mean = try self.mean(named.map(\.value))
    return losses.replacing(Dictionary(uniqueKeysWithValues: zip(named.map(\.name), mean)))
  }
}

extension InverterTrainer: TrainingTask {
  public var totalSteps: Int { config.training.steps }
  public var progressLabel: String { "invert" }

  public var trainedParameters: [Tensor] { state.generator.parameters + state.discriminator.parameters }
  public func restoreCheckpoint() throws { try state.loadCheckpoint(from: run) }

  /// One training step; every tenth (and the last) is logged, with the gradient norms.
  public func trainStep(_ batch: Batch) throws -> TrainingStepReport {
    let logged = (step + 1) % 10 == 0 || step + 1 == totalSteps
    let losses = try trainingStep(batch, measureGradients: logged)
    state.step += 1
    var metrics: [String: Double]?
    if logged {
      metrics = losses.values
      metrics?["G_lr"] = state.generatorOptimizer.learningRate
      metrics?["D_lr"] = state.discriminatorOptimizer.learningRate
    }
    // The loader gives each rank its slice of the batch.
    return TrainingStepReport(images: batch.labels.count * (group?.worldSize ?? 1), metrics: metrics, progress: [
      "D": String(format: "%.3f", losses.discriminatorReal + losses.discriminatorFake),
      "G": String(format: "%.3f", losses[.adversarial]),
      "L1": String(format: "%.3f", losses.pixel),
    ])
  }

  public func afterStep() throws {
    let options = config.training
    if step % options.sampleEvery == 0 || step == options.steps { try samples.write(ema: state.ema, config: config, step: step, to: run) }
    if step % options.checkpointEvery == 0 { try state.saveCheckpoint(to: run, config: config) }
    if options.snapshotSteps.contains(step) { try state.saveSnapshot(in: run, config: config) }
  }

  public func endOfEpoch() throws {}

  public func save(finished: Bool) throws {
    try state.saveCheckpoint(to: run, config: config)
    if finished { try state.saveModel(to: run, config: config) }
  }

  public func results(_ summary: TrainingSummary) throws -> InverterTrainingResults {
    InverterTrainingResults(
      summary: InverterTrainingSummary(steps: summary.steps, stepsThisRun: summary.stepsThisRun, seconds: summary.seconds, finished: summary.finished),
      threads: Torch.threadCount, batchSize: config.training.batchSize)
  }
}
