import Foundation
import Torch

/// `analyze interpolate`: reconstructions along the line between two images' logits.
public struct InterpolationExperiment: HeldOutExperiment {
  public var images: HeldOutImages
  /// Mixing weights α (0: image a, 1: image b).
  public var alphas: [Double]

  /// The mixing weights measured by default.
  public static let defaultAlphas: [Double] = [0, 0.25, 0.5, 0.75, 1]

  public init(images: HeldOutImages, alphas: [Double] = defaultAlphas) {
    self.images = images
    self.alphas = alphas
  }

  public func run(on device: Device) throws -> ExperimentOutcome<InterpolationResult> {
    let held = try images.load(on: device)
    let (points, rows, scores) = try ClassExperiments.interpolate(
      images: held.images, labels: held.labels, inverter: held.inverter, evaluation: held.evaluation, alphas: alphas, seed: images.seed)
    let half = held.images.shape[0] / 2
    let chart = LineChart(
      title: "interpolating logits from image a to image b", xLabel: "α", yLabel: "evaluation classifier's probability",
      series: [.init(name: "class of a", points: points.map { ($0.alpha, $0.probabilityOfA) }), .init(name: "class of b", points: points.map { ($0.alpha, $0.probabilityOfB) })])
    // Rows: image a, the α steps, image b.
    let figure = Figure.rows(
      [held.images.narrow(dim: 0, start: 0, length: half)] + rows + [held.images.narrow(dim: 0, start: half, length: half)],
      shown: images.shown, scale: held.figureScale)
    return ExperimentOutcome(InterpolationResult(pairs: half, points: points), figures: [figure, .chart(name: "curve.svg", chart)], scores: scores)
  }
}

public struct InterpolationResult: ExperimentResult {
  /// Image pairs per point (nil in files written before versioning).
  public var pairs: Int?
  public var points: [ClassExperiments.InterpolationPoint]

  public static let kinds = ["interpolate"]
  public var tabulated: any Encodable { points }
  public var title: String { "Interpolating between two images' logits" }
  public var measures: String {
    "Reconstructions along the line between two images' logits, and the independent classifier's belief in either class along the way."
  }
  public var lines: [String] {
    ["interpolation over \(pairs.map(String.init) ?? "the") pairs (figure: image a, the α steps, image b):"]
      + points.map { String(format: "  α %.2f: P(class of a) %.3f  P(class of b) %.3f", $0.alpha, $0.probabilityOfA, $0.probabilityOfB) }
  }

  public static func decodeUnversioned(_ data: Data, kind: String) throws -> InterpolationResult {
    InterpolationResult(pairs: nil, points: try JSONDecoder().decode([ClassExperiments.InterpolationPoint].self, from: data))
  }
}
