import Foundation
import Torch

/// The headline: the side-by-side table per data set, and standard vs robust on the findings
/// that have one number each; as terminal text, as HTML, and as the demo's results.json.
public struct DemoHeadline: Codable {
  /// One method's row of the side-by-side table.
  public struct Row: Codable {
    public struct Label: Codable {
      public var dataset: String
      /// The inverter's label (`standard-fidelity`, …) or `optimisation (standard)`.
      public var method: String
      /// Whose classifier the inverter inverts and its preset (nil: the optimisation baseline, or
      /// a file written before they were recorded).
      public var classifierKind: ClassifierKind?
      public var preset: InverterPreset?

      enum CodingKeys: String, CodingKey { case dataset, method, classifierKind = "classifier_kind", preset }
    }

    public var label: Label
    public var scores: CompareResult.Row

    public init(dataset: String, method: String, scores: CompareResult.Row) {
      label = Label(dataset: dataset, method: method)
      self.scores = scores
    }

    /// The row of the shipped inverter `inverter`.
    public init(_ inverter: InverterID, scores: CompareResult.Row) {
      label = Label(dataset: inverter.classifier.dataset, method: inverter.label, classifierKind: inverter.classifier.kind, preset: inverter.preset)
      self.scores = scores
    }

    public var dataset: String { label.dataset }
    public var method: String { label.method }

    /// Whether this is the row of `data`'s inverter of the `kind` classifier with `preset`.
    func isInverter(_ data: String, _ kind: ClassifierKind, _ preset: InverterPreset) -> Bool {
      dataset == data && label.classifierKind == kind && label.preset == preset
    }

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
    /// The 95% bootstrap intervals of the two numbers (nil where none was measured).
    public var standardInterval: Estimate?
    public var robustInterval: Estimate?

    enum CodingKeys: String, CodingKey {
      case dataset, finding, standard, robust, isFraction = "is_fraction", standardInterval = "standard_interval", robustInterval = "robust_interval"
    }

    public init(dataset: String, finding: String, standard: Double?, robust: Double?, isFraction: Bool = true) {
      (self.dataset, self.finding, self.standard, self.robust, self.isFraction) = (dataset, finding, standard, robust, isFraction)
    }

    public init(dataset: String, finding: String, standard: Estimate?, robust: Estimate?, isFraction: Bool = true) {
      self.init(dataset: dataset, finding: finding, standard: standard?.value, robust: robust?.value, isFraction: isFraction)
      (standardInterval, robustInterval) = (standard, robust)
    }

    var format: String { isFraction ?? true ? "%.1f%%" : "%.3f" }
  }

  public var rows: [Row] = []
  public var findings: [Finding] = []
  /// The paper's seven findings judged on each data set (absent in files written before).
  public var verdicts: [FindingVerdict]? = []
  /// Each data set's instrument calibration, which gates its verdicts (absent in files written before).
  public var calibrations: [Calibration]? = []

  enum CodingKeys: String, CodingKey { case rows = "headline", findings = "standard_vs_robust", verdicts, calibrations }

  /// The side-by-side table's columns: title, format, and the score shown.
  static let columns: [(title: String, format: String, value: (ReconstructionReport) -> Double?, interval: (ReconstructionReport.Intervals) -> Estimate?)] = [
    ("PSNR dB", "%.2f", { $0.psnr }, { $0.psnr }), ("SSIM", "%.3f", { $0.ssim }, { $0.ssim }),
    ("perc. dist", "%.3f", { $0.perceptualDistance }, { $0.perceptualDistance }),
    ("eval acc", "%.1f%%", { $0.evaluationAccuracy }, { $0.evaluationAccuracy }), ("retr@10", "%.3f", { $0.retrieval }, { $0.retrieval }),
    ("same-class@10", "%.3f", { $0.sameClassRetrieval }, { $0.sameClassRetrieval }),
    ("top-1 agr", "%.1f%%", { $0.top1Agreement }, { $0.top1Agreement }), ("noise div", "%.3f", { $0.noiseDiversity }, { $0.noiseDiversity }),
    ("Fréchet", "%.2f", { $0.frechetDistance }, { $0.frechetDistance }),
  ]

  /// One cell of the side-by-side table: the value and its interval's half-width.
  static func cell(_ report: ReconstructionReport, _ column: Int) -> String {
    let spec = columns[column]
    return format(spec.value(report), report.intervals.flatMap(spec.interval), spec.format)
  }

  public init(rows: [Row], findings: [Finding], verdicts: [FindingVerdict] = []) {
    self.rows = rows
    self.findings = findings
    self.verdicts = verdicts
  }

  /// The inputs of the seven verdicts for `data`, read from the plan's typed results.
  static func findingInputs(_ data: String, rows: [Row], ran: [(DemoPlan.Step, any ExperimentResult)]) -> FindingInputs {
    var inputs = FindingInputs(dataset: data)
    var factorResults: [ClassifierKind: FactorResult] = [:]
    inputs.standard = rows.first { $0.isInverter(data, .standard, .fidelity) }?.scores.report
    inputs.robust = rows.first { $0.isInverter(data, .robust, .fidelity) }?.scores.report
    for (step, result) in ran where step.dataset == data {
      let isRobust = step.classifier == .robust
      switch result {
      case let drift as MisclassifiedResult:
        if isRobust { inputs.misclassifiedRobust = drift.misclassified } else { inputs.misclassifiedStandard = drift.misclassified }
      case let curve as LogitCurveResult where curve.manipulation == .noise:
        if isRobust {
          (inputs.logitNoiseRobust, inputs.logitNoiseCount.robust) = (curve.point(at: 1), curve.count ?? 0)
        } else {
          (inputs.logitNoiseStandard, inputs.logitNoiseCount.standard) = (curve.point(at: 1), curve.count ?? 0)
        }
      case let transforms as TransformResult:
        if isRobust { inputs.transformsRobust = transforms.points } else { inputs.transformsStandard = transforms.points }
      case let factors as FactorResult:
        if !isRobust { inputs.probe = factors.mlpLogitProbe }
        factorResults[isRobust ? .robust : .standard] = factors
      default: break
      }
    }
    inputs.calibration = Calibration(dataset: data, checks: zip(ClassifierKind.allCases, [inputs.standard, inputs.robust]).compactMap { kind, report in
      guard let report else { return nil }
      let factors = factorResults[kind]
      return Calibration.Check(
        inverter: InverterID(of: ClassifierID(data, kind), .fidelity).label, efficiency: factors.map { $0.efficiency ?? [:] }, rulersDisagree: factors?.rulersDisagree,
        evaluationAccuracy: report.evaluationAccuracy, evaluationAccuracyOnOriginals: report.evaluationAccuracyOnOriginals,
        gap: report.intervals?.drawnGap)
    })
    return inputs
  }

  /// Reads the headline off the plan's results (in step order) and the classifiers' own
  /// results.json files.
  public init(plan: DemoPlan, results: [any ExperimentResult]) throws {
    let ran = Array(zip(plan.steps, results))
    let studies = try plan.storedStudies()
    for (step, result) in ran {
      guard let table = result as? CompareResult else { continue }
      // The table's rows are the step's inverters, in order, then the optimisation baseline.
      var inverters = step.inverters.makeIterator()
      for entry in table.rows {
        if entry.isOptimisation {
          rows.append(Row(dataset: step.dataset, method: "optimisation (standard)", scores: entry))
        } else if let inverter = inverters.next() {
          rows.append(Row(inverter, scores: entry))
        } else {
          throw RunError("the side-by-side table of \(step.dataset) has more rows than the plan has inverters")
        }
      }
    }
    var calibrations: [Calibration] = []
    verdicts = Set(plan.steps.map(\.dataset)).sorted().flatMap { data in
      var inputs = Self.findingInputs(data, rows: rows, ran: ran)
      inputs.seeds = studies.first { $0.dataset == data }?.result
      if let calibration = inputs.calibration { calibrations.append(calibration) }
      return inputs.verdicts()
    }
    self.calibrations = calibrations
    for data in Set(plan.steps.map(\.dataset)).sorted() {
      /// The first estimate `read` gives from a result of type R for `data` and classifier `kind`.
      func estimate<R: ExperimentResult>(_ kind: ClassifierKind, _ read: (R) -> Estimate?) -> Estimate? {
        for (step, result) in ran where step.dataset == data && step.classifier == kind {
          if let typed = result as? R, let number = read(typed) { return number }
        }
        return nil
      }
      func both<R: ExperimentResult>(_ finding: String, _ type: R.Type, isFraction: Bool = true, _ read: (R) -> Estimate?) {
        let standard = estimate(.standard, read), robust = estimate(.robust, read)
        if standard != nil || robust != nil {
          findings.append(Finding(dataset: data, finding: finding, standard: standard, robust: robust, isFraction: isFraction))
        }
      }
      func classifierAccuracy(_ kind: ClassifierKind) throws -> Estimate {
        let evaluation = try ClassifierTrainingResults.read(ofRun: ModelID.classifier(ClassifierID(data, kind)).path(in: plan.models)).evaluation
        return Bootstrap.proportion(evaluation.cleanAccuracy, of: evaluation.count)
      }
      findings.append(Finding(dataset: data, finding: "classifier test accuracy", standard: try classifierAccuracy(.standard), robust: try classifierAccuracy(.robust)))
      both("PGD-20 fools the classifier", AdversarialResult.self) { Bootstrap.proportion($0.attackSuccess, of: $0.count) }
      func fidelity(_ kind: ClassifierKind, _ score: (ReconstructionReport.Intervals) -> Estimate?) throws -> Estimate? {
        guard let row = rows.first(where: { $0.isInverter(data, kind, .fidelity) }) else {
          throw RunError("the side-by-side table of \(data) has no \(InverterID(of: ClassifierID(data, kind), .fidelity).label) row")
        }
        return row.scores.report.intervals.flatMap(score)
      }
      func fidelityRow(_ finding: String, isFraction: Bool = true, _ score: (ReconstructionReport.Intervals) -> Estimate?) throws {
        findings.append(Finding(dataset: data, finding: finding, standard: try fidelity(.standard, score), robust: try fidelity(.robust, score), isFraction: isFraction))
      }
      try fidelityRow("eval classifier names the class of reconstructions") { $0.evaluationAccuracy }
      try fidelityRow("same-class retrieval@10 (chance 0.1)", isFraction: false) { $0.sameClassRetrieval }
      try fidelityRow("retrieval@10 (chance 0.1)", isFraction: false) { $0.retrieval }
      try fidelityRow("noise diversity (same logits, new z)", isFraction: false) { $0.noiseDiversity }
      try fidelityRow("satisfied, not drawn: top-1 agreement − eval accuracy") { $0.drawnGap }
      for factor in ["object_hue", "centre_x", "size", "background_brightness"] {
        both("factor R² from reconstructions: \(factor)", FactorResult.self, isFraction: false) { $0.intervals?.reconstructions[factor] }
      }
      for factor in ["centre_x", "size"] {
        both("factor R² from reconstructions, averaged over draws: \(factor)", FactorResult.self, isFraction: false) { $0.averaged?[factor] }
        both("geometric ruler R², averaged over draws: \(factor)", FactorResult.self, isFraction: false) { $0.geometric?.averaged[factor] }
      }
      for factor in ["size"] {
        both("recovery efficiency (averaged draws / MLP probe): \(factor)", FactorResult.self, isFraction: false) { $0.efficiency?[factor] }
      }
      // What the logits themselves hold, the ceiling for any inverter: linearly, and to an MLP.
      for factor in ["object_hue", "size"] {
        both("factor R² of a linear probe on the logits: \(factor)", FactorResult.self, isFraction: false) { result in
          result.linearLogitProbe[factor].map(Estimate.unknown)  // a ridge fit: no interval
        }
      }
      for factor in ["object_hue", "centre_x", "size"] {
        both("factor R² of an MLP probe on the logits: \(factor)", FactorResult.self, isFraction: false) { $0.intervals?.mlpLogitProbe[factor] }
      }
      both("adversarial: eval sees the true class", AdversarialResult.self) { Bootstrap.proportion($0.trueClass, of: $0.count) }
      both("adversarial: eval sees the adversarial class", AdversarialResult.self) { Bootstrap.proportion($0.predictedClass, of: $0.count) }
      both("misclassified: eval sees the predicted class", MisclassifiedResult.self) { result in
        result.misclassified.map { Bootstrap.proportion($0.predictedClass, of: $0.count) }
      }
      both("logit noise σ=1: top-1 kept", LogitCurveResult.self) { $0.manipulation == .noise ? $0.point(at: 1)?.top1AgreementInterval : nil }
    }
  }

  static func format(_ value: Double?, _ spec: String) -> String {
    guard let value else { return "n/a" }  // not measured (no misclassified image, say)
    return spec.hasSuffix("%%") ? String(format: spec, 100 * value) : String(format: spec, value)
  }

  /// The verdict of `finding` on `data` (nil when not judged).
  func verdict(_ finding: Int, _ data: String) -> FindingVerdict? {
    verdicts?.first { $0.finding == finding && $0.dataset == data }
  }

  /// A verdict and its deciding interval in one cell: "holds  +0.12 [0.05–0.19]".
  static func cell(_ verdict: FindingVerdict?) -> String {
    guard let verdict else { return "n/a" }
    guard let effect = verdict.effect, verdict.verdict != .notMeasured else { return verdict.verdict.rawValue }
    return "\(verdict.verdict.rawValue)  \(String(format: "%+.3f", effect.value)) [\(String(format: "%.3f", effect.low))–\(String(format: "%.3f", effect.high))]"
  }

  /// The verdict table as terminal lines: one row per finding, one column per data set.
  public var verdictLines: [String] {
    let datasets = Set((verdicts ?? []).map(\.dataset)).sorted()
    guard !datasets.isEmpty else { return [] }
    var lines = ["the paper's findings: verdict per data set, and the deciding difference with its 95% interval (docs/SCIENCE.md)"]
    lines.append("  " + "finding".padding(toLength: 58, withPad: " ", startingAt: 0) + datasets.map { $0.padding(toLength: 52, withPad: " ", startingAt: 0) }.joined())
    for finding in PaperFinding.all {
      let claim = "\(finding.number). \(finding.claim)"
      let shown = claim.count > 56 ? String(claim.prefix(55)) + "…" : claim
      lines.append("  " + shown.padding(toLength: 58, withPad: " ", startingAt: 0)
                   + datasets.map { Self.cell(verdict(finding.number, $0)).padding(toLength: 52, withPad: " ", startingAt: 0) }.joined())
    }
    lines += (calibrations ?? []).flatMap { $0.lines.map { "  " + $0 } }
    return lines + [""]
  }

  /// `value ±half-width` of the interval, the terminal's short form.
  static func format(_ value: Double?, _ interval: Estimate?, _ spec: String) -> String {
    guard let value else { return "n/a" }
    guard let interval, interval.hasInterval else { return format(value, spec) }
    let scale = spec.hasSuffix("%%") ? 100.0 : 1
    let bare = spec.hasSuffix("%%") ? String(spec.dropLast(2)) : spec
    let half = scale * max(value - interval.low, interval.high - value)
    return String(format: "\(bare)±\(bare)", scale * value, half)
  }

  public var text: String {
    var lines: [String] = verdictLines
    for data in Set(rows.map(\.dataset)).sorted() {
      lines.append("\(data): every inverter on the same held-out images (eval acc: an independent classifier names the true class)")
      lines.append("  " + "method".padding(toLength: 24, withPad: " ", startingAt: 0) + Self.columns.map { $0.title.leftPadded(14) }.joined())
      for row in rows where row.dataset == data {
        lines.append("  " + row.method.padding(toLength: 24, withPad: " ", startingAt: 0) + Self.columns.indices.map { Self.cell(row.scores.report, $0).leftPadded(14) }.joined())
      }
      lines.append("")
    }
    lines.append("standard vs robust classifier (fidelity inverters; ± the 95% interval):")
    lines.append("  " + "finding".padding(toLength: 76, withPad: " ", startingAt: 0) + "standard".leftPadded(15) + "robust".leftPadded(15))
    for finding in findings {
      lines.append("  " + "\(finding.dataset): \(finding.finding)".padding(toLength: 76, withPad: " ", startingAt: 0)
                   + Self.format(finding.standard, finding.standardInterval, finding.format).leftPadded(15)
                   + Self.format(finding.robust, finding.robustInterval, finding.format).leftPadded(15))
    }
    return lines.joined(separator: "\n")
  }

  /// The baseline the evaluation classifier recognises best on `data` (the overview figure's last row).
  public func bestBaseline(_ data: String) -> String? {
    rows.filter { $0.dataset == data && ([.upconv, .deepsim].contains($0.label.preset) || $0.scores.isOptimisation) }
      .max { $0.scores.report.evaluationAccuracy < $1.scores.report.evaluationAccuracy }?.method
  }

  /// The opening screen: the verdict table and each data set's overview figure (`overview`:
  /// PNG bytes by data set), then the side-by-side tables and standard vs robust.
  public func html(overview: [String: Data] = [:]) -> String {
    let escape = HTML.escape
    var page = ""
    let datasets = Set((verdicts ?? []).map(\.dataset)).sorted()
    if !datasets.isEmpty {
      page += "<section id=\"verdicts\"><h2>The paper's seven findings, judged on the shipped models</h2>\n"
      page += "<p class=\"what\">Each finding is decided by one difference, signed so that positive is what the paper found, with its 95% bootstrap interval over images: <b>holds</b> when the interval lies above 0, <b>does not hold</b> when it lies below (the data say the opposite), <b>inconclusive</b> when it straddles 0; <b>instrument not calibrated</b> when the data set's inverters fail calibration (their line is under the table), so the number would describe the inverter, not the classifier. docs/SCIENCE.md gives each rule.</p>\n"
      page += "<div class=\"wide\"><table class=\"verdicts\"><tr><th>the paper found</th>" + datasets.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
      for finding in PaperFinding.all {
        page += "<tr><td><b>\(finding.number).</b> \(escape(finding.claim))<br><small>decided by: \(escape(finding.test))</small></td>"
        for data in datasets {
          guard let verdict = verdict(finding.number, data) else { page += "<td>n/a</td>"; continue }
          let css = verdict.verdict.rawValue.replacingOccurrences(of: " ", with: "-")
          let effect = verdict.effect.map { " " + escape($0.formatted("%+.3f")) } ?? ""
          page += "<td><span class=\"\(css)\">\(escape(verdict.verdict.rawValue))</span>\(effect)<ul>"
            + verdict.evidence.map { "<li>\(escape($0))</li>" }.joined() + "</ul></td>"
        }
        page += "</tr>\n"
      }
      page += "</table></div>\n"
      for calibration in calibrations ?? [] {
        page += "<p class=\"calibration \(calibration.passes ? "calibrated" : "not-calibrated")\">\(escape(calibration.line))</p>\n"
      }
      for data in datasets {
        guard let png = overview[data] else { continue }
        let baseline = bestBaseline(data).map { ", the best baseline (\(escape($0)))" } ?? ""
        page += "<figure><img alt=\"\(escape(data)) originals and reconstructions\" src=\"data:image/png;base64,\(png.base64EncodedString())\"><figcaption>\(escape(data)), rows top to bottom: held-out originals, the standard classifier's reconstructions, the robust classifier's\(baseline).</figcaption></figure>\n"
      }
      page += "</section>\n"
    }
    page += "<section><h2>Every inverter side by side</h2>\n<p class=\"what\">Each data set's held-out images reconstructed by every shipped inverter and scored the same way, each number with its 95% bootstrap interval over images. PSNR/SSIM: pixel fidelity; perc. dist: distance in an independent network's features (lower is closer); eval acc: an independently trained classifier names the true class of the reconstruction; retr@10: the reconstruction picks out its own original among 10; same-class@10: among 10 originals of its own class (chance 0.1: only what is beyond the class wins); top-1 agr: the inverted classifier gives the reconstruction the original's class; noise div: how much the picture changes when only the generator's noise changes; Fréchet: distance between the feature statistics of reconstructions and originals (lower is closer).</p>\n"
    for data in Set(rows.map(\.dataset)).sorted() {
      page += "<h3>\(escape(data))</h3><div class=\"wide\"><table><tr><th>method</th>" + Self.columns.map { "<th>\(escape($0.title))</th>" }.joined() + "</tr>\n"
      for row in rows where row.dataset == data {
        let report = row.scores.report
        page += "<tr><td>\(escape(row.method))</td>" + Self.columns.map { column in
          Self.cell(column.value(report), report.intervals.flatMap(column.interval), column.format)
        }.joined() + "</tr>\n"
      }
      page += "</table></div>\n"
    }
    page += "<h3>Standard vs robust classifier</h3><div class=\"wide\"><table><tr><th>finding</th><th>standard</th><th>robust</th></tr>\n"
    for finding in findings {
      page += "<tr><td>\(escape(finding.dataset)): \(escape(finding.finding))</td>" + Self.cell(finding.standard, finding.standardInterval, finding.format)
        + Self.cell(finding.robust, finding.robustInterval, finding.format) + "</tr>\n"
    }
    return page + "</table></div></section>\n"
  }

  /// A table cell: `value` in `spec`, its 95% interval small beside it when it has one, n/a without a value.
  static func cell(_ value: Double?, _ interval: Estimate?, _ spec: String) -> String {
    guard let value else { return "<td>n/a</td>" }
    guard let interval, interval.hasInterval else { return "<td>\(format(value, spec))</td>" }
    return "<td>\(format(value, spec)) <small>[\(format(interval.low, spec))–\(format(interval.high, spec))]</small></td>"
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
      guard let type = ExperimentCatalog.resultType(named: kind) else {
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
      (URL(fileURLWithPath: step.folder).lastPathComponent, Section(dataset: step.dataset, classifier: step.classifier?.rawValue ?? "all", result: result))
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
