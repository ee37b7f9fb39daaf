import Foundation
import Torch

/// `analyze logit-shift|logit-scale|logit-noise|topk`: one logit manipulation at several
/// magnitudes (`LogitExperiments.run`), as a figure, a curve and a table.
public struct LogitManipulationExperiment: HeldOutExperiment {
  public var manipulation: LogitManipulation
  /// nil: the manipulation's default magnitudes.
  public var magnitudes: [Double]?
  public var images: HeldOutImages

  public init(_ manipulation: LogitManipulation, magnitudes: [Double]? = nil, images: HeldOutImages) {
    self.manipulation = manipulation
    self.magnitudes = magnitudes
    self.images = images
  }

  public func run(on device: Device) throws -> ExperimentOutcome<LogitCurveResult> {
    let values = magnitudes ?? manipulation.defaultMagnitudes
    let held = try images.load(on: device)
    let (points, rows, scores) = try LogitExperiments.run(
      manipulation, magnitudes: values, images: held.images, labels: held.labels, inverter: held.inverter, evaluation: held.evaluation,
      seed: images.seed)
    let result = LogitCurveResult(manipulation: manipulation, count: held.images.shape[0], points: points)
    let sorted = points.sorted { $0.magnitude < $1.magnitude }
    let chart = LineChart(
      title: "logit \(manipulation.rawValue): what changes", xLabel: "magnitude", yLabel: "value",
      series: [
        .init(name: "perceptual change", points: sorted.map { ($0.magnitude, $0.perceptualChange) }),
        .init(name: "top-1 kept", points: sorted.map { ($0.magnitude, $0.top1Agreement) }),
        .init(name: "eval accuracy", points: sorted.map { ($0.magnitude, $0.evaluationAccuracy) }),
      ])
    return ExperimentOutcome(result, figures: [
      .rows([held.images] + rows, shown: images.shown, scale: held.figureScale), .chart(name: "curve.svg", chart),
    ], scores: scores)
  }
}

/// One manipulation's curve: a point per magnitude, in the order measured.
public struct LogitCurveResult: ExperimentResult {
  public var manipulation: LogitManipulation
  /// Images per point (nil in files written before versioning).
  public var count: Int?
  public var points: [ManipulationPoint]

  /// The point measured at `magnitude`, if any.
  public func point(at magnitude: Double) -> ManipulationPoint? { points.first { $0.magnitude == magnitude } }

  public static let kinds = LogitManipulation.allCases.map { "logit-\($0.rawValue)" }
  public var kind: String { "logit-\(manipulation.rawValue)" }
  public var tabulated: any Encodable { points }
  public var title: String {
    switch manipulation {
    case .shift: return "Adding a constant to the logits"
    case .scale: return "Scaling the logits"
    case .noise: return "Noise on the logits"
    case .topk: return "Keeping only the top logits"
    }
  }
  public var measures: String {
    switch manipulation {
    case .shift: return "Adding the same number to every logit leaves the softmax unchanged; any change in the picture shows the inverter reads the logits' absolute values."
    case .scale: return "Multiplying the logits (a temperature change) and reconstructing shows what the logits' magnitude encodes."
    case .noise: return "Gaussian noise is added to the logits; how fast the picture and its class drift shows how much of the logit vector carries content."
    case .topk: return "All but the k largest logits are flattened; the drop in fidelity shows how much information lives in the small logits."
    }
  }

  public var lines: [String] {
    ["logit \(manipulation.rawValue) on \(count.map(String.init) ?? "the") images (figure rows: originals, then magnitudes \(points.map { String(format: "%g", $0.magnitude) }.joined(separator: ", "))):",
     "  magnitude  perceptual change  PSNR to baseline  top-1 kept  eval accuracy"]
      + points.map { point in
        String(format: "  %9g  %17.4f  %16.2f  %9.1f%%  %12.1f%%", point.magnitude, point.perceptualChange, point.psnrToBaseline, 100 * point.top1Agreement, 100 * point.evaluationAccuracy)
      }
  }

  /// Before versioning, results.json was the array of points; the manipulation is in the kind.
  public static func decodeUnversioned(_ data: Data, kind: String) throws -> LogitCurveResult {
    guard let manipulation = LogitManipulation(rawValue: String(kind.dropFirst("logit-".count))) else {
      throw RunError("'\(kind)' is not a logit manipulation")
    }
    return LogitCurveResult(manipulation: manipulation, count: nil, points: try JSONDecoder().decode([ManipulationPoint].self, from: data))
  }
}
