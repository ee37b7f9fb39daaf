import Foundation

/// The weights of the inverter's loss terms (config.json's `losses`; the terms are
/// `InverterObjective`'s).
public struct InversionLossWeights: Codable, Equatable, Sendable {
  /// Hinge adversarial loss against the projection discriminator.
  public var adversarial = 1.0
  /// Pixel L1 and L2 distance between reconstruction and original (images in [0, 1]).
  public var pixelL1 = 0.0
  public var pixelL2 = 0.0
  /// Feature distance in `perceptualLayers` of the inverted classifier, or of the evaluation
  /// classifier when `perceptualNetwork` names one (`FeatureDistance.channelAveraged` per layer).
  public var perceptual = 0.0
  public var perceptualLayers: [String] = []
  public var perceptualNetwork: String?
  /// Mean squared difference between Φ(G(ℓ, z)) and ℓ, in units of the logits' standard
  /// deviation over the training set.
  public var logitConsistency = 0.0

  public init() {}

  /// The paper's losses: adversarial only.
  public static let paper = InversionLossWeights()

  /// Dosovitskiy & Brox (2016a): pixel L2 only (for the up-convolutional decoder).
  public static var upconv: InversionLossWeights {
    var weights = InversionLossWeights()
    weights.adversarial = 0
    weights.pixelL2 = 1
    return weights
  }

  /// DeePSiM (Dosovitskiy & Brox 2016b): pixel L2 plus feature (perceptual) and adversarial terms.
  public static func deepsim(layers: [String]) -> InversionLossWeights {
    var weights = InversionLossWeights()
    weights.adversarial = 0.01
    weights.pixelL2 = 1
    weights.perceptual = 1
    weights.perceptualLayers = layers
    return weights
  }

  /// Adversarial plus reconstruction terms, which buy fidelity fast at CPU scale (in an early
  /// calibration run, hinge + 10·L1 took retrieval@100 from 0.15 to 0.39 in the same time).
  public static func fidelity(layers: [String]) -> InversionLossWeights {
    var weights = InversionLossWeights()
    weights.pixelL1 = 10
    weights.perceptual = 1
    weights.perceptualLayers = layers
    weights.logitConsistency = 0.1
    return weights
  }

  enum CodingKeys: String, CodingKey {
    case adversarial, pixelL1, pixelL2, perceptual, perceptualLayers, perceptualNetwork, logitConsistency
  }

  /// Reads weights written by any version: a missing key keeps its default (the paper's value).
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.decodeIfPresent(.adversarial, into: &adversarial)
    try c.decodeIfPresent(.pixelL1, into: &pixelL1)
    try c.decodeIfPresent(.pixelL2, into: &pixelL2)
    try c.decodeIfPresent(.perceptual, into: &perceptual)
    try c.decodeIfPresent(.perceptualLayers, into: &perceptualLayers)
    try c.decodeIfPresent(.perceptualNetwork, into: &perceptualNetwork)
    try c.decodeIfPresent(.logitConsistency, into: &logitConsistency)
  }
}
