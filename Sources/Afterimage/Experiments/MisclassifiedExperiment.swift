import Foundation
import Torch

/// `analyze misclassified`: do reconstructions of misclassified images drift toward the
/// predicted class?
public struct MisclassifiedExperiment: HeldOutExperiment {
  public var images: HeldOutImages

  public init(images: HeldOutImages) { self.images = images }

  public func run(on device: Device) throws -> ExperimentOutcome<MisclassifiedResult> {
    let held = try images.load(on: device)
    let found = try ClassExperiments.misclassified(images: held.images, labels: held.labels, inverter: held.inverter, evaluation: held.evaluation, seed: images.seed)
    var figures: [Figure] = []
    if let wrong = found.wrongImages, let reconstructions = found.wrongReconstructions {
      figures.append(.rows([wrong, reconstructions], shown: images.shown, scale: held.figureScale))
    }
    return ExperimentOutcome(MisclassifiedResult(scored: held.images.shape[0], correct: found.correct, misclassified: found.wrong), figures: figures, scores: found.scores)
  }
}

public struct MisclassifiedResult: ExperimentResult {
  /// Images scored (nil in files written before versioning).
  public var scored: Int?
  /// The evaluation classifier's verdicts; nil when no image fell in the group.
  public var correct: ClassExperiments.Drift?
  public var misclassified: ClassExperiments.Drift?

  public static let kinds = ["misclassified"]
  public var title: String { "Misclassified images" }
  public var measures: String {
    "For images the classifier gets wrong, does the independent classifier see the true class or the wrongly predicted one in the reconstruction?"
  }
  public var summary: String? {
    guard let wrong = misclassified else { return "No misclassified images among those scored." }
    return String(format: "For misclassified images, the independent classifier sees the true class in %.0f%% of reconstructions and the wrongly predicted class in %.0f%%.",
                  100 * wrong.trueClass, 100 * wrong.predictedClass)
  }
  public var lines: [String] {
    [("correctly classified", correct), ("misclassified", misclassified)].map { name, verdict in
      guard let verdict else { return "  no \(name) images among the \(scored.map(String.init) ?? "scored ones")" }
      return String(format: "  %@ (%d): evaluation classifier says true class %.1f%%, the classifier's predicted class %.1f%%", name, verdict.count, 100 * verdict.trueClass, 100 * verdict.predictedClass)
    }
  }
}
