import Foundation
import Torch

/// How logits are fed to the inverter (`inverter train --logits`).
public enum LogitPreprocessing: String, Codable, CaseIterable, Sendable {
  /// The logits as the classifier gives them (the paper).
  case raw
  /// Each logit standardised with its mean and standard deviation over the training set.
  case standardized
}

/// Everything needed to rebuild an inverter; config.json of an inverter run (and the metadata
/// of its weights and checkpoint files).
public struct InverterConfig: VersionedRecord, Equatable {
  public static let currentSchemaVersion = 1

  /// The generator (`inverter train --arch`).
  public enum Architecture: String, Codable, CaseIterable, Sendable {
    /// The BigGAN generator conditioned on logits, against a projection discriminator.
    case biggan
    /// Dosovitskiy & Brox's up-convolutional decoder from the logits (a baseline).
    case upconv
  }

  /// The value of every field that has one when nothing else is given: for a fresh config, for
  /// `inverter train`'s flags and for a config.json written before the field existed.
  public enum Defaults {
    public static let architecture = Architecture.biggan
    /// Base width of G and D (BigGAN's `ch`; 16 trains at CPU scale).
    public static let ch = 16
    public static let noiseSize = 64
    public static let embeddingSize = 64
    public static let attention = true
    public static let preprocessing = LogitPreprocessing.raw
    /// What the BigGAN generator's seed takes. Still the noise alone: the shipped inverters and
    /// the commands that reproduce them (`afterimage models list`) use it, until they are
    /// retrained at a calibrated budget with the representation in the seed (docs/SCIENCE.md,
    /// "The calibrated microscope"). Configs written before the field existed mean `.noise`.
    public static let seedInput = SeedInput.noise
  }

  /// The schema this config is in (written to config.json; see `VersionedRecord`).
  public private(set) var schemaVersion = currentSchemaVersion
  public var architecture = Defaults.architecture
  public var resolution: Int
  public var channels: Int
  /// The length of the vector G and D are conditioned on: the classifier's logit count K for
  /// `logits`, the pooled feature vector's D for `features:NAME`.
  public var representationSize: Int
  /// What of the classifier is inverted (`inverter train --representation`; logits in runs from
  /// before representations).
  public var representation = Representation.logits
  public var ch = Defaults.ch
  public var noiseSize = Defaults.noiseSize
  public var embeddingSize = Defaults.embeddingSize
  public var attention = Defaults.attention
  public var preprocessing = Defaults.preprocessing
  public var seedInput = Defaults.seedInput
  /// `[C, h, w]` of the representation when it is a spatial feature map
  /// (`ImageClassifier.representationGrid`); nil for logits and vectors, and in older configs.
  public var representationGrid: [Int]?
  /// Per-logit statistics over the training set (used when `preprocessing` is standardized).
  public var representationMean: [Double] = []
  public var representationStd: [Double] = []
  /// The classifier run directory whose logits are inverted, and the data it saw.
  public var classifier: String
  /// The digest of the classifier's weights file when the inverter was trained
  /// (`RepresentationCache.weightsDigest`; nil in runs from before it was recorded). `Inverter.load`
  /// refuses a classifier whose weights have changed since.
  public var classifierDigest: String?
  /// The digest of the perceptual loss's network (`losses.perceptualNetwork`) when training
  /// started; a resume with other weights there is refused.
  public var perceptualDigest: String?
  public var dataset: String
  /// What `dataset`'s train and test splits held when training started (nil in runs from before
  /// it was recorded): a resume, and every score on the inverter's own held-out images, refuse
  /// data that has changed under the same name.
  public var data: InverterDataIdentity?
  /// The preset's name (`InverterPreset`'s raw value for runs of `inverter train`).
  public var preset: String
  public var losses: InversionLossWeights
  public var training: InverterTrainingOptions
  /// The command that produced this run; running it again reproduces the weights.
  public var command: String?

  public init(
    resolution: Int, channels: Int, representationSize: Int, classifier: String, dataset: String, preset: String,
    losses: InversionLossWeights, training: InverterTrainingOptions
  ) {
    self.resolution = resolution
    self.channels = channels
    self.representationSize = representationSize
    self.classifier = classifier
    self.dataset = dataset
    self.preset = preset
    self.losses = losses
    self.training = training
  }

  enum CodingKeys: String, CodingKey {
    case schemaVersion, architecture, resolution, channels, representation, ch, noiseSize, embeddingSize, attention, preprocessing, seedInput
    // Stored under the names from when only logits were inverted: old configs and new ones read alike.
    case representationSize = "logitCount", representationMean = "logitMean", representationStd = "logitStd"
    case representationGrid, classifier, classifierDigest, perceptualDigest, dataset, data, preset, losses, training, command
  }

  /// Reads a config of any schema up to the current one; a field the file lacks keeps its default.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.checkSchemaVersion(.schemaVersion, of: Self.self)
    self.init(
      resolution: try c.decode(Int.self, forKey: .resolution), channels: try c.decode(Int.self, forKey: .channels),
      representationSize: try c.decode(Int.self, forKey: .representationSize), classifier: try c.decode(String.self, forKey: .classifier),
      dataset: try c.decode(String.self, forKey: .dataset), preset: try c.decode(String.self, forKey: .preset),
      losses: try c.decode(InversionLossWeights.self, forKey: .losses), training: try c.decode(InverterTrainingOptions.self, forKey: .training))
    try c.decodeIfPresent(.architecture, into: &architecture)
    try c.decodeIfPresent(.representation, into: &representation)
    try c.decodeIfPresent(.ch, into: &ch)
    try c.decodeIfPresent(.noiseSize, into: &noiseSize)
    try c.decodeIfPresent(.embeddingSize, into: &embeddingSize)
    try c.decodeIfPresent(.attention, into: &attention)
    try c.decodeIfPresent(.preprocessing, into: &preprocessing)
    // Absent in configs from before the choice: their generators took the noise alone.
    seedInput = try c.decodeIfPresent(SeedInput.self, forKey: .seedInput) ?? .noise
    representationGrid = try c.decodeIfPresent([Int].self, forKey: .representationGrid)
    try c.decodeIfPresent(.representationMean, into: &representationMean)
    try c.decodeIfPresent(.representationStd, into: &representationStd)
    command = try c.decodeIfPresent(String.self, forKey: .command)
    classifierDigest = try c.decodeIfPresent(String.self, forKey: .classifierDigest)
    perceptualDigest = try c.decodeIfPresent(String.self, forKey: .perceptualDigest)
    data = try c.decodeIfPresent(InverterDataIdentity.self, forKey: .data)
  }

  /// The config as one line of key-sorted JSON (for safetensors metadata).
  public func jsonString() throws -> String { try JSONFiles.line(self) }

  /// Logits as the generator and discriminator take them.
  public func preprocess(_ logits: Tensor) -> Tensor {
    guard preprocessing == .standardized, representationMean.count == representationSize else { return logits }
    let mean = Tensor(representationMean.map(Float.init), shape: [1, representationSize]).to(logits.device, dtype: logits.dtype)
    let std = Tensor(representationStd.map { Float(max($0, 1e-6)) }, shape: [1, representationSize]).to(logits.device, dtype: logits.dtype)
    return (logits - mean) / std
  }

  /// A freshly initialised generator (BigGAN, or the up-convolutional baseline).
  public func makeGenerator(generator: Generator? = nil) throws -> any ImageGenerator {
    let architectureTable = try BigGANArchitecture.forResolution(resolution)
    switch architecture {
    case .biggan:
      if seedInput == .noiseRepresentationAndMap {
        guard let grid = representationGrid, grid.count == 3, grid.reduce(1, *) == representationSize, 4 % grid[1] == 0, 4 % grid[2] == 0 else {
          throw RunError("--seed-input \(seedInput.rawValue) places a feature map on the seed's 4×4 grid, and \(representation) is not a spatial map of 1, 2 or 4 cells a side: invert a convolutional layer's map (--representation features:NAME; `afterimage classifier info` lists them), or use --seed-input noise+representation")
        }
      }
      return LogitGenerator(
        architecture: architectureTable, representationSize: representationSize, noiseSize: noiseSize, embeddingSize: embeddingSize, ch: ch,
        channels: channels, useAttention: attention, seedInput: seedInput, grid: representationGrid, generator: generator)
    case .upconv:
      return UpconvDecoder(representationSize: representationSize, resolution: resolution, channels: channels, ch: ch, noiseSize: noiseSize, generator: generator)
    }
  }

  /// A freshly initialised discriminator.
  public func makeDiscriminator(generator: Generator? = nil) throws -> ProjectionDiscriminator {
    ProjectionDiscriminator(
      architecture: try BigGANArchitecture.forResolution(resolution), representationSize: representationSize, ch: ch, channels: channels,
      useAttention: attention, generator: generator)
  }
}
