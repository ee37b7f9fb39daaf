import Foundation
import Torch

/// Trains a logit-conditioned BigGAN inverter into a run directory.
///
/// Each step: `dSteps` discriminator updates on real and fake images in one pass (both paired
/// with the real image's logits), then one generator update on the hinge loss plus any
/// reconstruction terms, then the EMA of G. The classifier is frozen and its logits for the
/// un-augmented training set come from `LogitCache`.
public final class InverterTrainer {
  public let run: RunDirectory
  public private(set) var config: InverterConfig
  let classifier: any ImageClassifier
  let perceptualNetwork: (any ImageClassifier)?
  let train: Dataset
  let logits: Tensor  // [N, K], raw
  /// The standard deviation of all cached logits: the logit-consistency term compares logits in
  /// this unit, so its weight means the same for a confident classifier (logits of ±20) as for
  /// a hesitant one.
  let logitScale: Double
  let generatorNet: any ImageGenerator
  let ema: any ImageGenerator
  let discriminator: ProjectionDiscriminator
  let generatorOptimizer: Adam
  let discriminatorOptimizer: Adam
  let average: ExponentialMovingAverage
  let loader: DataLoader
  let noiseGenerator: Generator
  let sampleImages: Tensor  // fixed held-out originals [S, C, R, R]
  let sampleLogits: Tensor
  let sampleNoise: Tensor
  /// Where the networks, batches and losses live (`--device`). Noise and shuffling are drawn on
  /// the CPU and moved, so a seed gives the same draws on every device.
  public let device: Device
  public private(set) var step = 0
  public var log: ((String) -> Void)? = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
  public var showProgress = true

  /// - Parameters:
  ///   - classifierPath: recorded in config.json so the run can find its classifier again.
  ///   - perceptualNetwork: the evaluation classifier, when the losses name one.
  ///   - device: where to train; the classifiers are moved there.
  public init(
    run: RunDirectory, config: InverterConfig, classifier: any ImageClassifier, classifierPath: String,
    perceptualNetwork: (any ImageClassifier)? = nil, train: Dataset, heldOut: Dataset, datasetKey: String,
    device: Device = .cpu
  ) throws {
    guard classifier.config.classCount == config.logitCount else {
      throw RunError("the classifier gives \(classifier.config.classCount) logits; the inverter config says \(config.logitCount)")
    }
    guard train.channels == config.channels, train.resolution == config.resolution else {
      throw RunError("the inverter makes \(config.channels)×\(config.resolution)² images; the data set has \(train.channels)×\(train.resolution)²")
    }
    guard classifier.config.channels == train.channels, classifier.config.resolution == train.resolution else {
      throw RunError("the classifier takes \(classifier.config.channels)×\(classifier.config.resolution)² images; the data set has \(train.channels)×\(train.resolution)²")
    }
    let usesFeatures = config.losses.perceptual > 0
    if !classifier.isDifferentiable && (config.losses.logitConsistency > 0 || (usesFeatures && perceptualNetwork == nil)) {
      throw RunError("the \(config.preset) preset's logit-consistency and perceptual losses need gradients through the classifier, and \(classifier.config.architecture.rawValue) models compute logits only: use --preset paper (adversarial loss only), or import the model as TorchScript")
    }
    if usesFeatures {
      let network = perceptualNetwork ?? classifier
      let missing = config.losses.perceptualLayers.filter { !network.featureNames.contains($0) }
      guard !config.losses.perceptualLayers.isEmpty, missing.isEmpty else {
        throw RunError("the perceptual loss needs feature maps the network has (\(network.featureNames.joined(separator: ", "))); asked for \(config.losses.perceptualLayers.joined(separator: ", "))")
      }
    }
    try device.checkAvailable()
    if config.training.precision == .bf16 && device == .cpu {
      FileHandle.standardError.write(Data("note: bf16 autocast on the CPU is slow without AMX or AVX-512 BF16 (mixed precision is for CUDA)\n".utf8))
    }
    self.device = device
    self.run = run
    self.config = config
    self.classifier = classifier
    self.perceptualNetwork = perceptualNetwork
    let subset: Dataset = try config.training.trainCount.map { try Subset(train, count: $0) } ?? train
    self.train = subset
    try classifier.train(false)
    // The classifier is frozen: no gradients for its weights, only through it to the images.
    for network in [classifier.network, perceptualNetwork?.network].compactMap({ $0 }) {
      network.eval()
      for parameter in network.parameters { parameter.requiresGrad = false }
    }
    try classifier.move(to: device)
    try perceptualNetwork?.move(to: device)
    let allLogits = try LogitCache.logits(classifier: classifier, classifierPath: classifierPath, dataset: train, datasetKey: datasetKey)
    logits = allLogits.narrow(dim: 0, start: 0, length: subset.count)
    logitScale = max(logits.standardDeviation().item(), 1e-6)
    if config.preprocessing == .standardized && config.logitMean.isEmpty {
      self.config.logitMean = logits.mean(dims: [0]).scalars(as: Double.self)
      self.config.logitStd = logits.standardDeviation(dims: [0]).scalars(as: Double.self)
    }
    let options = config.training
    let initGenerator = Generator(seed: options.seed)
    generatorNet = try config.makeGenerator(generator: initGenerator)
    discriminator = try config.makeDiscriminator(generator: initGenerator)
    ema = try config.makeGenerator(generator: initGenerator)
    for network in [generatorNet, discriminator, ema] as [Module] { network.move(to: device) }
    average = try ExponentialMovingAverage(
      source: generatorNet, target: ema, decay: options.effectiveEMADecay, startStep: options.effectiveEMAStart)
    // Channels-last convolution weights and images: oneDNN's CPU convolutions then skip their
    // layout conversions (benchmarks/README.md). The EMA generator, which reconstructs and is
    // saved, keeps the standard layout; files are written in standard order either way.
    for network in [generatorNet, discriminator] as [Module] + [classifier.network, perceptualNetwork?.network].compactMap({ $0 }) {
      network.convertToChannelsLast()
    }
    generatorOptimizer = Adam(generatorNet.namedParameters(), learningRate: options.generatorLearningRate, beta1: options.beta1, beta2: options.beta2)
    discriminatorOptimizer = Adam(discriminator.namedParameters(), learningRate: options.discriminatorLearningRate, beta1: options.beta1, beta2: options.beta2)
    loader = DataLoader(subset, batchSize: options.batchSize, shuffle: true, dropLast: true, seed: options.seed)
    guard loader.batchCount > 0 else {
      throw RunError("the training set has \(subset.count) examples, fewer than one batch of \(options.batchSize)")
    }
    noiseGenerator = Generator(seed: options.seed &+ 1)
    // Fixed held-out originals and noise for the sample grids.
    let sampleCount = min(16, heldOut.count)
    let samples = try heldOut.batch(at: Array(0..<sampleCount))
    let heldOutImages = samples.images.to(device)
    sampleImages = heldOutImages
    sampleLogits = try withNoGrad { try classifier.logits(heldOutImages) }
    sampleNoise = Tensor.randn([sampleCount, generatorNet.noiseSize], generator: Generator(seed: options.seed &+ 2)).to(device)
  }

  // MARK: checkpoints

  public func saveCheckpoint() throws {
    var tensors: [(name: String, tensor: Tensor)] = []
    tensors += generatorNet.stateDict().map { ("G.\($0.name)", $0.tensor) }
    tensors += ema.stateDict().map { ("G_ema.\($0.name)", $0.tensor) }
    tensors += discriminator.stateDict().map { ("D.\($0.name)", $0.tensor) }
    tensors += generatorOptimizer.stateTensors().map { ("G_optimizer.\($0.name)", $0.tensor) }
    tensors += discriminatorOptimizer.stateTensors().map { ("D_optimizer.\($0.name)", $0.tensor) }
    tensors.append(("rng.noise", noiseGenerator.state))
    try Safetensors.write(tensors, metadata: ["step": String(step), "config": try config.jsonString(), "format": "afterimage-inverter-checkpoint"], to: run.checkpointURL)
  }

  public func loadCheckpoint() throws {
    let (file, saved) = try run.readCheckpoint(kind: "inverter")
    let tensors = file.dictionary
    let section = file.section
    do {
      try generatorNet.loadStateDict(section("G."))
      try ema.loadStateDict(section("G_ema."))
      try discriminator.loadStateDict(section("D."))
      try generatorOptimizer.loadState(section("G_optimizer."))
      try discriminatorOptimizer.loadState(section("D_optimizer."))
    } catch let error as TorchError {
      throw RunError("\(run.checkpointURL.path) does not fit this inverter: \(error.message)")
    }
    guard let noise = tensors["rng.noise"] else { throw RunError("\(run.checkpointURL.path) lacks its generator state") }
    try noiseGenerator.restore(noise)
    step = saved
  }

  // MARK: training

  /// The losses of one step, for logs.
  public struct StepLosses {
    public var discriminatorReal = 0.0, discriminatorFake = 0.0, generatorAdversarial = 0.0
    public var pixel = 0.0, perceptual = 0.0, logit = 0.0
    public var scoreReal = 0.0, scoreFake = 0.0, generatorGradientNorm = 0.0, discriminatorGradientNorm = 0.0
    public var values: [String: Double] {
      ["D_loss_real": discriminatorReal, "D_loss_fake": discriminatorFake, "G_loss_adv": generatorAdversarial,
       "G_loss_pixel": pixel, "G_loss_perceptual": perceptual, "G_loss_logit": logit, "D_real": scoreReal,
       "D_fake": scoreFake, "G_grad_norm": generatorGradientNorm, "D_grad_norm": discriminatorGradientNorm]
    }
  }

  /// Trains to `config.training.steps` (or `stopAfter`, or Ctrl-C, which leave a checkpoint).
  public func fit(resume: Bool, stopAfter: Int? = nil) throws {
    try run.create()
    if resume {
      try loadCheckpoint()
      try run.truncateMetrics(after: step)
      log?("resuming \(run.url.path) at step \(step) of \(config.training.steps)")
    } else {
      try? FileManager.default.removeItem(at: run.metricsURL)
    }
    try run.writeJSON(config, to: run.configURL)
    Interruption.install()
    let options = config.training
    let perEpoch = loader.batchCount
    let progress = ProgressBar(total: options.steps, label: "invert", unit: "img", startingAt: step)
    var images = 0
    training: while step < options.steps {
      let batches = loader.epoch(step / perEpoch, startingAt: step % perEpoch).makeIterator()
      while let batch = batches.next() {
        let logged = (step + 1) % 10 == 0 || step + 1 == options.steps
        let losses = try trainingStep(batch, measureGradients: logged)
        step += 1
        images += batch.labels.count
        if logged {
          var values = losses.values
          values["G_lr"] = generatorOptimizer.learningRate
          values["D_lr"] = discriminatorOptimizer.learningRate
          try run.appendMetrics(values, step: step)
        }
        if showProgress {
          progress.update(step, items: images, metrics: [
            "D": String(format: "%.3f", losses.discriminatorReal + losses.discriminatorFake),
            "G": String(format: "%.3f", losses.generatorAdversarial),
            "L1": String(format: "%.3f", losses.pixel),
          ])
        }
        if step % options.sampleEvery == 0 || step == options.steps { try writeSamples() }
        if step % options.checkpointEvery == 0 { try saveCheckpoint() }
        if Interruption.requested || step == stopAfter { break training }
        if step == options.steps { break training }
        if step % perEpoch == 0 { break }
      }
      if let error = batches.error { throw error }
    }
    try saveCheckpoint()
    if step < options.steps {
      log?("stopped at step \(step); checkpoint saved. Continue with --resume.")
      return
    }
    ema.eval()
    try ema.saveWeights(to: run.modelURL, metadata: ["config": try config.jsonString(), "format": "pt", "weights": "G_ema"])
  }

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
  public var networks: (generator: any ImageGenerator, discriminator: ProjectionDiscriminator, ema: any ImageGenerator) { (generatorNet, discriminator, ema) }

  /// One discriminator phase and one generator update. Gradient norms cost a pass over every
  /// parameter, so they are measured only when `measureGradients` (the steps that are logged).
  public func trainingStep(_ batch: Batch, noise given: StepNoise? = nil, measureGradients: Bool = true) throws -> StepLosses {
    var losses = StepLosses()
    let indices = Tensor(batch.indices.map(Int64.init))
    let rawLogits = logits.indexSelect(dim: 0, index: indices).to(device)  // [B, K]
    let conditioning = config.preprocess(rawLogits)
    let images = batch.images.to(device).channelsLast()  // [B, C, R, R] in [0, 1]
    let precision = config.training.precision ?? .float32
    let real = images * 2 - 1  // in [−1, 1]
    let count = batch.labels.count
    generatorNet.train()
    discriminator.train()

    // Without an adversarial term (the up-convolutional baseline) there is no discriminator to train.
    let discriminatorSteps = config.losses.adversarial > 0 ? config.training.discriminatorStepsPerGeneratorStep : 0
    for _ in 0..<discriminatorSteps {
      let noise = (given?.discriminator ?? Tensor.randn([count, generatorNet.noiseSize], generator: noiseGenerator)).to(device)
      // One pass over real and fake together (half the kernel launches of two passes); losses
      // in float32 whatever the autocast precision of the passes.
      let scores = precision.run(on: device) {
        let fake = withNoGrad { generatorNet(logits: conditioning, noise: noise) }
        return discriminator(Tensor.cat([real, fake.to(real.dtype)], dim: 0), logits: Tensor.cat([conditioning, conditioning], dim: 0))
      }.to(.float32)
      let realScores = scores.narrow(dim: 0, start: 0, length: count)
      let fakeScores = scores.narrow(dim: 0, start: count, length: count)
      let (lossReal, lossFake) = HingeLoss.discriminator(real: realScores, fake: fakeScores)
      discriminatorOptimizer.zeroGrad()
      (lossReal + lossFake).backward()
      if measureGradients { losses.discriminatorGradientNorm = gradientNorm(discriminator) }
      discriminatorOptimizer.step()
      losses.discriminatorReal = lossReal.item()
      losses.discriminatorFake = lossFake.item()
      losses.scoreReal = realScores.mean().item()
      losses.scoreFake = fakeScores.mean().item()
    }

    // D's weights get no gradients from the generator update (BigGAN-PyTorch's toggle_grad):
    // the backward pass then skips D's weight gradients, which nothing would use.
    for parameter in discriminator.parameters { parameter.requiresGrad = false }
    defer { for parameter in discriminator.parameters { parameter.requiresGrad = true } }
    let noise = (given?.generator ?? Tensor.randn([count, generatorNet.noiseSize], generator: noiseGenerator)).to(device)
    let fake = precision.run(on: device) { generatorNet(logits: conditioning, noise: noise) }.to(.float32)  // [B, C, R, R]
    var total = Tensor.zeros([], device: device)
    if config.losses.adversarial > 0 {
      let adversarial = HingeLoss.generator(fake: precision.run(on: device) { discriminator(fake, logits: conditioning) }.to(.float32))
      total = adversarial * config.losses.adversarial
      losses.generatorAdversarial = adversarial.item()
    }
    let fake01 = (fake + 1) / 2
    let weights = config.losses
    // Pixel terms, each only when weighted (the logged "pixel" value is L1 when it is on).
    if weights.pixelL2 > 0 {
      let l2 = Loss.mse(fake01, images)
      total = total + l2 * weights.pixelL2
      losses.pixel = l2.item()
    }
    if weights.pixelL1 > 0 {
      let l1 = Loss.l1(fake01, images)
      total = total + l1 * weights.pixelL1
      losses.pixel = l1.item()
    }
    // The classifier's logits of the fakes, when the perceptual pass already computed them.
    var fakeLogits: Tensor?
    if weights.perceptual > 0 {
      let network = perceptualNetwork ?? classifier
      let layers = weights.perceptualLayers
      let target = try withNoGrad { try precision.run(on: device) { try network.features(images, names: layers).features } }
      let (logitsOfFake, produced) = try precision.run(on: device) { try network.features(fake01, names: layers) }
      if perceptualNetwork == nil { fakeLogits = logitsOfFake }
      var distance = Tensor.zeros([], device: device)
      for layer in layers {
        // The perceptual distance with the loss's per-layer weight 1/C (FeatureDistance).
        distance = distance + FeatureDistance.channelAveraged(produced[layer]!.to(.float32), target[layer]!.to(.float32))
      }
      total = total + distance * weights.perceptual
      losses.perceptual = distance.item()
    }
    if weights.logitConsistency > 0 {
      let produced = try (fakeLogits ?? precision.run(on: device) { try classifier.logits(fake01) }).to(.float32)
      let consistency = Loss.mse(produced / logitScale, rawLogits / logitScale)
      total = total + consistency * weights.logitConsistency
      losses.logit = consistency.item()
    }
    if config.training.orthogonalRegularization > 0 {
      total = total + orthogonalPenalty(generatorNet) * config.training.orthogonalRegularization
    }
    generatorOptimizer.zeroGrad()
    total.backward()
    if measureGradients { losses.generatorGradientNorm = gradientNorm(generatorNet) }
    generatorOptimizer.step()
    average.update(step: step)

    let checked = [losses.discriminatorReal, losses.discriminatorFake, total.item()]
    guard checked.allSatisfy(\.isFinite), losses.discriminatorReal + losses.discriminatorFake < 1e4 else {
      throw RunError("training diverged at step \(step + 1) (D loss \(losses.discriminatorReal + losses.discriminatorFake), G loss \(total.item())); the last checkpoint (step \(step / config.training.checkpointEvery * config.training.checkpointEvery)) is kept. Lower the learning rates and --resume")
    }
    return losses
  }

  /// Writes `samples/step-NNNNNN.png`: each original beside its reconstruction by the EMA generator.
  func writeSamples() throws {
    ema.eval()
    let reconstructions = withNoGrad { (ema(logits: config.preprocess(sampleLogits), noise: sampleNoise) + 1) / 2 }
    let pairs = Tensor.stack([sampleImages, reconstructions], dim: 1).flattened(from: 0, through: 1)  // [2S, C, R, R]
    let grid = ImageGrid.make(pairs, columns: 8, padding: 2, scale: max(1, 64 / config.resolution))
    try PNG.write(grid, to: run.samplesURL.appendingPathComponent(String(format: "step-%06d.png", step)))
  }

  /// The L2 norm of all of a module's gradients together.
  func gradientNorm(_ module: Module) -> Double {
    let squares = module.parameters.compactMap { $0.grad?.pow(2).sum().item() }
    return squares.reduce(0, +).squareRoot()
  }

  /// BigGAN's orthogonal regularisation: ‖W Wᵀ ⊙ (1 − I)‖² over G's matrix-shaped weights.
  func orthogonalPenalty(_ module: Module) -> Tensor {
    var penalty = Tensor.zeros([], device: device)
    for (name, weight) in module.namedParameters() where weight.rank >= 2 && !name.hasPrefix("shared") {
      let w = weight.reshaped([weight.size(0), -1])
      let gram = w.matmul(w.t)
      let offDiagonal = gram * (1 - Tensor.eye(gram.size(0), device: device))
      penalty = penalty + offDiagonal.pow(2).sum()
    }
    return penalty
  }
}
