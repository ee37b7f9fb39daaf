import Foundation
import Torch

/// How an inverter is trained (`config.json`'s `training`). Each property's initial value is
/// the one default of that option: `inverter train`'s flags and old files without the field
/// read it from here (`InverterTrainingOptions.default`).
public struct InverterTrainingOptions: Codable, Equatable, Sendable {
  /// Generator updates.
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
  /// Steps at which the EMA generator is also kept as an inverter of its own, in
  /// `snapshots/step-N/` (config.json and model.safetensors): the points of a learning curve,
  /// each scored like any inverter (`analyze reconstruct`, `analyze factors`).
  public var snapshotSteps: [Int] = []
  /// Train on the first `trainCount` examples only (nil: all).
  public var trainCount: Int?
  public var seed: UInt64 = 0
  /// Mixed precision of the forward passes (nil: float32, which is not written, so float32
  /// runs record the same config as before precision existed). bf16 autocast is meant for CUDA.
  public var precision: Precision?

  public init() {}

  /// Every option at its default.
  public static let `default` = InverterTrainingOptions()

  /// The precision of the forward passes; float32 is stored as nil.
  public var forwardPrecision: Precision {
    get { precision ?? .float32 }
    set { precision = newValue == .float32 ? nil : newValue }
  }

  /// The EMA decay used: given, or chosen so the average spans about a tenth of the run.
  public var effectiveEMADecay: Double { emaDecay ?? min(0.999, max(0.9, 1 - 10 / Double(max(steps, 1)))) }
  /// The step the EMA starts averaging at: given, or a fifth of the run.
  public var effectiveEMAStart: Int { emaStart ?? steps / 5 }

  enum CodingKeys: String, CodingKey {
    case steps, batchSize, generatorLearningRate, discriminatorLearningRate, beta1, beta2, discriminatorStepsPerGeneratorStep
    case emaDecay, emaStart, orthogonalRegularization, sampleEvery, checkpointEvery, snapshotSteps, trainCount, seed, precision
  }

  /// Reads options written by any version: a missing key keeps its default.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.decodeIfPresent(.steps, into: &steps)
    try c.decodeIfPresent(.batchSize, into: &batchSize)
    try c.decodeIfPresent(.generatorLearningRate, into: &generatorLearningRate)
    try c.decodeIfPresent(.discriminatorLearningRate, into: &discriminatorLearningRate)
    try c.decodeIfPresent(.beta1, into: &beta1)
    try c.decodeIfPresent(.beta2, into: &beta2)
    try c.decodeIfPresent(.discriminatorStepsPerGeneratorStep, into: &discriminatorStepsPerGeneratorStep)
    try c.decodeIfPresent(.emaDecay, into: &emaDecay)
    try c.decodeIfPresent(.emaStart, into: &emaStart)
    try c.decodeIfPresent(.orthogonalRegularization, into: &orthogonalRegularization)
    try c.decodeIfPresent(.sampleEvery, into: &sampleEvery)
    try c.decodeIfPresent(.checkpointEvery, into: &checkpointEvery)
    try c.decodeIfPresent(.snapshotSteps, into: &snapshotSteps)
    try c.decodeIfPresent(.trainCount, into: &trainCount)
    try c.decodeIfPresent(.seed, into: &seed)
    try c.decodeIfPresent(.precision, into: &precision)
  }
}
