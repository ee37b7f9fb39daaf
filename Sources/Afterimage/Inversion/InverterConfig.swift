import Foundation
import Torch

/// How logits are fed to the inverter.
public enum LogitPreprocessing: String, Codable, Sendable {
  /// The logits as the classifier gives them (the paper).
  case raw
  /// Each logit standardised with its mean and standard deviation over the training set.
  case standardized
}

/// The weights of the inverter's loss terms (written into config.json).
public struct InversionLossWeights: Codable, Equatable, Sendable {
  /// Hinge adversarial loss against the projection discriminator.
  public var adversarial = 1.0
  /// Pixel L1 and L2 distance between reconstruction and original (images in [0, 1]).
  public var pixelL1 = 0.0
  public var pixelL2 = 0.0
  /// Feature distance in `perceptualLayers` of the inverted classifier, or of the evaluation
  /// classifier when `perceptualNetwork` names one.
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

  /// DeepSiM (Dosovitskiy & Brox 2016b): pixel L2 plus feature (perceptual) and adversarial terms.
  public static func deepsim(layers: [String]) -> InversionLossWeights {
    var weights = InversionLossWeights()
    weights.adversarial = 0.01
    weights.pixelL2 = 1
    weights.perceptual = 1
    weights.perceptualLayers = layers
    return weights
  }

  /// Adversarial plus reconstruction terms, which buy fidelity fast at CPU scale (DESIGN.md's
  /// calibration: hinge + 10·L1 took retrieval@100 from 0.15 to 0.39 in the same time).
  public static func fidelity(layers: [String]) -> InversionLossWeights {
    var weights = InversionLossWeights()
    weights.pixelL1 = 10
    weights.perceptual = 1
    weights.perceptualLayers = layers
    weights.logitConsistency = 0.1
    return weights
  }
}

/// How an inverter is trained.
public struct InverterTrainingOptions: Codable, Equatable, Sendable {
  public var steps = 3000
  public var batchSize = 64
  /// BigGAN-PyTorch's defaults: G 1e-4, D 4e-4, Adam β1 = 0, β2 = 0.999.
  public var generatorLearningRate = 1e-4
  public var discriminatorLearningRate = 4e-4
  public var beta1 = 0.0
  public var beta2 = 0.999
  public var discriminatorStepsPerGeneratorStep = 1
  /// EMA of G's weights: decay, and the step from which it averages (before: copies).
  /// Nil picks them from the run length, since a 0.999 average lags badly in a short run.
  public var emaDecay: Double?
  public var emaStart: Int?
  /// BigGAN's orthogonal regularisation strength on G's weights (0: off).
  public var orthogonalRegularization = 0.0
  public var sampleEvery = 250
  public var checkpointEvery = 250
  public var trainCount: Int?
  public var seed: UInt64 = 0
  /// Mixed precision of the forward passes (nil: float32). bf16 autocast is meant for CUDA.
  public var precision: Precision?

  public init() {}

  /// The EMA decay used: given, or chosen so the average spans about a tenth of the run.
  public var effectiveEMADecay: Double { emaDecay ?? min(0.999, max(0.9, 1 - 10 / Double(max(steps, 1)))) }
  public var effectiveEMAStart: Int { emaStart ?? steps / 5 }
}

/// Everything needed to rebuild an inverter; config.json of an inverter run.
public struct InverterConfig: Codable, Equatable {
  public enum Architecture: String, Codable, Sendable {
    /// The BigGAN generator conditioned on logits, against a projection discriminator.
    case biggan
    /// Dosovitskiy & Brox's up-convolutional decoder from the logits (a baseline).
    case upconv
  }

  public var architecture: Architecture = .biggan
  public var resolution: Int
  public var channels: Int
  public var logitCount: Int
  public var ch = 16
  public var noiseSize = 64
  public var embeddingSize = 64
  public var attention = true
  public var preprocessing: LogitPreprocessing = .raw
  /// Per-logit statistics over the training set (used when `preprocessing` is standardized).
  public var logitMean: [Double] = []
  public var logitStd: [Double] = []
  /// The classifier run directory whose logits are inverted, and the data it saw.
  public var classifier: String
  public var dataset: String
  public var preset: String
  public var losses: InversionLossWeights
  public var training: InverterTrainingOptions
  public var command: String?

  public init(
    resolution: Int, channels: Int, logitCount: Int, classifier: String, dataset: String, preset: String,
    losses: InversionLossWeights, training: InverterTrainingOptions
  ) {
    self.resolution = resolution
    self.channels = channels
    self.logitCount = logitCount
    self.classifier = classifier
    self.dataset = dataset
    self.preset = preset
    self.losses = losses
    self.training = training
  }

  public func jsonString() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }

  /// Logits as the generator and discriminator take them.
  public func preprocess(_ logits: Tensor) -> Tensor {
    guard preprocessing == .standardized, logitMean.count == logitCount else { return logits }
    let mean = Tensor(logitMean.map(Float.init), shape: [1, logitCount]).to(logits.device, dtype: logits.dtype)
    let std = Tensor(logitStd.map { Float(max($0, 1e-6)) }, shape: [1, logitCount]).to(logits.device, dtype: logits.dtype)
    return (logits - mean) / std
  }

  /// A freshly initialised generator (BigGAN, or the up-convolutional baseline).
  public func makeGenerator(generator: Generator? = nil) throws -> any ImageGenerator {
    let architectureTable = try BigGANArchitecture.forResolution(resolution)
    switch architecture {
    case .biggan:
      return LogitGenerator(
        architecture: architectureTable, logitCount: logitCount, noiseSize: noiseSize, embeddingSize: embeddingSize, ch: ch,
        channels: channels, useAttention: attention, generator: generator)
    case .upconv:
      return UpconvDecoder(logitCount: logitCount, resolution: resolution, channels: channels, ch: ch, noiseSize: noiseSize, generator: generator)
    }
  }

  /// A freshly initialised discriminator.
  public func makeDiscriminator(generator: Generator? = nil) throws -> ProjectionDiscriminator {
    ProjectionDiscriminator(
      architecture: try BigGANArchitecture.forResolution(resolution), logitCount: logitCount, ch: ch, channels: channels,
      useAttention: attention, generator: generator)
  }
}

/// The GAN losses (hinge, as in BigGAN and the paper).
public enum HingeLoss {
  /// `mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))`, returned as its two parts.
  public static func discriminator(real: Tensor, fake: Tensor) -> (real: Tensor, fake: Tensor) {
    ((1 - real).relu().mean(), (1 + fake).relu().mean())
  }

  /// `−mean(D(fake))`.
  public static func generator(fake: Tensor) -> Tensor { -fake.mean() }
}
