import Foundation

/// What the numbers say about one of the paper's findings on one data set.
public enum Verdict: String, Codable, Sendable {
  case holds
  case doesNotHold = "does not hold"
  case inconclusive
  /// Not measured on this data set (the experiment it needs did not run or had no images).
  case notMeasured = "not measured"
  /// Measured, but through inverters that fail calibration (`Calibration`): the number would
  /// describe the instrument, not the classifier, so no verdict is given.
  case instrumentNotCalibrated = "instrument not calibrated"

  /// The rule every verdict follows: `effect` is the 95% interval of a difference signed so
  /// that positive is what the paper found. Wholly above 0: holds; wholly below: does not hold
  /// (the data say the opposite); across 0: inconclusive.
  public static func judging(_ effect: Estimate?) -> Verdict {
    guard let effect, effect.low.isFinite, effect.high.isFinite else { return .notMeasured }
    switch effect.side(of: 0) {
    case 1: return .holds
    case -1: return .doesNotHold
    default: return .inconclusive
    }
  }
}

/// One of the paper's seven findings, as docs/SCIENCE.md lists them: what it claims and the
/// difference Afterimage decides it by.
public struct PaperFinding: Sendable {
  public let number: Int
  /// The paper's claim, in a line.
  public let claim: String
  /// The deciding difference, signed so that positive is the paper's direction.
  public let test: String

  public static let all: [PaperFinding] = [
    PaperFinding(number: 1, claim: "Reconstructions from a robust classifier's logits are recognisable at a glance",
                 test: "evaluation accuracy on robust reconstructions − 50%"),
    PaperFinding(number: 2, claim: "Information beyond the class survives in the logits",
                 test: "same-class retrieval@N of standard reconstructions − chance (1/N)"),
    PaperFinding(number: 3, claim: "Robust classifiers' reconstructions keep more of the image than standard ones'",
                 test: "same-class retrieval@10, robust − standard, on the same images (over inverter seeds where a seed study is shipped)"),
    PaperFinding(number: 4, claim: "Resampling the noise changes a robust model's reconstruction less",
                 test: "noise diversity, standard − robust, on the same images (over inverter seeds where a seed study is shipped)"),
    PaperFinding(number: 5, claim: "Reconstructions of misclassified images drift toward the predicted class",
                 test: "misclassified images (robust classifier): evaluation sees the predicted class − sees the true class"),
    PaperFinding(number: 6, claim: "Gaussian noise on the logits changes a standard model's reconstruction far more",
                 test: "logit noise σ = 1: top-1 kept, robust − standard"),
    PaperFinding(number: 7, claim: "Image transformations reveal what the classifier is invariant to",
                 test: "robust: min(most clearly followed transformation's change − equivariance error, −(most clearly ignored one's)): above 0 when one is followed and another ignored"),
  ]
}

/// A finding's verdict on one data set, with the numbers that decide it.
public struct FindingVerdict: Codable {
  public var finding: Int
  public var dataset: String
  public var verdict: Verdict
  /// The deciding difference (`PaperFinding.test`); nil when not measured.
  public var effect: Estimate?
  /// The numbers behind it, each with its interval, in words.
  public var evidence: [String]

  public init(finding: Int, dataset: String, effect: Estimate?, evidence: [String], verdict: Verdict? = nil) {
    self.finding = finding
    self.dataset = dataset
    self.effect = effect
    self.evidence = evidence
    self.verdict = verdict ?? Verdict.judging(effect)
  }

  public var claim: String { PaperFinding.all.first { $0.number == finding }?.claim ?? "finding \(finding)" }
}

/// The inputs of the verdicts for one data set, read from the demo's typed results.
public struct FindingInputs {
  public var dataset: String
  /// The fidelity inverters' side-by-side rows, on the same images.
  public var standard: ReconstructionReport?
  public var robust: ReconstructionReport?
  public var misclassifiedRobust: ClassExperiments.Drift?
  public var misclassifiedStandard: ClassExperiments.Drift?
  public var logitNoiseStandard: ManipulationPoint?
  public var logitNoiseRobust: ManipulationPoint?
  public var logitNoiseCount: (standard: Int, robust: Int) = (0, 0)
  public var transformsRobust: [TransformPoint] = []
  public var transformsStandard: [TransformPoint] = []
  /// The MLP probe's R² per factor (Shapes), for the evidence of finding 2.
  public var probe: [String: Double] = [:]
  /// A shipped study of several inverter seeds (`analyze seeds`): when present, findings 3 and
  /// 4 are decided by its pooled differences, over more images and seeds than one run.
  public var seeds: SeedStudyResult?
  /// The fidelity inverters' calibration; when it fails, every measured finding reads
  /// "instrument not calibrated", its number and the failed checks kept as evidence.
  public var calibration: Calibration?

  public init(dataset: String) { self.dataset = dataset }

  /// The seven verdicts.
  public func verdicts() -> [FindingVerdict] {
    let judged = [recognisable(), beyondClass(), robustKeepsMore(), noiseInvariance(), misclassifiedDrift(), logitNoise(), transformations()]
    guard let calibration, !calibration.passes else { return judged }
    return judged.map { verdict in
      guard verdict.verdict != .notMeasured else { return verdict }
      var gated = verdict
      gated.evidence.append("\(verdict.verdict.rawValue) as measured, but the \(calibration.dataset) instrument is not calibrated (its calibration: under the verdict table, and `calibrations` in results.json)")
      gated.verdict = .instrumentNotCalibrated
      return gated
    }
  }

  static func percent(_ estimate: Estimate?) -> String { estimate?.formatted("%.1f%%") ?? "n/a" }
  static func number(_ estimate: Estimate?) -> String { estimate?.formatted("%.3f") ?? "n/a" }

  /// Shifts an estimate by `offset` (a difference from a fixed reference).
  static func shifted(_ estimate: Estimate?, by offset: Double) -> Estimate? {
    estimate.map { Estimate(value: $0.value + offset, low: $0.low + offset, high: $0.high + offset) }
  }

  func recognisable() -> FindingVerdict {
    let accuracy = robust?.intervals?.evaluationAccuracy
    return FindingVerdict(finding: 1, dataset: dataset, effect: Self.shifted(accuracy, by: -0.5), evidence: [
      "evaluation accuracy: robust \(Self.percent(accuracy)), standard \(Self.percent(standard?.intervals?.evaluationAccuracy))",
      String(format: "on the originals: %.1f%%", 100 * (robust?.evaluationAccuracyOnOriginals ?? .nan)),
    ])
  }

  func beyondClass() -> FindingVerdict {
    let sameClass = standard?.intervals?.sameClassRetrieval
    let n = standard?.retrievalGroupSize ?? 10
    var evidence = [
      "same-class retrieval@\(n): standard \(Self.number(sameClass)), robust \(Self.number(robust?.intervals?.sameClassRetrieval)) (chance \(String(format: "%.3f", 1 / Double(n))))"
    ]
    if let best = probe.max(by: { $0.value < $1.value }) {
      evidence.append(String(format: "the MLP probe reads %@ off the standard logits at R² %.2f", best.key, best.value))
    }
    return FindingVerdict(finding: 2, dataset: dataset, effect: Self.shifted(sameClass, by: -1 / Double(n)), evidence: evidence)
  }

  /// The paired difference `robust − standard` of a per-image score (nil without per-image scores).
  func paired(_ column: (ReconstructionReport.PerImageScores) -> [Float?]) -> Estimate? {
    guard let a = robust?.perImage.map(column), let b = standard?.perImage.map(column) else { return nil }
    let (x, y) = ReconstructionReport.PerImageScores.paired(a, b)
    return x.isEmpty ? nil : Bootstrap.meanDifference(x, y)
  }

  /// The seed study's line for `score`: the pooled difference, the per-seed ones and the spread.
  func seedEvidence(_ score: String) -> [String] {
    guard let seeds, let comparison = seeds.comparison(named: score) else { return [] }
    return [String(
      format: "%d seeds × %d images, robust − standard: %@ (per seed %@; seed sd %.3f standard, %.3f robust)", seeds.pairs.count, seeds.count,
      Self.number(comparison.pooled), comparison.perSeed.map { String(format: "%+.3f", $0.value) }.joined(separator: ", "),
      comparison.standardSpread, comparison.robustSpread)]
  }

  static func negated(_ estimate: Estimate?) -> Estimate? { estimate.map { Estimate(value: -$0.value, low: -$0.high, high: -$0.low) } }

  /// A verdict from a seed study's comparison: its pooled interval decides, but only when every
  /// seed's difference has the pooled one's sign (else the seeds disagree: inconclusive).
  static func seedVerdict(_ comparison: SeedStudyResult.Comparison?, negated: Bool = false) -> (effect: Estimate?, verdict: Verdict?) {
    guard let comparison else { return (nil, nil) }
    let effect = negated ? Self.negated(comparison.pooled) : comparison.pooled
    let verdict = Verdict.judging(effect)
    return (effect, comparison.seedsAgree || verdict == .notMeasured ? verdict : .inconclusive)
  }

  func robustKeepsMore() -> FindingVerdict {
    let retrieval = paired { $0.sameClassRetrieval }
    let distance = paired { $0.perceptualDistance.map(Optional.some) }
    let accuracy = paired { $0.evaluationCorrect.map(Optional.some) }
    let fromSeeds = Self.seedVerdict(seeds?.comparison(named: "same-class retrieval@10"))
    return FindingVerdict(finding: 3, dataset: dataset, effect: fromSeeds.effect ?? retrieval, evidence: [
      "same-class retrieval@10, robust − standard: \(Self.number(retrieval))",
      "perceptual distance, robust − standard (negative: robust closer): \(Self.number(distance))",
      "evaluation accuracy, robust − standard: \(Self.percent(accuracy))",
    ] + seedEvidence("same-class retrieval@10"), verdict: fromSeeds.verdict)
  }

  func noiseInvariance() -> FindingVerdict {
    let difference = Self.negated(paired { $0.noiseDiversity?.map(Optional.some) ?? [] })
    let fromSeeds = Self.seedVerdict(seeds?.comparison(named: "noise diversity"), negated: true)
    return FindingVerdict(finding: 4, dataset: dataset, effect: fromSeeds.effect ?? difference, evidence: [
      "noise diversity: standard \(Self.number(standard?.intervals?.noiseDiversity)), robust \(Self.number(robust?.intervals?.noiseDiversity))",
      "standard − robust: \(Self.number(difference))",
    ] + seedEvidence("noise diversity"), verdict: fromSeeds.verdict)
  }

  /// `P(predicted) − P(true)` over misclassified images' reconstructions: each image is one
  /// of +1 (the evaluation classifier names the predicted class), −1 (the true class) or 0.
  static func drift(_ drift: ClassExperiments.Drift?) -> Estimate? {
    guard let drift, drift.count > 0 else { return nil }
    let predicted = Int((drift.predictedClass * Double(drift.count)).rounded())
    let truth = Int((drift.trueClass * Double(drift.count)).rounded())
    let values = Array(repeating: 1.0, count: predicted) + Array(repeating: -1.0, count: truth)
      + Array(repeating: 0.0, count: max(0, drift.count - predicted - truth))
    return Bootstrap.mean(values)
  }

  func misclassifiedDrift() -> FindingVerdict {
    let robustDrift = Self.drift(misclassifiedRobust)
    func describe(_ name: String, _ drift: ClassExperiments.Drift?) -> String {
      guard let drift else { return "\(name): no misclassified image" }
      return String(format: "%@: %d misclassified; evaluation sees the predicted class in %.1f%%, the true class in %.1f%%", name, drift.count,
                    100 * drift.predictedClass, 100 * drift.trueClass)
    }
    return FindingVerdict(finding: 5, dataset: dataset, effect: robustDrift, evidence: [
      describe("robust", misclassifiedRobust), describe("standard", misclassifiedStandard),
      "predicted − true, robust: \(Self.percent(robustDrift)); standard: \(Self.percent(Self.drift(misclassifiedStandard)))",
    ])
  }

  func logitNoise() -> FindingVerdict {
    var effect: Estimate?
    if let robust = logitNoiseRobust, let standard = logitNoiseStandard, logitNoiseCount.robust >= 2, logitNoiseCount.standard >= 2 {
      // The top-1 agreements are fractions of 0/1 outcomes: their per-image values follow.
      func outcomes(_ fraction: Double, _ count: Int) -> [Double] {
        let kept = Int((fraction * Double(count)).rounded())
        return Array(repeating: 1, count: kept) + Array(repeating: 0, count: max(0, count - kept))
      }
      effect = Bootstrap.independentDifference(
        outcomes(robust.top1Agreement, logitNoiseCount.robust), outcomes(standard.top1Agreement, logitNoiseCount.standard))
    }
    return FindingVerdict(finding: 6, dataset: dataset, effect: effect, evidence: [
      "top-1 kept under σ = 1: standard \(Self.percent(logitNoiseStandard?.top1AgreementInterval)), robust \(Self.percent(logitNoiseRobust?.top1AgreementInterval))",
      "perceptual change: standard \(Self.number(logitNoiseStandard?.perceptualChangeInterval)), robust \(Self.number(logitNoiseRobust?.perceptualChangeInterval))",
    ])
  }

  /// At each transformation's strongest magnitude: which are followed, which ignored.
  static func strongest(_ points: [TransformPoint]) -> [TransformPoint] {
    Dictionary(grouping: points, by: \.transform).compactMap { $0.value.max { $0.magnitude < $1.magnitude } }.sorted { $0.transform < $1.transform }
  }

  func transformations() -> FindingVerdict {
    let points = Self.strongest(transformsRobust).filter { $0.followed?.hasInterval ?? false }
    guard !points.isEmpty else { return FindingVerdict(finding: 7, dataset: dataset, effect: nil, evidence: ["not measured"]) }
    let followed = points.filter { $0.followed!.side(of: 0) == 1 }.map(\.transform)
    let ignored = points.filter { $0.followed!.side(of: 0) == -1 }.map(\.transform)
    // The most clearly followed transformation (highest lower bound) and the most clearly
    // ignored one (lowest upper bound). The effect is the smaller of "how much the first is
    // followed" and "how much the second is ignored": above 0 exactly when one transformation
    // is clearly followed and another clearly ignored, which is what telling invariances apart
    // takes. All followed, or all ignored, says nothing about which the classifier ignores.
    let most = points.max { $0.followed!.low < $1.followed!.low }!.followed!
    let least = points.min { $0.followed!.high < $1.followed!.high }!.followed!
    let effect = Estimate(value: min(most.value, -least.value), low: min(most.low, -least.high), high: min(most.high, -least.low))
    return FindingVerdict(finding: 7, dataset: dataset, effect: effect, evidence: [
      "followed (robust): \(followed.isEmpty ? "none" : followed.joined(separator: ", "))",
      "ignored (robust): \(ignored.isEmpty ? "none" : ignored.joined(separator: ", "))",
      "change − equivariance error, most clearly followed \(Self.number(most)), most clearly ignored \(Self.number(least))",
    ])
  }
}
