import Foundation
import Torch

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


  public static let kinds = ["adversarial"]
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
