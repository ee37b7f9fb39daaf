import Foundation
import Torch

/// An adversarial attack: FGSM or projected gradient descent (PGD) under an L∞ or L2 budget,
/// on images in [0, 1].
public struct AttackSpec: Codable, Equatable, Sendable, CustomStringConvertible {
  public enum Norm: String, Codable, Sendable { case linf, l2 }

  public var norm: Norm
  /// The radius of the allowed perturbation (in [0, 1] pixel units).
  public var epsilon: Double
  /// Gradient steps (1 for FGSM).
  public var steps: Int
  /// Step length (L∞: per pixel; L2: per image).
  public var stepSize: Double
  /// Start from a random point of the ball instead of the clean image.
  public var randomStart: Bool
  /// Move toward a given target class instead of away from the true one.
  public var targeted: Bool

  /// The step counts of the two attacks: PGD-7 in adversarial training (Madry et al.), PGD-20
  /// to evaluate (`classifier eval`, and the final score of a robust model after training).
  public enum Defaults {
    public static let trainingSteps = 7
    public static let evaluationSteps = 20
  }

  /// - Parameter stepSize: nil: ε for one step (FGSM), else 2.5·ε/steps, the evaluation step
  ///   (Madry et al.'s: enough to cross the ball and back in the steps given).
  public init(norm: Norm, epsilon: Double, steps: Int, stepSize: Double? = nil, randomStart: Bool = true, targeted: Bool = false) {
    self.norm = norm
    self.epsilon = epsilon
    self.steps = steps
    self.stepSize = stepSize ?? (steps == 1 ? epsilon : 2.5 * epsilon / Double(steps))
    self.randomStart = randomStart
    self.targeted = targeted
  }

  /// The attack adversarial training replaces each batch with, for `text` as `--adversarial`
  /// takes it (`linf:8/255`, `fgsm:8/255`, …). FGSM stays one full step of ε ("fast" adversarial
  /// training); PGD takes `steps` steps of `stepSize` from a random start, by default Madry et
  /// al.'s ε/4 (close to 2.5·ε/steps for PGD-7, and larger for fewer steps).
  public static func adversarialTraining(_ text: String, steps: Int = Defaults.trainingSteps, stepSize: Double? = nil) throws -> AttackSpec {
    let spec = try parse(text, steps: steps)
    if spec.steps == 1 && !spec.randomStart { return spec }
    return AttackSpec(norm: spec.norm, epsilon: spec.epsilon, steps: steps, stepSize: stepSize ?? spec.epsilon / 4, randomStart: true)
  }

  /// The attack a model adversarially trained against `training` is scored with at the end:
  /// PGD-20 in the same norm and ε, with the evaluation step.
  public static func finalEvaluation(of training: AttackSpec) -> AttackSpec {
    AttackSpec(norm: training.norm, epsilon: training.epsilon, steps: Defaults.evaluationSteps)
  }

  enum CodingKeys: String, CodingKey { case norm, epsilon, steps, stepSize, randomStart, targeted }

  /// Reads an attack written by any version: a missing step size, start or target keeps the
  /// default `init` gives it.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      norm: try c.decode(Norm.self, forKey: .norm), epsilon: try c.decode(Double.self, forKey: .epsilon),
      steps: try c.decode(Int.self, forKey: .steps), stepSize: try c.decodeIfPresent(Double.self, forKey: .stepSize))
    try c.decodeIfPresent(.randomStart, into: &randomStart)
    try c.decodeIfPresent(.targeted, into: &targeted)
  }

  /// Parses `fgsm:8/255`, `pgd-linf:8/255`, `pgd-l2:0.5`, `linf:0.1` (PGD), with `steps` for PGD.
  public static func parse(
    _ text: String, steps: Int = Defaults.evaluationSteps, stepSize: Double? = nil, randomStart: Bool = true, targeted: Bool = false
  ) throws -> AttackSpec {
    let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
    guard parts.count == 2, let epsilon = parseFraction(parts[1]), epsilon > 0 else {
      throw RunError("attack '\(text)' is not KIND:EPSILON, e.g. pgd-linf:8/255, pgd-l2:0.5 or fgsm:8/255")
    }
    switch parts[0] {
    case "fgsm", "fgsm-linf":
      return AttackSpec(norm: .linf, epsilon: epsilon, steps: 1, stepSize: epsilon, randomStart: false, targeted: targeted)
    case "fgsm-l2":
      return AttackSpec(norm: .l2, epsilon: epsilon, steps: 1, stepSize: epsilon, randomStart: false, targeted: targeted)
    case "pgd-linf", "linf", "pgd":
      return AttackSpec(norm: .linf, epsilon: epsilon, steps: steps, stepSize: stepSize, randomStart: randomStart, targeted: targeted)
    case "pgd-l2", "l2":
      return AttackSpec(norm: .l2, epsilon: epsilon, steps: steps, stepSize: stepSize, randomStart: randomStart, targeted: targeted)
    default:
      throw RunError("unknown attack '\(parts[0])': use fgsm, pgd-linf or pgd-l2")
    }
  }

  public var description: String {
    let kind = steps == 1 && !randomStart ? "FGSM" : "PGD-\(steps)"
    return "\(kind) \(norm == .linf ? "L∞" : "L2") ε=\(Self.format(epsilon))\(targeted ? " targeted" : "")"
  }

  /// ε as people write it: `8/255` for multiples of 1/255 below 1, else the plain number.
  public static func format(_ value: Double) -> String {
    let over255 = value * 255
    if abs(over255 - over255.rounded()) < 1e-9 && value < 1 { return "\(Int(over255.rounded()))/255" }
    return String(format: "%g", value)
  }
}

/// Parses "8/255", "0.1" or "1e-2".
func parseFraction(_ text: String) -> Double? {
  let parts = text.split(separator: "/")
  if parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]), b != 0 { return a / b }
  return Double(text)
}

/// Runs adversarial attacks against a classifier. The classifier is put in evaluation mode for
/// the attack (and returned to its previous mode after); only gradients with respect to the
/// input are taken, so the weights and their `.grad` are never touched.
public enum Attacks {
  /// Adversarial versions of `images [B, C, H, W]` (in [0, 1]) within `spec`'s ball.
  /// - Parameter labels: the true classes (untargeted) or the target classes (targeted), int64 `[B]`.
  /// - Parameter start: the random start's offset from `images` (drawn from `generator` when
  ///   nil); a rank of a data-parallel job passes its slice of the whole batch's draw.
  public static func perturb(
    _ images: Tensor, labels: Tensor, classifier: any ImageClassifier, spec: AttackSpec, generator: Generator, start: Tensor? = nil
  ) throws -> Tensor {
    guard spec.steps >= 1, spec.epsilon > 0, spec.stepSize > 0 else {
      throw RunError("an attack needs at least one step and a positive ε and step size; got \(spec.steps) steps, ε \(spec.epsilon), step \(spec.stepSize)")
    }
    let wasTraining = classifier.isTraining
    try classifier.train(false)
    defer { try? classifier.train(wasTraining) }
    let clean = images.detached()
    var adversarial = clean
    if spec.randomStart {
      adversarial = (clean + (start ?? randomPoint(in: spec, like: clean, generator: generator))).clamped(min: 0, max: 1)
    }
    for _ in 0..<spec.steps {
      let input = adversarial.detached().requiringGrad()
      let loss = Loss.crossEntropy(try classifier.logits(input), labels, reduction: .sum)
      guard loss.requiresGrad else {
        throw RunError("the classifier's output does not depend differentiably on its input (no_grad or quantised inside forward?); attacks need input gradients")
      }
      let gradient = Autograd.gradient(of: loss, withRespectTo: input)
      // Untargeted: climb the loss of the true class. Targeted: descend the loss of the target.
      let direction = spec.targeted ? -gradient : gradient
      adversarial = withNoGrad { step(input.detached(), direction: direction, clean: clean, spec: spec) }
    }
    return adversarial.detached()
  }

  /// One ascent step followed by projection onto the ε-ball around `clean` and onto [0, 1].
  static func step(_ x: Tensor, direction: Tensor, clean: Tensor, spec: AttackSpec) -> Tensor {
    switch spec.norm {
    case .linf:
      let moved = x + direction.sign() * spec.stepSize
      let delta = (moved - clean).clamped(min: -spec.epsilon, max: spec.epsilon)
      return (clean + delta).clamped(min: 0, max: 1)
    case .l2:
      let moved = x + unitL2(direction) * spec.stepSize
      return (clean + projectL2(moved - clean, radius: spec.epsilon)).clamped(min: 0, max: 1)
    }
  }

  /// Each image's tensor scaled to L2 norm 1 (zero stays zero).
  static func unitL2(_ x: Tensor) -> Tensor {
    let norms = x.flattened(from: 1).norm(dims: [1]).clamped(min: 1e-12)  // [B]
    return x / norms.view([-1] + Array(repeating: 1, count: x.rank - 1))
  }

  /// Each image's perturbation shrunk to L2 norm at most `radius`.
  static func projectL2(_ delta: Tensor, radius: Double) -> Tensor {
    let norms = delta.flattened(from: 1).norm(dims: [1])  // [B]
    let factors = (norms.clamped(min: 1e-12).reciprocal() * radius).clamped(max: 1)
    return delta * factors.view([-1] + Array(repeating: 1, count: delta.rank - 1))
  }

  /// A uniformly random perturbation in the L∞ ball, or a random direction at a uniformly
  /// random radius within the L2 ball.
  static func randomPoint(in spec: AttackSpec, like x: Tensor, generator: Generator) -> Tensor {
    switch spec.norm {
    case .linf:
      return (Tensor.rand(x.shape, generator: generator, dtype: x.dtype).to(x.device) * 2 - 1) * spec.epsilon
    case .l2:
      let direction = unitL2(Tensor.randn(x.shape, generator: generator, dtype: x.dtype).to(x.device))
      let radii = Tensor.rand([x.shape[0]], generator: generator, dtype: x.dtype).to(x.device) * spec.epsilon
      return direction * radii.view([-1] + Array(repeating: 1, count: x.rank - 1))
    }
  }
}
