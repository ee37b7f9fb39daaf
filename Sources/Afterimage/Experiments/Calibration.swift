import Foundation

/// Whether a data set's inverters measure well enough for the findings judged through them to
/// describe the classifier rather than the instrument. The thresholds are docs/SCIENCE.md's
/// ("Calibration: when the instrument may judge"), fixed before any recalibrated verdict was seen.
public struct Calibration: Codable {
  /// Recovery efficiency (averaged draws) required of every factor the MLP probe finds.
  public static let minimumEfficiency = 0.5
  /// Evaluation accuracy on reconstructions ÷ on originals.
  public static let minimumAccuracyRatio = 0.8
  /// Φ's top-1 agreement − evaluation accuracy, as a fraction.
  public static let maximumGap = 0.10

  /// One inverter's calibration numbers.
  public struct Check: Codable {
    /// The inverter's kind in the demo (`standard-fidelity`, `robust-fidelity`).
    public var inverter: String
    /// Recovery efficiency of each factor the probe finds (nil: the data set has no known factors).
    public var efficiency: [String: Estimate]?
    /// Factors on which the regressor and the geometric ruler disagree beyond their intervals.
    public var rulersDisagree: [String]?
    public var evaluationAccuracy: Double
    public var evaluationAccuracyOnOriginals: Double
    /// The gap, when the report measured it.
    public var gap: Estimate?

    enum CodingKeys: String, CodingKey {
      case inverter, efficiency, rulersDisagree = "rulers_disagree", evaluationAccuracy = "eval_accuracy"
      case evaluationAccuracyOnOriginals = "eval_accuracy_originals", gap = "drawn_gap"
    }

    /// What failed, each with its number and threshold; empty when the inverter passes.
    public var failures: [String] {
      var failed: [String] = []
      for (factor, estimate) in (efficiency ?? [:]).sorted(by: { $0.key < $1.key }) where !(estimate.value >= minimumEfficiency) {
        failed.append(String(format: "%@ recovery efficiency %.2f < %.1f", factor, estimate.value, minimumEfficiency))
      }
      for factor in rulersDisagree ?? [] where efficiency?[factor] != nil {
        failed.append("the two rulers disagree on \(factor)")
      }
      let ratio = evaluationAccuracy / max(evaluationAccuracyOnOriginals, 1e-9)
      if !(ratio >= minimumAccuracyRatio) {
        failed.append(String(format: "eval accuracy %.1f%% is %.3f of the originals' %.1f%% (< %.1f)", 100 * evaluationAccuracy, ratio, 100 * evaluationAccuracyOnOriginals, minimumAccuracyRatio))
      }
      if let gap, !(gap.value <= maximumGap) {
        failed.append(String(format: "gap %+.1f points > %.0f", 100 * gap.value, 100 * maximumGap))
      }
      return failed
    }

    public var passes: Bool { failures.isEmpty }

    /// The numbers in a line, whether they pass or not.
    public var summary: String {
      var parts: [String] = []
      if let efficiency, !efficiency.isEmpty {
        parts.append("efficiency " + efficiency.sorted { $0.key < $1.key }.map { String(format: "%@ %.2f", $0.key, $0.value.value) }.joined(separator: ", "))
      }
      parts.append(String(format: "eval accuracy %.1f%% (originals %.1f%%)", 100 * evaluationAccuracy, 100 * evaluationAccuracyOnOriginals))
      if let gap { parts.append(String(format: "gap %+.1f points", 100 * gap.value)) }
      return "\(inverter): " + parts.joined(separator: ", ")
    }
  }

  public var dataset: String
  public var checks: [Check]

  public init(dataset: String, checks: [Check]) {
    self.dataset = dataset
    self.checks = checks
  }

  /// Calibrated when every inverter the findings read passes.
  public var passes: Bool { checks.allSatisfy(\.passes) }

  /// The calibration as terminal lines: the verdict, then each inverter's numbers and what failed.
  public var lines: [String] {
    var lines = ["\(dataset) instrument: \(passes ? "calibrated" : "NOT calibrated") (thresholds: docs/SCIENCE.md, \"Calibration\")"]
    for check in checks {
      lines.append("  " + check.summary)
      if !check.passes { lines.append("    fails: " + check.failures.joined(separator: "; ")) }
    }
    return lines
  }

  /// The calibration in one line (the report, and a gated verdict's evidence).
  public var line: String {
    let verdict = passes ? "calibrated" : "NOT calibrated: " + checks.flatMap { check in check.failures.map { "\(check.inverter) \($0)" } }.joined(separator: "; ")
    return "\(dataset) instrument: \(verdict) (\(checks.map(\.summary).joined(separator: "; ")))"
  }
}
