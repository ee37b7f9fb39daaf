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

  public var kind: String { "interpolate" }
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

  public var kind: String { "misclassified" }
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

/// `analyze adversarial`: reconstructions of adversarial examples against the inverted
/// classifier: does the evaluation classifier see the true or the adversarial class?
public struct AdversarialExperiment: HeldOutExperiment {
  public var images: HeldOutImages
  public var attack: AttackSpec

  /// The attack measured by default, as `AttackSpec.parse` reads it, and its PGD steps.
  public static let defaultAttack = "pgd-linf:8/255"
  public static let defaultSteps = 20

  public init(images: HeldOutImages, attack: AttackSpec) {
    self.images = images
    self.attack = attack
  }

  public func run(on device: Device) throws -> ExperimentOutcome<AdversarialResult> {
    let held = try images.load(on: device)
    let found = try ClassExperiments.adversarial(
      images: held.images, labels: held.labels, inverter: held.inverter, evaluation: held.evaluation, attack: attack, seed: images.seed)
    let result = AdversarialResult(attack: attack.description, count: found.verdict.count, trueClass: found.verdict.trueClass,
                                   predictedClass: found.verdict.predictedClass, attackSuccess: found.fooled)
    return ExperimentOutcome(
      result, figures: [.rows([held.images, found.adversarialImages, found.reconstructions], shown: images.shown, scale: held.figureScale)], scores: found.scores)
  }
}

public struct AdversarialResult: ExperimentResult {
  /// The attack, as `AttackSpec` prints it (nil in files written before versioning).
  public var attack: String?
  public var count: Int
  /// Fractions of reconstructions of adversarial logits that the evaluation classifier assigns
  /// to the true class, and to the class the attack made the classifier predict.
  public var trueClass: Double
  public var predictedClass: Double
  /// Fraction of images on which the attack changed the classifier's decision.
  public var attackSuccess: Double

  enum CodingKeys: String, CodingKey {
    case attack, count, trueClass = "eval_says_true_class", predictedClass = "eval_says_predicted_class", attackSuccess = "attack_success"
  }


  public var kind: String { "adversarial" }
  public var title: String { "Adversarial examples" }
  public var measures: String {
    "Reconstructions from the logits of PGD adversarial examples: does the independent classifier see the true class or the adversarial one?"
  }
  public var summary: String? {
    String(format: "The attack fooled the classifier on %.0f%% of the images. On reconstructions of adversarial logits the independent classifier sees the true class %.0f%% of the time and the adversarial class %.0f%%.",
           100 * attackSuccess, 100 * trueClass, 100 * predictedClass)
  }
  public var lines: [String] {
    [String(format: "%@ fooled the classifier on %.1f%% of %d images; on reconstructions of the adversarial logits the evaluation classifier says the true class %.1f%%, the adversarial class %.1f%%",
            attack ?? "the attack", 100 * attackSuccess, count, 100 * trueClass, 100 * predictedClass)]
  }
}

// In an extension, so the memberwise initialiser stays.
extension AdversarialResult {
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    attack = try container.decodeIfPresent(String.self, forKey: .attack)
    count = Int(try container.decode(Double.self, forKey: .count))  // a number with a fraction before versioning
    trueClass = try container.decode(Double.self, forKey: .trueClass)
    predictedClass = try container.decode(Double.self, forKey: .predictedClass)
    attackSuccess = try container.decode(Double.self, forKey: .attackSuccess)
  }
}

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

  public var kind: String { "transforms" }
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
