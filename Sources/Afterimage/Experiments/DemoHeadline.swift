import Foundation
import Torch

/// The headline: the side-by-side table per data set, and standard vs robust on the findings
/// that have one number each; as terminal text, as HTML, and as the demo's results.json.
public struct DemoHeadline: Codable {
  /// One method's row of the side-by-side table.
  public struct Row: Codable {
    public struct Label: Codable {
      public var dataset: String
      /// The inverter's kind (`standard-fidelity`, …) or `optimisation (standard)`.
      public var method: String
    }

    public var label: Label
    public var scores: CompareResult.Row

    public init(dataset: String, method: String, scores: CompareResult.Row) {
      label = Label(dataset: dataset, method: method)
      self.scores = scores
    }

    public var dataset: String { label.dataset }
    public var method: String { label.method }

    // Flat, as the side-by-side table reads: dataset, method, then the scores' fields.
    public init(from decoder: any Decoder) throws { (label, scores) = (try Label(from: decoder), try CompareResult.Row(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try label.encode(to: encoder); try scores.encode(to: encoder) }
  }

  /// One finding's number for the standard and the robust classifier (nil: not measured, as
  /// "no misclassified image"); a fraction shows as a percentage, any other number with three
  /// decimals.
  public struct Finding: Codable {
    public var dataset: String
    public var finding: String
    public var standard: Double?
    public var robust: Double?
    /// nil (files written before it was recorded): a fraction.
    public var isFraction: Bool?

    enum CodingKeys: String, CodingKey { case dataset, finding, standard, robust, isFraction = "is_fraction" }

    public init(dataset: String, finding: String, standard: Double?, robust: Double?, isFraction: Bool = true) {
      (self.dataset, self.finding, self.standard, self.robust, self.isFraction) = (dataset, finding, standard, robust, isFraction)
    }

    var format: String { isFraction ?? true ? "%.1f%%" : "%.3f" }
  }

  public var rows: [Row] = []
  public var findings: [Finding] = []

  enum CodingKeys: String, CodingKey { case rows = "headline", findings = "standard_vs_robust" }

  /// The side-by-side table's columns: title, format, and the score shown.
  static let columns: [(title: String, format: String, value: (CompareResult.Row) -> Double)] = [
    ("PSNR dB", "%.2f", { $0.report.psnr }), ("SSIM", "%.3f", { $0.report.ssim }), ("perc. dist", "%.3f", { $0.report.perceptualDistance }),
    ("eval acc", "%.1f%%", { $0.report.evaluationAccuracy }), ("retr@10", "%.3f", { $0.report.retrieval }),
    ("top-1 agr", "%.1f%%", { $0.report.top1Agreement }), ("noise div", "%.3f", { $0.report.noiseDiversity }),
    ("Fréchet", "%.2f", { $0.report.frechetDistance }),
  ]

  public init(rows: [Row], findings: [Finding]) {
    self.rows = rows
    self.findings = findings
  }

  /// Reads the headline off the plan's results (in step order) and the classifiers' own
  /// results.json files.
  public init(plan: DemoPlan, results: [any ExperimentResult]) throws {
    let ran = Array(zip(plan.steps, results))
    /// The first number `read` gives from a result of type R for `data` and classifier `kind`.
    func value<R: ExperimentResult>(_ data: String, _ kind: String, _ read: (R) -> Double?) -> Double? {
      for (step, result) in ran where step.dataset == data && step.classifier == kind {
        if let typed = result as? R, let number = read(typed) { return number }
      }
      return nil
    }
    for (step, result) in ran {
      guard let table = result as? CompareResult else { continue }
      for entry in table.rows {
        let method = entry.isOptimisation ? "optimisation (standard)" : URL(fileURLWithPath: entry.name).lastPathComponent.replacingOccurrences(of: "\(step.dataset)-", with: "")
        rows.append(Row(dataset: step.dataset, method: method, scores: entry))
      }
    }
    for data in Set(plan.steps.map(\.dataset)).sorted() {
      func both<R: ExperimentResult>(_ finding: String, _ type: R.Type, isFraction: Bool = true, _ read: (R) -> Double?) {
        let standard = value(data, "standard", read), robust = value(data, "robust", read)
        if standard != nil || robust != nil {
          findings.append(Finding(dataset: data, finding: finding, standard: standard, robust: robust, isFraction: isFraction))
        }
      }
      func classifierAccuracy(_ kind: String) throws -> Double {
        let url = URL(fileURLWithPath: "\(plan.models)/classifiers/\(data)-\(kind)/results.json")
        return try JSONFiles.read(ClassifierTrainingResults.self, from: url).evaluation.cleanAccuracy
      }
      findings.append(Finding(dataset: data, finding: "classifier test accuracy", standard: try classifierAccuracy("standard"), robust: try classifierAccuracy("robust")))
      both("PGD-20 fools the classifier", AdversarialResult.self) { $0.attackSuccess }
      func fidelity(_ kind: String, _ score: (ReconstructionReport) -> Double) throws -> Double {
        guard let row = rows.first(where: { $0.dataset == data && $0.method == "\(kind)-fidelity" }) else {
          throw RunError("the side-by-side table of \(data) has no \(kind)-fidelity row")
        }
        return score(row.scores.report)
      }
      findings.append(Finding(dataset: data, finding: "eval classifier names the class of reconstructions", standard: try fidelity("standard") { $0.evaluationAccuracy }, robust: try fidelity("robust") { $0.evaluationAccuracy }))
      findings.append(Finding(dataset: data, finding: "retrieval@10 (chance 0.1)", standard: try fidelity("standard") { $0.retrieval }, robust: try fidelity("robust") { $0.retrieval }, isFraction: false))
      findings.append(Finding(dataset: data, finding: "noise diversity (same logits, new z)", standard: try fidelity("standard") { $0.noiseDiversity }, robust: try fidelity("robust") { $0.noiseDiversity }, isFraction: false))
      for factor in ["object_hue", "centre_x", "size", "background_brightness"] {
        both("factor R² from reconstructions: \(factor)", FactorResult.self, isFraction: false) { $0.reconstructions[factor] }
      }
      // What the logits themselves hold, the ceiling for any inverter: linearly, and to an MLP.
      for factor in ["object_hue", "size"] {
        both("factor R² of a linear probe on the logits: \(factor)", FactorResult.self, isFraction: false) { $0.linearLogitProbe[factor] }
      }
      for factor in ["object_hue", "centre_x", "size"] {
        both("factor R² of an MLP probe on the logits: \(factor)", FactorResult.self, isFraction: false) { $0.mlpLogitProbe[factor] }
      }
      both("adversarial: eval sees the true class", AdversarialResult.self) { $0.trueClass }
      both("adversarial: eval sees the adversarial class", AdversarialResult.self) { $0.predictedClass }
      both("misclassified: eval sees the predicted class", MisclassifiedResult.self) { $0.misclassified?.predictedClass }
      both("logit noise σ=1: top-1 kept", LogitCurveResult.self) { $0.manipulation == .noise ? $0.point(at: 1)?.top1Agreement : nil }
    }
  }

  static func format(_ value: Double?, _ spec: String) -> String {
    guard let value else { return "n/a" }  // not measured (no misclassified image, say)
    return spec.hasSuffix("%%") ? String(format: spec, 100 * value) : String(format: spec, value)
  }

  public var text: String {
    var lines: [String] = []
    for data in Set(rows.map(\.dataset)).sorted() {
      lines.append("\(data): every inverter on the same held-out images (eval acc: an independent classifier names the true class)")
      lines.append("  " + "method".padding(toLength: 24, withPad: " ", startingAt: 0) + Self.columns.map { $0.title.leftPadded(10) }.joined())
      for row in rows where row.dataset == data {
        lines.append("  " + row.method.padding(toLength: 24, withPad: " ", startingAt: 0) + Self.columns.map { Self.format($0.value(row.scores), $0.format).leftPadded(10) }.joined())
      }
      lines.append("")
    }
    lines.append("standard vs robust classifier (fidelity inverters):")
    lines.append("  " + "finding".padding(toLength: 68, withPad: " ", startingAt: 0) + "standard".leftPadded(10) + "robust".leftPadded(10))
    for finding in findings {
      lines.append("  " + "\(finding.dataset): \(finding.finding)".padding(toLength: 68, withPad: " ", startingAt: 0)
                   + Self.format(finding.standard, finding.format).leftPadded(10) + Self.format(finding.robust, finding.format).leftPadded(10))
    }
    return lines.joined(separator: "\n")
  }

  public var html: String {
    let escape = HTML.escape
    var page = "<section><h2>Headline</h2>\n<p class=\"what\">Each data set's held-out images reconstructed by every shipped inverter and scored the same way. PSNR/SSIM: pixel fidelity; perc. dist: distance in an independent network's features (lower is closer); eval acc: an independently trained classifier names the true class of the reconstruction; retr@10: the reconstruction picks out its own original among 10; top-1 agr: the inverted classifier gives the reconstruction the original's class; noise div: how much the picture changes when only the generator's noise changes; Fréchet: distance between the feature statistics of reconstructions and originals.</p>\n"
    for data in Set(rows.map(\.dataset)).sorted() {
      page += "<h3>\(escape(data))</h3><table><tr><th>method</th>" + Self.columns.map { "<th>\(escape($0.title))</th>" }.joined() + "</tr>\n"
      for row in rows where row.dataset == data {
        page += "<tr><td>\(escape(row.method))</td>" + Self.columns.map { "<td>\(Self.format($0.value(row.scores), $0.format))</td>" }.joined() + "</tr>\n"
      }
      page += "</table>\n"
    }
    page += "<h3>Standard vs robust classifier</h3><table><tr><th>finding</th><th>standard</th><th>robust</th></tr>\n"
    for finding in findings {
      page += "<tr><td>\(escape(finding.dataset)): \(escape(finding.finding))</td><td>\(Self.format(finding.standard, finding.format))</td><td>\(Self.format(finding.robust, finding.format))</td></tr>\n"
    }
    return page + "</table></section>\n"
  }
}

/// The demo's results.json: the headline and every experiment's result by folder name.
public struct DemoResults: Codable {
  public static let currentVersion = 1

  /// One experiment of the demo, with what it ran on.
  public struct Section: Codable {
    public var dataset: String
    /// "all", "standard" or "robust".
    public var classifier: String
    public var result: any ExperimentResult

    enum CodingKeys: String, CodingKey { case experiment, dataset, classifier, results }

    public init(dataset: String, classifier: String, result: any ExperimentResult) {
      self.dataset = dataset
      self.classifier = classifier
      self.result = result
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      let kind = try container.decode(String.self, forKey: .experiment)
      guard let type = ExperimentCatalog.resultTypes[kind] else {
        throw DecodingError.dataCorruptedError(forKey: .experiment, in: container, debugDescription: "unknown experiment '\(kind)'")
      }
      dataset = try container.decode(String.self, forKey: .dataset)
      classifier = try container.decode(String.self, forKey: .classifier)
      func decode<R: ExperimentResult>(_ type: R.Type) throws -> any ExperimentResult { try container.decode(R.self, forKey: .results) }
      result = try decode(type)
    }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(result.kind, forKey: .experiment)
      try container.encode(dataset, forKey: .dataset)
      try container.encode(classifier, forKey: .classifier)
      try result.encode(to: container.superEncoder(forKey: .results))
    }
  }

  public var schemaVersion: Int
  public var headline: DemoHeadline
  public var experiments: [String: Section]

  public init(headline: DemoHeadline, experiments: [String: Section]) {
    schemaVersion = Self.currentVersion
    self.headline = headline
    self.experiments = experiments
  }

  /// The results of `plan`'s steps, by folder name.
  public init(headline: DemoHeadline, plan: DemoPlan, results: [any ExperimentResult]) {
    self.init(headline: headline, experiments: Dictionary(uniqueKeysWithValues: zip(plan.steps, results).map { step, result in
      (URL(fileURLWithPath: step.folder).lastPathComponent, Section(dataset: step.dataset, classifier: step.classifier, result: result))
    }))
  }

  enum CodingKeys: String, CodingKey { case schemaVersion = "schema_version", experiments }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    schemaVersion = try container.decodeIfPresent(Int.self, forKey: .schemaVersion) ?? 0
    experiments = try container.decode([String: Section].self, forKey: .experiments)
    headline = try DemoHeadline(from: decoder)
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(schemaVersion, forKey: .schemaVersion)
    try container.encode(experiments, forKey: .experiments)
    try headline.encode(to: encoder)
  }
}

extension String {
  /// Right-aligned in `width` columns (one leading space when it does not fit).
  public func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
