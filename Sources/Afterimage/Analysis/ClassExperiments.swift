import Foundation
import Torch

/// Experiments about classes: interpolating between two images' logits, reconstructing
/// misclassified images (finding 5), and reconstructing adversarial examples.
public enum ClassExperiments {
  /// One step of an interpolation between the logits of image a and image b.
  public struct InterpolationPoint: Codable {
    public var alpha: Double
    /// The evaluation classifier's mean probability of a's and of b's true class.
    public var probabilityOfA: Double
    public var probabilityOfB: Double
    enum CodingKeys: String, CodingKey { case alpha, probabilityOfA = "p_class_a", probabilityOfB = "p_class_b" }
  }

  /// Reconstructs `(1 − α) ℓ_a + α ℓ_b` for pairs (images[i], images[i + half]) of different
  /// classes; returns the curve and one row of reconstructions per α.
  public static func interpolate(
    images: Tensor, labels: Tensor, inverter: Inverter, evaluation: any ImageClassifier, alphas: [Double], seed: UInt64 = 0
  ) throws -> (points: [InterpolationPoint], rows: [Tensor], scores: ScoreTable) {
    let half = images.shape[0] / 2
    guard half >= 1 else { throw RunError("interpolation needs at least two images") }
    let code = try inverter.represent(images)  // [B, D]: logits, or the inverted feature vector
    let a = code.narrow(dim: 0, start: 0, length: half)
    let b = code.narrow(dim: 0, start: half, length: half)
    let classA = labels.narrow(dim: 0, start: 0, length: half).unsqueezed(1)
    let classB = labels.narrow(dim: 0, start: half, length: half).unsqueezed(1)
    let noise = inverter.noise(count: half, seed: seed)
    var points: [InterpolationPoint] = []
    var rows: [Tensor] = []
    // One row per pair: its two classes, then each α's probabilities.
    var scores = ScoreTable()
    scores.add("class_a", classA.squeezed(1).to(.cpu, dtype: .float64).scalars(as: Double.self))
    scores.add("class_b", classB.squeezed(1).to(.cpu, dtype: .float64).scalars(as: Double.self))
    for alpha in alphas {
      let reconstruction = inverter.reconstruct(representation: a * (1 - alpha) + b * alpha, noise: noise)
      rows.append(reconstruction)
      let probabilities = try withNoGrad { try evaluation.logits(reconstruction).softmax(dim: 1) }  // [half, K]
      let (ofA, ofB) = (probabilities.gather(dim: 1, index: classA), probabilities.gather(dim: 1, index: classB))  // [half, 1]
      points.append(InterpolationPoint(alpha: alpha, probabilityOfA: ofA.mean().item(), probabilityOfB: ofB.mean().item()))
      scores.add("p_class_a@\(String(format: "%g", alpha))", ofA.squeezed(1).to(.cpu, dtype: .float64).scalars(as: Double.self))
      scores.add("p_class_b@\(String(format: "%g", alpha))", ofB.squeezed(1).to(.cpu, dtype: .float64).scalars(as: Double.self))
    }
    return (points, rows, scores)
  }

  /// Per image: its true class, the inverted classifier's prediction (`prediction_name`), the
  /// evaluation classifier's class of its reconstruction, and whether the prediction was wrong.
  static func classTable(labels: Tensor, predicted: Tensor, named: Tensor, predictionName: String) -> ScoreTable {
    func column(_ x: Tensor) -> [Double] { x.to(.cpu, dtype: .float64).scalars(as: Double.self) }
    var table = ScoreTable()
    table.add("label", column(labels))
    table.add(predictionName, column(predicted))
    table.add("eval_on_reconstruction", column(named))
    table.add("wrong", column((predicted.to(labels.device) .!= labels).to(.float64)))
    return table
  }

  /// Where a reconstruction's class lands, as judged by the evaluation classifier.
  public struct Drift: Codable {
    public var count: Int
    /// Fraction of reconstructions the evaluation classifier assigns to the true class, and to
    /// the class the inverted classifier predicted (for misclassified or adversarial inputs).
    public var trueClass: Double
    public var predictedClass: Double
    enum CodingKeys: String, CodingKey { case count, trueClass = "eval_says_true_class", predictedClass = "eval_says_predicted_class" }
  }

  /// The evaluation classifier's verdict on reconstructions of `images` with true classes
  /// `labels`, which the inverted classifier gave `logits`.
  static func drift(images: Tensor, logits: Tensor, labels: Tensor, inverter: Inverter, evaluation: any ImageClassifier, seed: UInt64) throws -> (Drift, Tensor, named: Tensor) {
    let reconstruction = try inverter.reconstruct(images: images, noise: inverter.noise(count: logits.shape[0], seed: seed))
    let named = try withNoGrad { try evaluation.logits(reconstruction).argmax(dim: 1) }.to(labels.device)
    let predicted = logits.argmax(dim: 1)
    return (Drift(
      count: logits.shape[0], trueClass: (named .== labels).to(.float32).mean().item(),
      predictedClass: (named .== predicted).to(.float32).mean().item()), reconstruction, named)
  }

  /// Finding 5: do reconstructions of misclassified images drift toward the predicted class?
  /// Returns the verdicts for correctly and wrongly classified images (nil when there are none).
  public static func misclassified(
    images: Tensor, labels: Tensor, inverter: Inverter, evaluation: any ImageClassifier, seed: UInt64 = 0
  ) throws -> (correct: Drift?, wrong: Drift?, wrongImages: Tensor?, wrongReconstructions: Tensor?, scores: ScoreTable) {
    let logits = try withNoGrad { try inverter.classifier.logits(images) }
    let labels = labels.to(logits.device)
    let right = logits.argmax(dim: 1) .== labels
    func subset(_ mask: Tensor) -> Tensor? {
      let indices = mask.to(.uint8).scalars(as: UInt8.self).enumerated().filter { $0.element == 1 }.map { Int64($0.offset) }
      return indices.isEmpty ? nil : Tensor(indices).to(logits.device)
    }
    var correct: Drift?
    var wrong: Drift?
    var wrongImages: Tensor?
    var wrongReconstructions: Tensor?
    // The evaluation classifier's class of each image's reconstruction, filled in per subset.
    var named = Tensor.full([labels.shape[0]], -1, dtype: .int64, device: labels.device)
    if let index = subset(right) {
      let verdict = try drift(
        images: images.indexSelect(dim: 0, index: index.to(images.device)), logits: logits.indexSelect(dim: 0, index: index), labels: labels.indexSelect(dim: 0, index: index), inverter: inverter, evaluation: evaluation, seed: seed)
      correct = verdict.0
      named = named.scattering(dim: 0, index: index.to(labels.device), source: verdict.named.to(labels.device, dtype: .int64))
    }
    if let index = subset(.!right) {
      let (verdict, reconstructions, classes) = try drift(
        images: images.indexSelect(dim: 0, index: index.to(images.device)), logits: logits.indexSelect(dim: 0, index: index), labels: labels.indexSelect(dim: 0, index: index), inverter: inverter, evaluation: evaluation, seed: seed)
      wrong = verdict
      wrongImages = images.indexSelect(dim: 0, index: index.to(images.device))
      wrongReconstructions = reconstructions
      named = named.scattering(dim: 0, index: index.to(labels.device), source: classes.to(labels.device, dtype: .int64))
    }
    let scores = classTable(labels: labels, predicted: logits.argmax(dim: 1), named: named, predictionName: "classifier_prediction")
    return (correct, wrong, wrongImages, wrongReconstructions, scores)
  }

  /// Reconstructions of PGD adversarial examples against the inverted classifier: does the
  /// evaluation classifier see the true class or the adversarial one?
  public static func adversarial(
    images: Tensor, labels: Tensor, inverter: Inverter, evaluation: any ImageClassifier, attack: AttackSpec, seed: UInt64 = 0
  ) throws -> (verdict: Drift, fooled: Double, adversarialImages: Tensor, reconstructions: Tensor, scores: ScoreTable) {
    let adversarialImages = try Attacks.perturb(images, labels: labels, classifier: inverter.classifier, spec: attack, generator: Generator(seed: seed))
    let logits = try withNoGrad { try inverter.classifier.logits(adversarialImages) }
    let fooled = (logits.argmax(dim: 1) .!= labels).to(.float32).mean().item()
    let (verdict, reconstructions, named) = try drift(images: adversarialImages, logits: logits, labels: labels, inverter: inverter, evaluation: evaluation, seed: seed)
    let scores = classTable(labels: labels.to(logits.device), predicted: logits.argmax(dim: 1), named: named, predictionName: "adversarial_prediction")
    return (verdict, fooled, adversarialImages, reconstructions, scores)
  }
}
