import Foundation
import Torch

/// `study classes`: Shapes classifiers with K classes, standard and robust: what their logits
/// hold of each factor against K, and the inverters of the largest K scored.
public struct ClassesStudy: Experiment {
  /// Each classifier with its class count and kind (`standard` or `robust`).
  public var classifiers: [(classes: Int, kind: String, classifier: StudyClassifier)]
  public var folder: String
  public var settings = InformationExperiment(classifier: "")

  public init(classifiers: [(classes: Int, kind: String, classifier: StudyClassifier)], folder: String) {
    (self.classifiers, self.folder) = (classifiers, folder)
  }

  public var subject: String { classifiers.map(\.classifier.path).joined(separator: " ") }

  public func run(on device: Device) throws -> ExperimentOutcome<ClassesStudyResult> {
    let parts = StudyParts(folder: URL(fileURLWithPath: folder), device: device)
    var points: [ClassesStudyResult.Point] = []
    var rows: [Tensor] = []
    for (classes, kind, classifier) in classifiers {
      let information = try parts.information(classifier, representations: [.logits], settings: settings)
      guard information.classCount == classes else {
        throw RunError("\(classifier.path) has \(information.classCount) classes, not \(classes)")
      }
      let logits = information.layers[0]
      points.append(.init(
        classes: classes, kind: kind, classifier: classifier.path, accuracy: ClassifierTrainingResults.recordedAccuracy(of: classifier.path),
        linear: logits.linear, mlp: logits.mlp, reconstructions: logits.reconstructions, ceiling: logits.reconstructions == nil ? nil : information.ceiling))
      // Originals (once per data set), then each inverter's reconstructions of them.
      for path in classifier.inverters {
        let inverter = try Inverter.load(path, classifierOverride: classifier.path, device: device)
        let data = try DatasetSource(inverter.config.dataset).open(split: .test, resolution: inverter.config.resolution).dataset
        let originals = try data.batch(at: Array(0..<min(12, data.count))).images
        if rows.isEmpty || rows[0].shape != originals.shape { rows.append(originals) }
        rows.append(try inverter.reconstruct(images: originals, noise: inverter.noise(count: originals.shape[0], seed: 0)).to(.cpu))
      }
    }
    let result = ClassesStudyResult(points: points)
    var figures: [Figure] = [.chart(name: "curve.svg", result.chart())]
    if let first = rows.first, rows.allSatisfy({ $0.shape == first.shape }) {
      figures.append(.grid(name: "figure.png", images: Tensor.cat(rows), columns: first.shape[0], scale: 2))
    }
    return ExperimentOutcome(result, figures: figures)
  }
}

public struct ClassesStudyResult: ExperimentResult {
  public struct Point: Codable {
    public var classes: Int
    public var kind: String
    public var classifier: String
    /// Clean test accuracy as its training recorded it (results.json).
    public var accuracy: Double?
    public var linear: [String: Estimate]
    public var mlp: [String: Estimate]
    public var reconstructions: [String: Estimate]?
    public var ceiling: [String: Estimate]?
  }
  public var points: [Point]

  public static let kinds = ["classes-study"]
  public var title: String { "Information against the number of classes (Shapes)" }
  public var measures: String {
    "Shapes classifiers with K = \(Set(points.map(\.classes)).sorted().map(String.init).joined(separator: ", ")) classes, standard and PGD-robust, trained by the shipped recipe scaled to K: an MLP probe reads each nuisance factor off the K logits (R², 1: all there). The largest K's inverters are scored against the factor regressor's ceiling; the picture shows originals above their reconstructions (standard, then robust)."
  }

  public var summary: String? {
    let kinds = Array(Set(points.map(\.kind))).sorted(by: >)
    return kinds.map { kind in
      let mine = points.filter { $0.kind == kind }.sorted { $0.classes < $1.classes }
      let text = mine.map { String(format: "K=%d %.2f", $0.classes, FactorColumns($0.mlp).mean ?? .nan) }.joined(separator: ", ")
      return "\(kind): mean MLP R² over the visible factors \(text)."
    }.joined(separator: " ")
  }

  public var lines: [String] {
    func cell(_ value: Estimate?) -> String { value.map { String(format: "%.2f", $0.value) }.map { $0.leftPadded(8) } ?? "—".leftPadded(8) }
    let ordered = points.sorted { ($0.kind, $0.classes) < ($1.kind, $1.classes) }
    var lines = ["MLP-probe R² of the logits per factor (rows) for each classifier (columns):",
                 "  factor                " + ordered.map { "\($0.kind.prefix(3))-\($0.classes)".leftPadded(8) }.joined()]
    lines += FactorResult.visibleFactors.map { factor in
      "  \(factor.padding(toLength: 22, withPad: " ", startingAt: 0))" + ordered.map { cell($0.mlp[factor]) }.joined()
    }
    for point in ordered where point.reconstructions != nil {
      lines += ["", "\(point.kind) K=\(point.classes), from reconstructions (ceiling):"]
      lines += FactorResult.visibleFactors.map { factor in
        "  \(factor.padding(toLength: 22, withPad: " ", startingAt: 0))" + cell(point.reconstructions?[factor]) + cell(point.ceiling?[factor])
      }
    }
    return lines
  }

  public var tabulated: any Encodable {
    points.sorted { ($0.kind, $0.classes) < ($1.kind, $1.classes) }.flatMap { point -> [FlatRow] in
      let name = "\(point.kind), K=\(point.classes)"
      return [FlatRow(name: name, representation: "logits", size: point.classes, what: "MLP probe", values: FactorColumns(point.mlp))]
        + (point.reconstructions.map { [FlatRow(name: name, representation: "logits", size: point.classes, what: "from reconstructions", values: FactorColumns($0))] } ?? [])
    }
  }

  /// R² against K: a colour per factor, standard solid, robust dashed.
  public func chart() -> LineChart {
    var series: [LineChart.Series] = []
    for (colour, factor) in FactorResult.visibleFactors.enumerated() {
      for kind in ["standard", "robust"] {
        let mine = points.filter { $0.kind == kind }
        guard !mine.isEmpty else { continue }
        series.append(.init(
          name: "\(factor) (\(kind))", points: mine.compactMap { point in point.mlp[factor].map { (Double(point.classes), $0.value) } },
          dashed: kind == "robust", colour: colour))
      }
    }
    var chart = LineChart(title: "What the logits hold against K (solid: standard, dashed: robust)", xLabel: "classes K", yLabel: "R² (MLP probe on the logits; below 0 at 0)", series: series)
    chart.xTicks = Set(points.map(\.classes)).sorted().map { (Double($0), String($0)) }
    chart.yRange = 0...1
    (chart.width, chart.height) = (720, 420)
    return chart
  }
}
