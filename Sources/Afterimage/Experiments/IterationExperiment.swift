import Foundation
import Torch

/// `analyze iterate`: feed reconstructions back in. x₀ is a held-out image and
/// xₜ = G(Φ(xₜ₋₁)) with the same noise each time. If G∘Φ were a projection onto what the logits
/// keep, x₂ would equal x₁; how far later iterates move, and whether the class holds, shows
/// whether inversion errors accumulate (drift to a class prototype, or away from the class).
public struct IterationExperiment: HeldOutExperiment {
  public var images: HeldOutImages
  /// Rounds of reconstruct-then-classify (at least 1).
  public var iterations: Int

  public static let defaultIterations = 4

  public init(images: HeldOutImages, iterations: Int = defaultIterations) {
    self.images = images
    self.iterations = iterations
  }

  public func run(on device: Device) throws -> ExperimentOutcome<IterationResult> {
    guard iterations >= 1 else { throw RunError("iterations must be at least 1, not \(iterations)") }
    let held = try images.load(on: device)
    let (inverter, evaluation) = (held.inverter, held.evaluation)
    let layers = ReconstructionAnalysis.perceptualLayers(of: evaluation)
    let noise = inverter.noise(count: held.images.shape[0], seed: images.seed)
    let originalLogits = try withNoGrad { try inverter.classifier.logits(held.images) }  // [N, K]
    let originalClasses = originalLogits.argmax(dim: 1)
    var previous = held.images
    var iterates: [Tensor] = []
    var points: [IterationResult.Point] = []
    var scores = ScoreTable()  // per image, per iteration t
    func column(_ x: Tensor) -> [Double] { x.to(.cpu, dtype: .float64).scalars(as: Double.self) }
    for iteration in 1...iterations {
      let current = try inverter.reconstruct(images: previous, noise: noise)  // [N, C, R, R]
      let logits = try withNoGrad { try inverter.classifier.logits(current) }
      let named = try withNoGrad { try evaluation.logits(current).argmax(dim: 1) }
      let toOriginal = try Metrics.perceptualDistance(held.images, current, network: evaluation, layers: layers)  // [N]
      let toPrevious = try Metrics.perceptualDistance(previous, current, network: evaluation, layers: layers)
      let kept = (logits.argmax(dim: 1) .== originalClasses).to(.float64)
      let correct = (named .== held.labels).to(.float64)
      points.append(IterationResult.Point(
        iteration: iteration, distanceToOriginal: toOriginal.mean().item(), distanceToPrevious: toPrevious.mean().item(),
        top1Agreement: kept.mean().item(), logitCosine: Metrics.logitCosine(originalLogits, logits).mean().item(),
        evaluationAccuracy: correct.mean().item()))
      scores.add("distance_to_original@\(iteration)", column(toOriginal))
      scores.add("distance_to_previous@\(iteration)", column(toPrevious))
      scores.add("top1_kept@\(iteration)", column(kept))
      scores.add("eval_correct@\(iteration)", column(correct))
      iterates.append(current)
      previous = current
    }
    let chart = LineChart(
      title: "reconstructing reconstructions", xLabel: "iteration", yLabel: "value",
      series: [
        .init(name: "distance to original", points: points.map { (Double($0.iteration), $0.distanceToOriginal) }),
        .init(name: "distance to previous", points: points.map { (Double($0.iteration), $0.distanceToPrevious) }),
        .init(name: "top-1 kept", points: points.map { (Double($0.iteration), $0.top1Agreement) }),
        .init(name: "eval accuracy", points: points.map { (Double($0.iteration), $0.evaluationAccuracy) }),
      ])
    return ExperimentOutcome(
      IterationResult(count: held.images.shape[0], points: points),
      figures: [.rows([held.images] + iterates, shown: images.shown, scale: held.figureScale), .chart(name: "curve.svg", chart)], scores: scores)
  }
}

/// One point per iteration; distances are perceptual (the evaluation network's features).
public struct IterationResult: ExperimentResult {
  public struct Point: Codable {
    /// t: the image is G∘Φ applied t times to the original.
    public var iteration: Int
    /// d(xₜ, x₀) and d(xₜ, xₜ₋₁).
    public var distanceToOriginal: Double
    public var distanceToPrevious: Double
    /// The inverted classifier gives xₜ the original's top-1 class; cosine of Φ(xₜ) and Φ(x₀).
    public var top1Agreement: Double
    public var logitCosine: Double
    /// The evaluation classifier names the original's true class from xₜ.
    public var evaluationAccuracy: Double

    enum CodingKeys: String, CodingKey {
      case iteration, distanceToOriginal = "distance_to_original", distanceToPrevious = "distance_to_previous"
      case top1Agreement = "top1_agreement", logitCosine = "logit_cosine", evaluationAccuracy = "eval_accuracy"
    }
  }

  /// Images per point.
  public var count: Int
  public var points: [Point]

  public static let kinds = ["iterate"]
  public var title: String { "Reconstructing reconstructions" }
  public var measures: String {
    "Each reconstruction is classified and reconstructed again, with the same noise: x₁ = G(Φ(x₀)), x₂ = G(Φ(x₁)), …. A small distance between consecutive iterates means G∘Φ is close to a projection onto what the logits keep; a growing distance to the original, or a falling top-1, means inversion errors accumulate."
  }
  public var tabulated: any Encodable { points }

  public var summary: String? {
    guard let first = points.first, let last = points.last else { return nil }
    return String(format: "After %d rounds the picture is %.3f from the original (%.3f after one); consecutive iterates differ by %.3f at the end; the classifier keeps the original's class for %.0f%% (%.0f%% after one round).",
                  last.iteration, last.distanceToOriginal, first.distanceToOriginal, last.distanceToPrevious, 100 * last.top1Agreement, 100 * first.top1Agreement)
  }

  public var lines: [String] {
    ["G∘Φ iterated on \(count) images (figure rows: originals, then x₁, x₂, …):",
     "  iteration  to original  to previous  top-1 kept  logit cosine  eval accuracy"]
      + points.map {
        String(format: "  %9d  %11.4f  %11.4f  %9.1f%%  %12.3f  %12.1f%%", $0.iteration, $0.distanceToOriginal, $0.distanceToPrevious, 100 * $0.top1Agreement, $0.logitCosine, 100 * $0.evaluationAccuracy)
      }
  }
}
