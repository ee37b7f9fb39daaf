import Foundation
import Torch

/// The paper's logit manipulations (finding 6) and noise resampling (finding 4), as curves:
/// reconstruct from manipulated logits at several magnitudes and measure how far the pictures
/// move from the unmanipulated reconstruction, and whether the class survives.
public enum LogitManipulation: String, CaseIterable, Codable, Sendable {
  /// Add a constant to every logit (softmax-invariant).
  case shift
  /// Multiply every logit by a factor (temperature).
  case scale
  /// Add Gaussian noise of a given standard deviation (in units of the logits' spread).
  case noise
  /// Keep only the k largest logits, setting the rest to the smallest kept one.
  case topk

  /// The magnitudes measured by default, the identity first.
  public var defaultMagnitudes: [Double] {
    switch self {
    case .shift: return [0, -10, -5, 5, 10, 20]
    case .scale: return [1, 0.25, 0.5, 2, 4]
    case .noise: return [0, 0.1, 0.25, 0.5, 1]
    case .topk: return [10, 1, 2, 3, 5]
    }
  }

  /// `logits [B, K]` manipulated by `magnitude`; `spread` is the logits' standard deviation.
  public func apply(_ logits: Tensor, magnitude: Double, spread: Double, generator: Generator) -> Tensor {
    switch self {
    case .shift: return logits + magnitude
    case .scale: return logits * magnitude
    case .noise: return logits + Tensor.randn(logits.shape, generator: generator, dtype: logits.dtype).to(logits.device) * (magnitude * spread)
    case .topk:
      let k = max(1, min(Int(magnitude), logits.shape[1]))
      let kept = logits.topk(k, dim: 1)  // values, indices: [B, k]
      let floor = kept.values.narrow(dim: 1, start: k - 1, length: 1)  // the k-th largest, [B, 1]
      return logits.maximum(floor.expanded(logits.shape))
    }
  }
}

/// One magnitude's measurements.
public struct ManipulationPoint: Codable {
  public var magnitude: Double
  /// Perceptual distance from the reconstruction of the unmanipulated logits.
  public var perceptualChange: Double
  /// PSNR against the unmanipulated reconstruction.
  public var psnrToBaseline: Double
  /// The inverted classifier's top-1 on the new reconstruction equals the original's.
  public var top1Agreement: Double
  /// The evaluation classifier names the true class of the new reconstruction.
  public var evaluationAccuracy: Double
  /// 95% bootstrap intervals over images of `perceptualChange` and `top1Agreement` (absent in
  /// older files).
  public var perceptualChangeInterval: Estimate?
  public var top1AgreementInterval: Estimate?

  enum CodingKeys: String, CodingKey {
    case magnitude, perceptualChange = "perceptual_change", psnrToBaseline = "psnr_to_baseline"
    case top1Agreement = "top1_agreement", evaluationAccuracy = "eval_accuracy"
    case perceptualChangeInterval = "perceptual_change_interval", top1AgreementInterval = "top1_agreement_interval"
  }
}

public enum LogitExperiments {
  /// Measures `manipulation` at each of `magnitudes` on `images` (with labels `labels`); also
  /// returns the reconstructions per magnitude (rows of a figure).
  public static func run(
    _ manipulation: LogitManipulation, magnitudes: [Double], images: Tensor, labels: Tensor, inverter: Inverter,
    evaluation: any ImageClassifier, seed: UInt64 = 0
  ) throws -> (points: [ManipulationPoint], rows: [Tensor], scores: ScoreTable) {
    let layers = ReconstructionAnalysis.perceptualLayers(of: evaluation)
    var scores = ScoreTable()
    // The manipulation acts on what the inverter reads: the logits, or its feature vector.
    let code = try inverter.represent(images)  // [B, D]
    let spread = code.standardDeviation().item()
    let noise = inverter.noise(count: images.shape[0], seed: seed)
    let baseline = inverter.reconstruct(representation: code, noise: noise)
    let originalClasses = try withNoGrad { try inverter.classifier.logits(images) }.argmax(dim: 1)
    var points: [ManipulationPoint] = []
    var rows: [Tensor] = []
    for magnitude in magnitudes {
      let changed = manipulation.apply(code, magnitude: magnitude, spread: spread, generator: Generator(seed: seed &+ 1))
      let images = inverter.reconstruct(representation: changed, noise: noise)
      rows.append(images)
      let classes = try withNoGrad { try inverter.classifier.logits(images).argmax(dim: 1) }
      let named = try withNoGrad { try evaluation.logits(images).argmax(dim: 1) }
      let change = try Metrics.perceptualDistance(baseline, images, network: evaluation, layers: layers)  // [B]
      let kept = (classes .== originalClasses).to(.float64)  // [B]
      func values(_ x: Tensor) -> [Double] { x.to(.cpu, dtype: .float64).scalars(as: Double.self) }
      points.append(ManipulationPoint(
        magnitude: magnitude,
        perceptualChange: change.mean().item(),
        psnrToBaseline: Metrics.psnr(baseline, images).mean().item(),
        top1Agreement: kept.mean().item(),
        evaluationAccuracy: (named .== labels).to(.float32).mean().item(),
        perceptualChangeInterval: Bootstrap.mean(values(change)), top1AgreementInterval: Bootstrap.mean(values(kept))))
      // Per image, one column per measure and magnitude (scores.csv).
      let label = String(format: "%g", magnitude)
      scores.add("perceptual_change@\(label)", values(change))
      scores.add("top1_kept@\(label)", values(kept))
      scores.add("eval_correct@\(label)", values((named .== labels).to(.float64)))
    }
    return (points, rows, scores)
  }

  /// Noise resampling (finding 4): for the same logits, `samples` reconstructions under
  /// different noise; returns the mean pairwise perceptual distance and the reconstructions.
  public static func noise(images: Tensor, inverter: Inverter, evaluation: any ImageClassifier, samples: Int = 4) throws
    -> (diversity: Double, rows: [Tensor], perImage: [Double])
  {
    let code = try inverter.represent(images)
    let rows = (0..<samples).map { inverter.reconstruct(representation: code, noise: inverter.noise(count: images.shape[0], seed: UInt64($0))) }
    let diversity = try Metrics.noiseDiversity(rows, network: evaluation, layers: ReconstructionAnalysis.perceptualLayers(of: evaluation))
    return (diversity.mean().item(), rows, diversity.to(.cpu, dtype: .float64).scalars(as: Double.self))
  }
}
