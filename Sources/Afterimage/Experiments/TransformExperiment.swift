import Foundation
import Torch

/// `analyze transforms`: for each image transformation, does the reconstruction follow it
/// (equivariance) or ignore it (invariance)?
public struct TransformExperiment: HeldOutExperiment {
  public var images: HeldOutImages
  public var transforms: [ImageTransform]

  public init(images: HeldOutImages, transforms: [ImageTransform] = ImageTransform.allCases) {
    self.images = images
    self.transforms = transforms
  }

  public func run(on device: Device) throws -> ExperimentOutcome<TransformResult> {
    let held = try images.load(on: device)
    let (points, rows, scores) = try TransformExperiments.run(transforms, images: held.images, inverter: held.inverter, evaluation: held.evaluation, seed: images.seed)
    return ExperimentOutcome(TransformResult(points: points), figures: [.rows([held.images] + rows, shown: images.shown, scale: held.figureScale)], scores: scores)
  }
}

public struct TransformResult: ExperimentResult {
  public var points: [TransformPoint]

  public static let kinds = ["transforms"]
  public var tabulated: any Encodable { points }
  public var title: String { "Image transformations" }
  public var measures: String {
    "For each transformation T, the equivariance error d(G(Φ(Tx)), T·G(Φ(x))) is small when the logits carry T; the change d(G(Φ(Tx)), G(Φ(x))) is small when the classifier ignores it."
  }
  public var lines: [String] {
    ["perceptual distances (figure rows: original, then per transformation at its largest magnitude: T(x), G(Φ(T(x)))):",
     "  transformation  magnitude  equivariance error  change"]
      + points.map { "  " + $0.transform.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "  %9g  %18.4f  %6.4f", $0.magnitude, $0.equivarianceError, $0.change) }
  }

  public static func decodeUnversioned(_ data: Data, kind: String) throws -> TransformResult {
    TransformResult(points: try JSONDecoder().decode([TransformPoint].self, from: data))
  }
}
