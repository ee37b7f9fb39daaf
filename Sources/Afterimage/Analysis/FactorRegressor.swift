import Foundation
import Torch

/// The ruler of factor recovery: a network trained on Shapes images to read every nuisance
/// factor off the pixels (`FactorEncoding`'s targets). It is trained on images degraded as
/// reconstructions are (`ReconstructionDegradation`: blur, lost contrast and colour, noise), so
/// a blurred reconstruction is read as its sharp original would be, not misread as an image the
/// ruler has never seen. Whatever it cannot read off an original it cannot find in a
/// reconstruction, so its R² on held-out originals, clean and degraded (the ceilings), is
/// reported beside every factor. Shipped as `models/eval/shapes-factors`
/// (`afterimage analyze factor-regressor` trains it).
public final class FactorRegressor {
  /// How the regressor is trained.
  public struct Options: Codable, Equatable {
    /// Clean training images (Shapes' train split, from the first).
    public var trainCount = 30_000
    public var epochs = 12
    public var batchSize = 128
    public var learningRate = 2e-3
    /// Channel multiplier of `FactorNet`.
    public var width = 1.0
    public var seed: UInt64 = 0
    /// Held-out test images the ceiling is measured on.
    public var heldOutCount = 1000
    /// How training images are degraded; nil: clean images only (every regressor trained
    /// before degradations existed, whose options lack the key).
    public var degradation: ReconstructionDegradation? = ReconstructionDegradation()
    public init() {}

    enum CodingKeys: String, CodingKey { case trainCount, epochs, batchSize, learningRate, width, seed, heldOutCount, degradation }

    /// Reads options of any version: a missing key keeps its default.
    public init(from decoder: any Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      try c.decodeIfPresent(.trainCount, into: &trainCount)
      try c.decodeIfPresent(.epochs, into: &epochs)
      try c.decodeIfPresent(.batchSize, into: &batchSize)
      try c.decodeIfPresent(.learningRate, into: &learningRate)
      try c.decodeIfPresent(.width, into: &width)
      try c.decodeIfPresent(.seed, into: &seed)
      try c.decodeIfPresent(.heldOutCount, into: &heldOutCount)
      degradation = try c.decodeIfPresent(ReconstructionDegradation.self, forKey: .degradation)
    }
  }

  /// `factors.json`: how the regressor was made, the encoding it predicts, and its ceiling.
  public struct Record: VersionedRecord {
    public static let currentSchemaVersion = 1
    public var schemaVersion = currentSchemaVersion
    public var dataset: String
    public var options: Options
    /// `FactorEncoding`'s per-factor means and spreads (`ShapeFactors.names` order).
    public var means: [Double]
    public var stds: [Double]
    /// R² per factor on `options.heldOutCount` held-out originals, with 95% intervals.
    public var ceiling: [String: Estimate]
    /// The same on those originals degraded at every axis's limit
    /// (`ReconstructionDegradation.strongest`): how well it reads the worst reconstruction it was
    /// made for. Nil for regressors measured before this existed.
    public var degradedCeiling: [String: Estimate]?
    public var seconds: Double?
    public var command: String?

    init(dataset: String, options: Options, means: [Double], stds: [Double], ceiling: [String: Estimate], seconds: Double?, command: String?) {
      (self.dataset, self.options, self.means, self.stds, self.ceiling, self.seconds, self.command) = (dataset, options, means, stds, ceiling, seconds, command)
    }

    enum CodingKeys: String, CodingKey { case schemaVersion, dataset, options, means, stds, ceiling, degradedCeiling = "degraded_ceiling", seconds, command }

    /// Refuses a newer schema; the encoding's statistics are required, the rest may be absent.
    public init(from decoder: any Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      try c.checkSchemaVersion(.schemaVersion, of: Self.self)
      dataset = try c.decodeIfPresent(String.self, forKey: .dataset) ?? "shapes"
      options = try c.decodeIfPresent(Options.self, forKey: .options) ?? Options()
      means = try c.decode([Double].self, forKey: .means)
      stds = try c.decode([Double].self, forKey: .stds)
      ceiling = try c.decodeIfPresent([String: Estimate].self, forKey: .ceiling) ?? [:]
      degradedCeiling = try c.decodeIfPresent([String: Estimate].self, forKey: .degradedCeiling)
      seconds = try c.decodeIfPresent(Double.self, forKey: .seconds)
      command = try c.decodeIfPresent(String.self, forKey: .command)
    }
  }

  public let encoding: FactorEncoding
  public let network: NetworkClassifier
  public private(set) var record: Record

  /// The file beside the weights that holds `record`.
  public static func recordURL(in run: RunDirectory) -> URL { run.url.appendingPathComponent("factors.json") }

  /// The shipped regressor's folder, relative to the working directory.
  public static let shippedFolder = ShippedModels.factorRegressor.path(in: ShippedModels.folder)

  init(encoding: FactorEncoding, network: NetworkClassifier, record: Record) {
    self.encoding = encoding
    self.network = network
    self.record = record
  }

  /// Predictions `[N, encoding.width]` for images `[N, 3, R, R]` in [0, 1] (computed on the CPU,
  /// where the small network lives, in slices of 256).
  public func predict(_ images: Tensor) -> Tensor {
    withNoGrad { Tensor.cat(images.to(.cpu).split(size: 256).map { network.logits($0) }, dim: 0) }
  }

  /// Trains a regressor on `dataset`'s training images (degraded as `options.degradation` says)
  /// and measures its ceilings on the first `options.heldOutCount` images of the test split
  /// (`test`, when given), clean and degraded.
  public static func train(on dataset: ShapesDataset, test: ShapesDataset? = nil, options: Options, progress: Bool = false) throws -> FactorRegressor {
    let start = Date()
    try options.degradation?.validate()
    let degrader = Generator(seed: options.seed &+ 1)
    let train = try Subset(dataset, count: min(options.trainCount, dataset.count))
    let drawn = (0..<train.count).map { dataset.factors(at: $0) }
    let encoding = FactorEncoding(fitting: drawn.map(\.factors))
    let targets = encoding.encode(drawn.map(\.factors), symmetries: drawn.map { dataset.rotationSymmetry(ofClass: $0.label) })  // [N, T]
    let config = ClassifierConfig(
      architecture: .factornet, width: options.width, channels: 3, resolution: dataset.resolution,
      classNames: (0..<encoding.width).map { "target \($0)" }, normalization: Normalization(mean: [0.25, 0.25, 0.25], std: [0.2, 0.2, 0.2]))
    var configWithData = config
    configWithData.dataset = dataset.name
    let network = try NetworkClassifier(config: configWithData, generator: Generator(seed: options.seed))
    let optimizer = Adam(network.model.namedParameters(), learningRate: options.learningRate)
    let loader = DataLoader(train, batchSize: options.batchSize, shuffle: true, dropLast: true, seed: options.seed)
    let total = options.epochs * loader.batchCount
    let schedule = CosineSchedule(base: options.learningRate, totalSteps: total)
    let bar = progress ? ProgressBar(total: total, label: "factor regressor", unit: "step") : nil
    var step = 0
    network.train(true)
    for epoch in 0..<options.epochs {
      try loader.epoch(epoch).forEachBatch { batch in
        optimizer.learningRate = schedule.learningRate(at: step)
        let rows = targets.indexSelect(dim: 0, index: Tensor(batch.indices.map(Int64.init))).to(.float32)
        let images = options.degradation.map { $0.apply(batch.images, generator: degrader) } ?? batch.images
        let loss = Loss.mse(network.logits(images), rows)
        guard loss.item().isFinite else { throw RunError("the factor regressor's loss became non-finite at step \(step): lower the learning rate") }
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
        step += 1
        bar?.update(step, metrics: ["mse": String(format: "%.4f", loss.item())])
      }
    }
    network.train(false)
    let statistics = encoding.statistics
    let regressor = FactorRegressor(encoding: encoding, network: network, record: Record(
      dataset: dataset.name, options: options, means: statistics.means, stds: statistics.stds, ceiling: [:], seconds: nil, command: nil))
    if let test {
      regressor.record.ceiling = try regressor.ceiling(on: test, count: options.heldOutCount)
      regressor.record.degradedCeiling = try regressor.ceiling(on: test, count: options.heldOutCount, degradedBy: .strongest)
    }
    regressor.record.seconds = Date().timeIntervalSince(start)
    return regressor
  }

  /// R² per factor on the first `count` images of `test`: what the regressor reads off
  /// originals, or off originals degraded by `degradation` (a fixed draw: seed 0).
  public func ceiling(on test: ShapesDataset, count: Int, degradedBy degradation: ReconstructionDegradation? = nil) throws -> [String: Estimate] {
    let batch = try test.batch(at: Array(0..<min(count, test.count)))
    let probe = FactorProbe(regressor: self, dataset: test)
    let images = degradation.map { $0.apply(batch.images, generator: Generator(seed: 0), extreme: true) } ?? batch.images
    return probe.recovery(images: images, factors: batch.factors ?? [], labels: batch.labels.scalars(as: Int64.self).map(Int.init))
  }

  /// Writes the weights, config.json and factors.json to `run` (`command`: the line that made it).
  public func save(to run: RunDirectory, command: String?) throws {
    record.command = command
    try Classifiers.save(network, to: run)
    try JSONFiles.write(record, to: Self.recordURL(in: run))
  }

  /// Loads a regressor saved by `save`.
  public static func load(_ path: String) throws -> FactorRegressor {
    let run = RunDirectory(path)
    let recordURL = recordURL(in: run)
    guard FileManager.default.fileExists(atPath: recordURL.path) else {
      throw RunError("\(path) has no factors.json: it is not a factor regressor (train one with `afterimage analyze factor-regressor --out DIR`)")
    }
    let record = try JSONFiles.read(Record.self, from: recordURL)
    guard let network = try Classifiers.load(path) as? NetworkClassifier, network.config.architecture == .factornet else {
      throw RunError("\(path) holds no factornet network: it is not a factor regressor")
    }
    let encoding = FactorEncoding(means: record.means, stds: record.stds)
    guard record.means.count == ShapeFactors.names.count, record.stds.count == ShapeFactors.names.count,
      network.config.classCount == encoding.width
    else {
      throw RunError("\(recordURL.path) describes \(record.means.count) factors and \(path)'s network predicts \(network.config.classCount) targets; this build reads \(ShapeFactors.names.count) factors (\(encoding.width) targets): retrain it with `afterimage analyze factor-regressor`")
    }
    return FactorRegressor(encoding: encoding, network: network, record: record)
  }

  /// `path`, else the shipped regressor when it is there, else nil.
  public static func loadDefault(_ path: String?) throws -> FactorRegressor? {
    if let path { return try load(path) }
    return FileManager.default.fileExists(atPath: recordURL(in: RunDirectory(shippedFolder)).path) ? try load(shippedFolder) : nil
  }
}
