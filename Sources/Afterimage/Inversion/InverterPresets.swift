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
  /// With `logitJitter` J > 0 the logit-consistency term reads each fake shifted by a whole
  /// number of pixels in [−J, J] in x and in y (its own draw per image and step, the edge
  /// repeated): a pattern that satisfies Φ only at one exact pixel position, which Φ reads and
  /// no other classifier does, no longer satisfies it; a drawn object still does. 0: the fake
  /// as it is (every run before the option).
  public var logitJitter = 0

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

  /// Reconstruction terms first, with a light adversarial term: found by measured trials on
  /// Fashion-MNIST (docs/SCIENCE.md, "The fidelity recipe"). At 1000 steps and a generator rate
  /// of 2e-4, these weights took the evaluation classifier's accuracy on reconstructions from
  /// 74% (the first release's weights: adversarial 1, perceptual 1, logit 0.1, 1500 steps at
  /// 1e-4) to 89.5%, and Fréchet distance from 1.37 to 0.42.
  public static func fidelity(layers: [String]) -> InversionLossWeights {
    var weights = InversionLossWeights()
    weights.adversarial = 0.1
    weights.pixelL1 = 10
    weights.perceptual = 4
    weights.perceptualLayers = layers
    weights.logitConsistency = 1
    return weights
  }

  /// These weights with each weight `overrides` gives in place of this one. A perceptual weight
  /// given to weights without perceptual layers (the paper's) brings `layers` with it.
  public func overridden(by overrides: LossWeightOverrides, layers: [String]) -> InversionLossWeights {
    var weights = self
    for (term, weight) in overrides.weights { weights[keyPath: term.weight] = weight }
    if overrides.weights[.perceptual] != nil, weights.perceptualLayers.isEmpty { weights.perceptualLayers = layers }
    if let logitJitter = overrides.logitJitter { weights.logitJitter = logitJitter }
    return weights
  }

  /// Every term's weight, in `InverterLossTerm.allCases` order.
  var all: [Double] { InverterLossTerm.allCases.map { self[keyPath: $0.weight] } }

  /// Throws unless every weight is non-negative and at least one is positive (all zero trains nothing).
  public func validate() throws {
    guard all.allSatisfy({ $0 >= 0 && $0.isFinite }), all.reduce(0, +) > 0 else {
      throw RunError("loss weights must be finite, non-negative and not all zero")
    }
    guard (0...8).contains(logitJitter) else {
      throw RunError("--logit-jitter takes a shift of 0 to 8 pixels, not \(logitJitter)")
    }
  }

  enum CodingKeys: String, CodingKey {
    case adversarial, pixelL1, pixelL2, perceptual, perceptualLayers, perceptualNetwork, logitConsistency, logitJitter
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
    try c.decodeIfPresent(.logitJitter, into: &logitJitter)
  }
}

/// Loss weights given one by one (`--adversarial-weight`, `--l1-weight`, …) in place of a
/// preset's; nil keeps the preset's.
public struct LossWeightOverrides: Equatable, Sendable {
  /// The weights given in place of the preset's, by term.
  public var weights: [InverterLossTerm: Double] = [:]
  public var logitJitter: Int?
  public init() {}
}

/// The terms of G's loss: the one table that names each term for the config (`weight`, a field
/// of `InversionLossWeights`), for `inverter train` (`flag`, which overrides the preset's
/// weight), and for metrics.jsonl, TensorBoard and the cross-rank average (`metric`).
/// `InverterObjective` computes each term and records its value under the term.
public enum InverterLossTerm: String, CaseIterable, Codable, Sendable {
  case adversarial, pixelL2, pixelL1, perceptual, logitConsistency

  /// The weight's field in `InversionLossWeights` (config.json's `losses`).
  public var weight: WritableKeyPath<InversionLossWeights, Double> {
    switch self {
    case .adversarial: return \.adversarial
    case .pixelL2: return \.pixelL2
    case .pixelL1: return \.pixelL1
    case .perceptual: return \.perceptual
    case .logitConsistency: return \.logitConsistency
    }
  }

  /// The `inverter train` option that overrides the preset's weight.
  public var flag: String {
    switch self {
    case .adversarial: return "adversarial-weight"
    case .pixelL2: return "l2-weight"
    case .pixelL1: return "l1-weight"
    case .perceptual: return "perceptual-weight"
    case .logitConsistency: return "logit-weight"
    }
  }

  /// The metrics.jsonl key of the term's value. The two pixel terms share one, `G_loss_pixel`:
  /// L1's value when it is weighted, else L2's (L1 comes later in `allCases`).
  public var metric: String {
    switch self {
    case .adversarial: return "G_loss_adv"
    case .pixelL2, .pixelL1: return "G_loss_pixel"
    case .perceptual: return "G_loss_perceptual"
    case .logitConsistency: return "G_loss_logit"
    }
  }

  /// What the term is, for `--help`.
  public var help: String {
    switch self {
    case .adversarial: return "Override the preset's adversarial-loss weight."
    case .pixelL2: return "Override the preset's pixel L2 weight."
    case .pixelL1: return "Override the preset's pixel L1 weight."
    case .perceptual: return "Override the preset's perceptual weight."
    case .logitConsistency: return "Override the preset's logit-consistency weight."
    }
  }
}

/// The named loss recipes of `inverter train --preset`, each for one architecture.
public enum InverterPreset: String, Codable, CaseIterable, Sendable {
  /// The paper's: the hinge adversarial loss alone (BigGAN).
  case paper
  /// Adversarial plus pixel L1, perceptual and logit-consistency terms (BigGAN).
  case fidelity
  /// Pixel L2 alone (the up-convolutional decoder).
  case upconv
  /// Pixel L2 plus perceptual and a small adversarial term (the up-convolutional decoder).
  case deepsim

  /// The preset an architecture trains with when none is named: the paper's for BigGAN, the
  /// pixel loss for the decoder.
  public static func `default`(for architecture: InverterConfig.Architecture) -> InverterPreset {
    architecture == .upconv ? .upconv : .paper
  }

  /// The architecture the preset is made for.
  public var architecture: InverterConfig.Architecture {
    switch self {
    case .paper, .fidelity: return .biggan
    case .upconv, .deepsim: return .upconv
    }
  }

  /// The preset's weights; `layers` are the feature maps of its perceptual term (fidelity,
  /// deepsim). Throws when the preset is not made for `architecture`.
  public func lossWeights(for architecture: InverterConfig.Architecture, layers: [String]) throws -> InversionLossWeights {
    guard architecture == self.architecture else {
      throw RunError("--preset \(rawValue) does not go with --arch \(architecture.rawValue): biggan takes paper or fidelity, upconv takes upconv or deepsim")
    }
    switch self {
    case .paper: return .paper
    case .fidelity: return .fidelity(layers: layers)
    case .upconv: return .upconv
    case .deepsim: return .deepsim(layers: layers)
    }
  }
}
