import Foundation

/// What `inverter train` asks for: the generator's shape, the loss preset and any weights given
/// in its place, and the training options. `config(…)` turns it into an `InverterConfig` for a
/// classifier, filling in what the classifier decides (its logits, channels, resolution, data
/// set and feature maps). Each property's initial value is the one default of that choice.
public struct InverterRecipe: Equatable, Sendable {
  public var architecture = InverterConfig.Defaults.architecture
  /// Nil: the architecture's own (`InverterPreset.default(for:)`).
  public var preset: InverterPreset?
  public var ch = InverterConfig.Defaults.ch
  public var noiseSize = InverterConfig.Defaults.noiseSize
  public var attention = InverterConfig.Defaults.attention
  public var preprocessing = InverterConfig.Defaults.preprocessing
  /// What the BigGAN generator's 4×4 seed takes (`SeedInput`).
  public var seedInput = InverterConfig.Defaults.seedInput
  /// What of the classifier to invert: its logits, or a pooled feature map.
  public var representation = Representation.logits
  /// Nil: the classifier's input resolution.
  public var resolution: Int?
  /// The data set to train on, as `DatasetSource` names it. Nil: the classifier's.
  public var dataset: String?
  /// The perceptual term's feature maps. Nil: the feature network's `defaultFeatureLayers`.
  public var perceptualLayers: [String]?
  public var weightOverrides = LossWeightOverrides()
  /// The evaluation classifier (run directory) whose features the perceptual term uses, instead
  /// of the inverted classifier's.
  public var perceptualNetwork: String?
  public var training = InverterTrainingOptions.default

  public init() {}

  /// Every choice at its default.
  public static let `default` = InverterRecipe()

  /// The config of an inverter of `classifier` (found at `classifierPath`, loaded as
  /// `inverted`, which gives the representation's length).
  /// - Parameters:
  ///   - featureNetwork: the network the perceptual term reads (the loaded `perceptualNetwork`,
  ///     else the classifier); its default layers are used when none are named.
  ///   - command: the command line to record.
  public func config(
    classifier inverted: any ImageClassifier, classifierPath: String, featureNetwork: any ImageClassifier, command: String?
  ) throws -> InverterConfig {
    let classifier = inverted.config
    let layers = perceptualLayers ?? featureNetwork.defaultFeatureLayers
    let chosen = preset ?? .default(for: architecture)
    var losses = try chosen.lossWeights(for: architecture, layers: layers).overridden(by: weightOverrides, layers: layers)
    try losses.validate()
    if losses.perceptual > 0 { losses.perceptualNetwork = perceptualNetwork }
    guard let name = dataset ?? classifier.dataset else { throw RunError("the classifier records no data set: pass --dataset") }
    var config = InverterConfig(
      resolution: resolution ?? classifier.resolution, channels: classifier.channels,
      representationSize: try inverted.representationSize(representation), classifier: classifierPath, dataset: name, preset: chosen.rawValue, losses: losses, training: training)
    config.architecture = architecture
    config.representation = representation
    config.ch = ch
    config.noiseSize = noiseSize
    config.attention = attention
    config.preprocessing = preprocessing
    config.seedInput = seedInput
    config.representationGrid = try inverted.representationGrid(representation)
    if architecture == .biggan { _ = try config.makeGenerator() }  // a seed the representation cannot take is refused now
    config.command = command
    return config
  }
}

extension InverterConfig {
  /// Throws unless `classifier` can score this inverter's images (the same resolution).
  public func checkScorable(by classifier: ClassifierConfig) throws {
    guard resolution == classifier.resolution else {
      throw RunError("the classifier takes \(classifier.resolution)×\(classifier.resolution) images; an inverter at \(resolution) cannot be scored by it")
    }
  }
}

extension InverterConfig {
  /// Throws unless `inverted` gives this inverter's representation (its length) for `train`'s
  /// images, which are this inverter's images.
  public func checkFits(classifier inverted: any ImageClassifier, train: Dataset) throws {
    let classifier = inverted.config
    let size = try inverted.representationSize(representation)
    guard size == representationSize else {
      let what = representation == .logits ? "\(size) logits" : "\(size) values of \(representation)"
      throw RunError("the classifier gives \(what); the inverter config says \(representationSize)")
    }
    guard train.channels == channels, train.resolution == resolution else {
      throw RunError("the inverter makes \(channels)×\(resolution)² images; the data set has \(train.channels)×\(train.resolution)²")
    }
    guard classifier.channels == train.channels, classifier.resolution == train.resolution else {
      throw RunError("the classifier takes \(classifier.channels)×\(classifier.resolution)² images; the data set has \(train.channels)×\(train.resolution)²")
    }
  }
}
