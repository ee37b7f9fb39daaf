import Foundation
import Torch

/// How a classifier is trained; recorded in config.json (`training`). Each property's initial
/// value is the one default of that option: `classifier train`'s flags and old files without
/// the field read it from here (`ClassifierTrainingOptions.default`).
public struct ClassifierTrainingOptions: Codable, Equatable, Sendable {
  public var epochs = 10
  public var batchSize = 128
  /// Peak learning rate of SGD with Nesterov momentum, reached after `warmupSteps` and then
  /// decayed to 0 along a cosine.
  public var learningRate = 0.1
  public var momentum = 0.9
  public var weightDecay = 5e-4
  public var warmupSteps = 200
  public var labelSmoothing = 0.0
  /// Random crops with this much zero padding (0: none) and random horizontal flips.
  public var cropPadding = 4
  public var horizontalFlip = true
  /// Colour jitter strengths (0: off).
  public var brightness = 0.0
  public var contrast = 0.0
  public var saturation = 0.0
  /// Madry et al.'s adversarial training when set: each batch is replaced by its PGD examples
  /// (`AttackSpec.adversarialTraining`).
  public var adversarial: AttackSpec?
  /// Train on the first `trainCount` examples only (nil: all).
  public var trainCount: Int?
  /// Test examples used for the per-epoch accuracy (nil: all).
  public var evaluationCount: Int?
  public var checkpointEvery = 500
  public var seed: UInt64 = 0
  /// Mixed precision of the forward passes (nil: float32, which is not written, so float32
  /// runs record the same config as before precision existed). bf16 autocast is meant for CUDA.
  public var precision: Precision?

  public init() {}

  /// Every option at its default.
  public static let `default` = ClassifierTrainingOptions()

  /// The precision of the forward passes; float32 is stored as nil.
  public var forwardPrecision: Precision {
    get { precision ?? .float32 }
    set { precision = newValue == .float32 ? nil : newValue }
  }

  /// The augmentation of every training batch.
  public var augmentation: Augmentation {
    Augmentation(cropPadding: cropPadding, horizontalFlip: horizontalFlip, brightness: brightness, contrast: contrast, saturation: saturation)
  }

  enum CodingKeys: String, CodingKey {
    case epochs, batchSize, learningRate, momentum, weightDecay, warmupSteps, labelSmoothing, cropPadding,
      horizontalFlip, brightness, contrast, saturation, adversarial, trainCount, evaluationCount, checkpointEvery, seed, precision
  }

  /// Reads options written by any version: a missing key keeps its default.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.decodeIfPresent(.epochs, into: &epochs)
    try c.decodeIfPresent(.batchSize, into: &batchSize)
    try c.decodeIfPresent(.learningRate, into: &learningRate)
    try c.decodeIfPresent(.momentum, into: &momentum)
    try c.decodeIfPresent(.weightDecay, into: &weightDecay)
    try c.decodeIfPresent(.warmupSteps, into: &warmupSteps)
    try c.decodeIfPresent(.labelSmoothing, into: &labelSmoothing)
    try c.decodeIfPresent(.cropPadding, into: &cropPadding)
    try c.decodeIfPresent(.horizontalFlip, into: &horizontalFlip)
    try c.decodeIfPresent(.brightness, into: &brightness)
    try c.decodeIfPresent(.contrast, into: &contrast)
    try c.decodeIfPresent(.saturation, into: &saturation)
    try c.decodeIfPresent(.adversarial, into: &adversarial)
    try c.decodeIfPresent(.trainCount, into: &trainCount)
    try c.decodeIfPresent(.evaluationCount, into: &evaluationCount)
    try c.decodeIfPresent(.checkpointEvery, into: &checkpointEvery)
    try c.decodeIfPresent(.seed, into: &seed)
    try c.decodeIfPresent(.precision, into: &precision)
  }
}

/// What a finished (or interrupted) training run measured.
public struct ClassifierTrainingSummary: Codable {
  public var steps: Int
  public var seconds: Double
  public var trainAccuracy: Double
  public var evaluation: ClassifierEvaluation.Result?
  public var interrupted: Bool
}
