import Foundation
import Torch

/// Accuracy of a classifier on clean images and under attack.
public enum ClassifierEvaluation {
  public struct Result: Codable {
    /// Fraction of examples classified correctly, in [0, 1].
    public var cleanAccuracy: Double
    /// Fraction still classified correctly after the attack (nil without an attack).
    public var attackAccuracy: Double?
    public var attack: String?
    /// For targeted attacks: the fraction of images classified as their target class.
    public var targetSuccessRate: Double?
    public var count: Int
    /// Per-class accuracies, when asked for: class name → (clean, under attack).
    public var perClass: [String: [Double]]?

    enum CodingKeys: String, CodingKey {
      case cleanAccuracy = "clean_accuracy", attackAccuracy = "attack_accuracy", attack, count, perClass = "per_class"
      case targetSuccessRate = "target_success_rate"
    }
  }

  /// Evaluates `classifier` on the first `limit` examples of `dataset` (all when nil).
  public static func evaluate(
    _ classifier: any ImageClassifier, on dataset: Dataset, attack: AttackSpec? = nil, limit: Int? = nil,
    batchSize: Int = 250, perClass: Bool = false, seed: UInt64 = 0, progress: Bool = false
  ) throws -> Result {
    guard dataset.channels == classifier.config.channels, dataset.resolution == classifier.config.resolution,
      dataset.classCount == classifier.config.classCount
    else {
      throw RunError(
        "the classifier takes \(classifier.config.channels)×\(classifier.config.resolution)² images in \(classifier.config.classCount) classes; \(dataset.name) has \(dataset.channels)×\(dataset.resolution)² in \(dataset.classCount)")
    }
    try checkClassNames(classifier.config.classNames, against: dataset)
    let wasTraining = classifier.isTraining
    try classifier.train(false)
    defer { try? classifier.train(wasTraining) }
    let count = min(limit ?? dataset.count, dataset.count)
    let generator = Generator(seed: seed)
    var cleanHits = [Double](repeating: 0, count: dataset.classCount)
    var attackHits = [Double](repeating: 0, count: dataset.classCount)
    var totals = [Double](repeating: 0, count: dataset.classCount)
    var targetHits = 0.0
    let loader = DataLoader(dataset, batchSize: batchSize, shuffle: false)
    let bar = progress ? ProgressBar(total: count, label: attack == nil ? "eval" : "eval+\(attack!.description)", unit: "img") : nil
    var done = 0
    let batches = loader.epoch(0).makeIterator()
    while done < count, let full = batches.next() {
      let take = min(full.labels.count, count - done)
      let images = full.images.narrow(dim: 0, start: 0, length: take).to(classifier.device)
      let labels = full.labels.narrow(dim: 0, start: 0, length: take).to(classifier.device)
      let labelValues = labels.scalars(as: Int64.self).map(Int.init)
      let clean = try withNoGrad { try classifier.logits(images).argmax(dim: 1) }
      let cleanRight = (clean .== labels).scalars(as: UInt8.self)
      var attackRight = [UInt8](repeating: 0, count: take)
      if let attack {
        // Targeted attacks aim every image at the next class, (label + 1) mod K.
        let targets = attack.targeted ? (labels + 1).remainder(Double(dataset.classCount)) : labels
        let adversarial = try Attacks.perturb(images, labels: targets, classifier: classifier, spec: attack, generator: generator)
        let predicted = try withNoGrad { try classifier.logits(adversarial).argmax(dim: 1) }
        attackRight = (predicted .== labels).scalars(as: UInt8.self)
        if attack.targeted { targetHits += (predicted .== targets).to(.float32).sum().item() }
      }
      for i in 0..<take {
        totals[labelValues[i]] += 1
        cleanHits[labelValues[i]] += Double(cleanRight[i])
        attackHits[labelValues[i]] += Double(attackRight[i])
      }
      done += take
      bar?.update(done)
    }
    if let error = batches.error { throw error }
    let n = totals.reduce(0, +)
    var byClass: [String: [Double]]?
    if perClass {
      byClass = [:]
      for (k, name) in dataset.classNames.enumerated() where totals[k] > 0 {
        byClass![name] = [cleanHits[k] / totals[k]] + (attack == nil ? [] : [attackHits[k] / totals[k]])
      }
    }
    return Result(
      cleanAccuracy: cleanHits.reduce(0, +) / max(n, 1), attackAccuracy: attack.map { _ in attackHits.reduce(0, +) / max(n, 1) },
      attack: attack?.description, targetSuccessRate: attack?.targeted == true ? targetHits / max(n, 1) : nil,
      count: Int(n), perClass: byClass)
  }
}

/// Throws when a classifier's class names differ from a data set's (the same count of classes
/// in another order, or another data set, would give silently wrong accuracies). Generic names
/// ("class 0", …) of imported models match anything.
func checkClassNames(_ names: [String], against dataset: Dataset) throws {
  let generic = names.enumerated().allSatisfy { $0.element == "class \($0.offset)" }
  guard generic || names == dataset.classNames else {
    let differing = zip(names, dataset.classNames).enumerated().first { $0.element.0 != $0.element.1 }
    let example = differing.map { " (label \($0.offset) is '\($0.element.0)' for the classifier, '\($0.element.1)' in \(dataset.name))" } ?? ""
    throw RunError("the classifier's classes are not \(dataset.name)'s\(example): evaluate it on the data set it was trained on")
  }
}
