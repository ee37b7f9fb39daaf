import Foundation
import Torch

/// The inverter training step on synthetic data, set up exactly as the PyTorch peer
/// (benchmarks/peer/inverter.py) sets it up, for the benchmark harness and for the test that
/// proves both do the same work: a ResNet-20 (width ½, 10 classes) as the frozen classifier,
/// the BigGAN inverter with the `fidelity` preset, and the real `InverterTrainer`: cached
/// logits, the data loader, one D and one G update, the EMA.
public final class InverterBenchmark {
  /// The classifier's input normalisation, shared with the peer.
  public static let normalizationMean = 0.5
  public static let normalizationStd = 0.25

  public let trainer: InverterTrainer
  public let classifier: NetworkClassifier
  public let dataset: InMemoryDataset
  public let config: InverterConfig
  let folder: URL

  /// - Parameters:
  ///   - images: `[N, C, R, R]` in [0, 1] (N ≥ batchSize), the training set, stored as 8-bit
  ///     pixels (values k/255 pass through exactly).
  ///   - weights: the peer's initial weights (`classifier.`, `G.`, `D.` prefixes), or nil to
  ///     initialise from `seed`. The EMA generator starts as a copy of G either way.
  ///   - folder: scratch space for the classifier and the run directory (a temporary folder).
  public init(
    images: Tensor, batchSize: Int, ch: Int = 16, weights: Safetensors.File? = nil, seed: UInt64 = 0, folder: URL,
    device: Device = .cpu
  ) throws {
    let (channels, resolution) = (images.shape[1], images.shape[3])
    self.folder = folder
    let classifierConfig = ClassifierConfig(
      architecture: .resnet20, width: 0.5, channels: channels, resolution: resolution, classNames: (0..<10).map { "class \($0)" },
      normalization: Normalization(mean: Array(repeating: Self.normalizationMean, count: channels), std: Array(repeating: Self.normalizationStd, count: channels)))
    let classifier = try NetworkClassifier(config: classifierConfig, generator: Generator(seed: seed))
    if let weights {
      try catchingTorchErrors { try classifier.model.loadStateDict(weights.section("classifier.")) }
    }
    classifier.train(false)
    self.classifier = classifier
    let classifierRun = RunDirectory(url: folder.appendingPathComponent("classifier"))
    try Classifiers.save(classifier, to: classifierRun)
    // Held as 8-bit pixels like every real data set (the peer draws its images as k/255 too).
    let pixels = (images * 255).round().clamped(min: 0, max: 255).to(.uint8)
    dataset = InMemoryDataset(name: "synthetic", classNames: classifierConfig.classNames, pixels: pixels, labels: Array(repeating: 0, count: images.shape[0]))
    var options = InverterTrainingOptions()
    options.batchSize = batchSize
    options.seed = seed
    var config = InverterConfig(
      resolution: resolution, channels: channels, representationSize: 10, classifier: classifierRun.url.path, dataset: "synthetic",
      preset: "fidelity", losses: .fidelity(layers: ["layer1", "layer2"]), training: options)
    config.ch = ch
    self.config = config
    // The logit cache goes to the scratch folder, not the user's cache, for as long as the
    // trainer computes it.
    let userCache = ProcessInfo.processInfo.environment["AFTERIMAGE_CACHE"]
    setenv("AFTERIMAGE_CACHE", folder.appendingPathComponent("cache").path, 1)
    defer { if let userCache { setenv("AFTERIMAGE_CACHE", userCache, 1) } else { unsetenv("AFTERIMAGE_CACHE") } }
    trainer = try InverterTrainer(
      run: RunDirectory(url: folder.appendingPathComponent("run")), config: config, classifier: classifier,
      classifierPath: classifierRun.url.path, train: dataset, heldOut: dataset, datasetKey: "synthetic", device: device)
    trainer.showProgress = false
    trainer.log = nil
    let networks = trainer.networks
    if let weights {
      try catchingTorchErrors {
        try networks.generator.loadStateDict(weights.section("G."))
        try networks.discriminator.loadStateDict(weights.section("D."))
      }
    }
    try networks.ema.loadStateDict(Dictionary(uniqueKeysWithValues: networks.generator.stateDict().map { ($0.name, $0.tensor.clone()) }))
  }

  /// Trainable parameters of G, D and the classifier.
  public var parameterCounts: (generator: Int, discriminator: Int, classifier: Int) {
    let networks = trainer.networks
    return (networks.generator.parameterCount, networks.discriminator.parameterCount, classifier.model.parameterCount)
  }

  /// The first `batchSize` images, in order (the batch the equal-work check steps on).
  public func firstBatch() throws -> Batch {
    try dataset.batch(at: Array(0..<config.training.batchSize))
  }

  /// A loader over the synthetic set, as the trainer draws it.
  public func batches(epoch: Int) -> BatchSequence {
    DataLoader(dataset, batchSize: config.training.batchSize, shuffle: true, dropLast: true, seed: config.training.seed).epoch(epoch)
  }

  /// One full training iteration; the losses, without gradient norms (as on unlogged steps).
  @discardableResult
  public func step(_ batch: Batch, noise: InverterTrainer.StepNoise? = nil) throws -> InverterTrainer.StepLosses {
    try trainer.trainingStep(batch, noise: noise, measureGradients: false)
  }
}
