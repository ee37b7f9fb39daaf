import Foundation
import Torch

// The studies beyond the paper (`afterimage study depth|classes|architecture`). Each is an
// experiment over models the command found or trained; the result holds the tables behind its
// figures. A study keeps each classifier's probe results in `parts/NAME/` of its folder and
// reuses them while the classifier, its inverters and the counts are unchanged, so a rerun
// costs only what changed.

/// A classifier a study reads, with the name its tables and figures give it.
public struct StudyClassifier: Codable, Equatable, Sendable {
  public var name: String
  /// Its run directory.
  public var path: String
  /// Inverters of it (run directories), scored where the study scores reconstructions.
  public var inverters: [String]
  public init(name: String, path: String, inverters: [String] = []) {
    (self.name, self.path, self.inverters) = (name, path, inverters)
  }
}

/// Probes each classifier (`InformationExperiment`) into `folder/parts/NAME`, or reads the part
/// back when it answers for the same classifier weights, inverters and counts.
struct StudyParts {
  let folder: URL
  let device: Device
  var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

  func information(_ classifier: StudyClassifier, representations: [Representation]?, settings: InformationExperiment) throws -> InformationResult {
    var experiment = settings
    experiment.classifier = classifier.path
    experiment.representations = representations
    experiment.inverters = classifier.inverters
    let part = folder.appendingPathComponent("parts/\(classifier.name)")
    if let stored = try? StoredExperiment(folder: part), let result = stored.result as? InformationResult,
      try reusable(result, for: experiment)
    {
      log("\(classifier.name): reusing \(part.path)")
      return result
    }
    return try ExperimentRunner(device: device, output: { _ in }).run(experiment, out: part.path)
  }

  /// Whether a stored part answers `experiment`: the classifier's weights, the representations,
  /// the inverters (and their weights' dates) and the counts are the same.
  func reusable(_ result: InformationResult, for experiment: InformationExperiment) throws -> Bool {
    let model = try Classifiers.load(experiment.classifier)
    let digest = try RepresentationCache.weightsDigest(experiment.classifier, config: model.config)
    let wanted = (experiment.representations ?? model.representations).map(\.description)
    let scored = result.layers.compactMap(\.inverter).sorted()
    let partDate = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("parts").path)[.modificationDate] as? Date) ?? nil
    let invertersOlder = experiment.inverters.allSatisfy { path in
      guard let date = (try? FileManager.default.attributesOfItem(atPath: "\(path)/model.safetensors")[.modificationDate] as? Date) ?? nil,
        let partDate else { return false }
      return date <= partDate
    }
    return result.classifierDigest == digest && result.layers.map(\.representation) == wanted && scored == experiment.inverters.sorted()
      && result.count == experiment.count && result.trainCount == experiment.trainCount && invertersOlder
  }
}

/// R² of the visible factors as one table row: a column per factor.
public struct FactorColumns: Codable {
  public var objectHue, objectBrightness, size, centreX, centreY, rotation, backgroundHue, backgroundBrightness: Estimate?
  /// The mean over the visible factors.
  public var mean: Double?

  public init(_ values: [String: Estimate]) {
    (objectHue, objectBrightness, size, centreX, centreY) = (values["object_hue"], values["object_brightness"], values["size"], values["centre_x"], values["centre_y"])
    (rotation, backgroundHue, backgroundBrightness) = (values["rotation"], values["background_hue"], values["background_brightness"])
    let present = FactorResult.visibleFactors.compactMap { values[$0]?.value }
    mean = present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
  }

  enum CodingKeys: String, CodingKey {
    case objectHue = "object_hue", objectBrightness = "object_brightness", size, centreX = "centre_x", centreY = "centre_y", rotation
    case backgroundHue = "background_hue", backgroundBrightness = "background_brightness", mean = "mean_r2"
  }
}

// MARK: depth

/// `study depth`: for each classifier, the probes at every depth (stem, each stage, the pooled
/// features, the logits) and the inverters of some depths, scored against the regressor's ceiling.
public struct DepthStudy: Experiment {
  public var classifiers: [StudyClassifier]
  public var folder: String
  public var settings = InformationExperiment(classifier: "")

  public init(classifiers: [StudyClassifier], folder: String) {
    (self.classifiers, self.folder) = (classifiers, folder)
  }

  public var subject: String { classifiers.map(\.path).joined(separator: " ") }

  public func run(on device: Device) throws -> ExperimentOutcome<DepthStudyResult> {
    let parts = StudyParts(folder: URL(fileURLWithPath: folder), device: device)
    var results: [DepthStudyResult.Entry] = []
    var figures: [Figure] = []
    for classifier in classifiers {
      let information = try parts.information(classifier, representations: nil, settings: settings)
      results.append(.init(name: classifier.name, information: information))
      figures.append(.chart(name: "curve-\(classifier.name).svg", information.depthChart(title: "\(classifier.name): what each depth holds")))
      // The part's grid: originals, then a row per inverted depth.
      let grid = URL(fileURLWithPath: folder).appendingPathComponent("parts/\(classifier.name)/figure.png")
      if FileManager.default.fileExists(atPath: grid.path) {
        figures.append(.copy(name: "figure-\(classifier.name).png", from: grid))
      }
    }
    return ExperimentOutcome(DepthStudyResult(entries: results), figures: figures)
  }
}

public struct DepthStudyResult: ExperimentResult {
  public struct Entry: Codable {
    public var name: String
    public var information: InformationResult
  }
  public var entries: [Entry]

  public var kind: String { "depth-study" }
  public var title: String { "Information across depth (Shapes)" }
  public var measures: String {
    "Each Shapes classifier's representations, from the stem to the logits, probed for the nuisance factors (MLP-probe R², 1: all there, 0: nothing; feature maps average-pooled to at most 4×4 cells). The figures: R² per factor against depth, and originals above reconstructions from the inverted depths (the pooled features, then the logits)."
  }

  public var summary: String? {
    entries.map { entry in "\(entry.name): \(entry.information.summary ?? "")" }.joined(separator: " ")
  }

  public var lines: [String] { entries.flatMap { [""] + $0.information.lines } }

  public struct Row: Codable {
    public var name: String
    public var representation: String
    public var size: Int
    public var probe: FactorColumns
    public var reconstructions: FactorColumns?
  }

  /// One row per classifier and depth: the MLP probe's R² per factor (and the reconstructions'
  /// where that depth was inverted).
  public var tabulated: any Encodable {
    entries.flatMap { entry in
      entry.information.layers.map { layer in
        FlatRow(name: entry.name, representation: layer.representation, size: layer.size, what: "MLP probe", values: FactorColumns(layer.mlp))
      } + entry.information.layers.filter { $0.reconstructions != nil }.map { layer in
        FlatRow(name: entry.name, representation: layer.representation, size: layer.size, what: "from reconstructions", values: FactorColumns(layer.reconstructions!))
      }
    }
  }
}

/// A table row: who, which representation, how it was read, and R² per factor.
public struct FlatRow: Encodable {
  public var name: String
  public var representation: String
  public var size: Int?
  public var what: String
  public var values: FactorColumns

  enum CodingKeys: String, CodingKey { case name, representation, size, what = "read_by" }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(name, forKey: .name)
    try c.encode(representation, forKey: .representation)
    try c.encodeIfPresent(size, forKey: .size)
    try c.encode(what, forKey: .what)
    try values.encode(to: encoder)
  }
}

// MARK: classes

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
        classes: classes, kind: kind, classifier: classifier.path, accuracy: ClassifierAccuracy.recorded(in: classifier.path),
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

  public var kind: String { "classes-study" }
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

// MARK: architecture

/// `study architecture`: classifiers of different families on one data set, each inverted with
/// the same recipe, compared with the same reconstruction metrics.
public struct ArchitectureStudy: Experiment {
  /// Each classifier with its (first) inverter.
  public var classifiers: [StudyClassifier]
  public var evaluation: String?
  public var count = 500

  public init(classifiers: [StudyClassifier]) { self.classifiers = classifiers }

  public var subject: String { classifiers.map(\.path).joined(separator: " ") }

  public func run(on device: Device) throws -> ExperimentOutcome<ArchitectureStudyResult> {
    var rows: [ArchitectureStudyResult.Row] = []
    var figureRows: [Tensor] = []
    for classifier in classifiers {
      guard let path = classifier.inverters.first else { throw RunError("\(classifier.name) has no inverter to compare") }
      let inverter = try Inverter.load(path, classifierOverride: classifier.path, device: device)
      let data = try DatasetSource(inverter.config.dataset).open(split: .test, resolution: inverter.config.resolution).dataset
      try inverter.checkAccepts(data)
      let evaluator = try EvaluationClassifier.load(evaluation, dataset: inverter.config.dataset, device: device)
      let (report, originals, reconstructions) = try ReconstructionAnalysis.run(
        dataset: data, count: count, classifier: inverter.classifier, evaluation: evaluator, noiseSamples: 2,
        representation: inverter.config.representation
      ) { code, seed in inverter.reconstruct(representation: code, noise: inverter.noise(count: code.shape[0], seed: seed)) }
      if figureRows.isEmpty { figureRows.append(originals.narrow(dim: 0, start: 0, length: min(16, originals.shape[0])).to(.cpu)) }
      figureRows.append(reconstructions.narrow(dim: 0, start: 0, length: figureRows[0].shape[0]).to(.cpu))
      let parameters = inverter.classifier.network?.parameters.reduce(0) { $0 + $1.count } ?? 0
      rows.append(.init(
        name: classifier.name, architecture: inverter.classifier.config.architecture.rawValue, parameters: parameters,
        accuracy: ClassifierAccuracy.recorded(in: classifier.path), inverter: path, report: report,
        differenceToFirst: rows.first.map { Self.pairedDifferences(report, $0.report) }))
    }
    return ExperimentOutcome(
      ArchitectureStudyResult(rows: rows),
      figures: [.grid(name: "figure.png", images: Tensor.cat(figureRows), columns: figureRows[0].shape[0], scale: 2)])
  }
}

extension ArchitectureStudy {
  /// This row's scores minus the first row's on the same images, pair by pair, with intervals.
  static func pairedDifferences(_ mine: ReconstructionReport, _ first: ReconstructionReport) -> [String: Estimate] {
    guard let a = mine.perImage, let b = first.perImage else { return [:] }
    func floats(_ x: [Float]) -> [Double] { x.map(Double.init) }
    let both = zip(a.sameClassRetrieval, b.sameClassRetrieval).compactMap { pair -> (Double, Double)? in
      guard let x = pair.0, let y = pair.1 else { return nil }
      return (Double(x), Double(y))
    }
    return [
      "eval_accuracy": Bootstrap.meanDifference(floats(a.evaluationCorrect), floats(b.evaluationCorrect)),
      "same_class_retrieval": Bootstrap.meanDifference(both.map(\.0), both.map(\.1)),
      "perceptual_distance": Bootstrap.meanDifference(floats(a.perceptualDistance), floats(b.perceptualDistance)),
      "top1_agreement": Bootstrap.meanDifference(floats(a.top1Agreement), floats(b.top1Agreement)),
    ]
  }
}

public struct ArchitectureStudyResult: ExperimentResult {
  public struct Row: Codable {
    public var name: String
    public var architecture: String
    public var parameters: Int
    public var accuracy: Double?
    public var inverter: String
    public var report: ReconstructionReport
    /// Its scores minus the first row's on the same images (paired), with 95% intervals.
    public var differenceToFirst: [String: Estimate]?
    enum CodingKeys: String, CodingKey { case name, architecture, parameters, accuracy, inverter, report, differenceToFirst = "difference_to_first" }
  }
  public var rows: [Row]

  public var kind: String { "architecture-study" }
  public var title: String { "Architecture families, inverted with one recipe" }
  public var measures: String {
    "Classifiers of different families trained on one data set, each inverted with the same recipe and scored by the same independent evaluation classifier: how recognisable the reconstructions are, whether they pick out their own original (same-class retrieval) and how close their feature statistics come to the originals'. The picture: originals, then each family's reconstructions."
  }

  public var summary: String? {
    let scores = rows.map { row in
      String(format: "%@: evaluation accuracy on reconstructions %.1f%%, same-class retrieval %.3f, Fréchet %.2f", row.name, 100 * row.report.evaluationAccuracy, row.report.sameClassRetrieval ?? .nan, row.report.frechetDistance)
    }.joined(separator: "; ")
    let differences = rows.dropFirst().compactMap { row -> String? in
      guard let d = row.differenceToFirst, let accuracy = d["eval_accuracy"], let retrieval = d["same_class_retrieval"] else { return nil }
      return String(format: "%@ − %@, paired over the same images: evaluation accuracy %+.3f [%+.3f, %+.3f], same-class retrieval %+.3f [%+.3f, %+.3f]",
                    row.name, rows[0].name, accuracy.value, accuracy.low, accuracy.high, retrieval.value, retrieval.low, retrieval.high)
    }
    return ([scores] + differences).joined(separator: ". ") + "."
  }

  public var lines: [String] {
    ["  classifier              arch     params  accuracy  eval acc       same-class retr.  Fréchet        top-1 agr."]
      + rows.map { row in
        let r = row.report
        func pm(_ value: Double, _ interval: Estimate?) -> String {
          guard let interval, interval.low.isFinite else { return String(format: "%.3f", value) }
          return String(format: "%.3f±%.3f", value, max(value - interval.low, interval.high - value))
        }
        return "  \(row.name.padding(toLength: 22, withPad: " ", startingAt: 0))\(row.architecture.leftPadded(6))\(String(row.parameters).leftPadded(10))"
          + (row.accuracy.map { String(format: "%.3f", $0) } ?? "—").leftPadded(10)
          + pm(r.evaluationAccuracy, r.intervals?.evaluationAccuracy).leftPadded(15)
          + pm(r.sameClassRetrieval ?? .nan, r.intervals?.sameClassRetrieval).leftPadded(18)
          + pm(r.frechetDistance, r.intervals?.frechetDistance).leftPadded(15) + pm(r.top1Agreement, r.intervals?.top1Agreement).leftPadded(15)
      }
      + rows.dropFirst().compactMap { row in
        guard let d = row.differenceToFirst, !d.isEmpty else { return nil }
        let cells = d.keys.sorted().map { key in String(format: "%@ %+.3f [%+.3f, %+.3f]", key, d[key]!.value, d[key]!.low, d[key]!.high) }
        return "  \(row.name) − \(rows[0].name) (paired): " + cells.joined(separator: ", ")
      }
  }

  public struct TableRow: Codable {
    public var name: String
    public var architecture: String
    public var parameters: Int
    public var accuracy: Double?
    public var evalAccuracy: Double
    public var evalAccuracyInterval: Estimate?
    public var sameClassRetrieval: Double?
    public var sameClassRetrievalInterval: Estimate?
    public var frechetDistance: Double
    public var frechetDistanceInterval: Estimate?
    public var top1Agreement: Double
    public var top1AgreementInterval: Estimate?
    enum CodingKeys: String, CodingKey {
      case name, architecture, parameters, accuracy = "clean_accuracy", evalAccuracy = "eval_accuracy", evalAccuracyInterval = "eval_accuracy_interval"
      case sameClassRetrieval = "same_class_retrieval", sameClassRetrievalInterval = "same_class_retrieval_interval"
      case frechetDistance = "frechet_distance", frechetDistanceInterval = "frechet_distance_interval"
      case top1Agreement = "top1_agreement", top1AgreementInterval = "top1_agreement_interval"
    }
  }

  public var tabulated: any Encodable {
    rows.map { row in
      let r = row.report
      return TableRow(
        name: row.name, architecture: row.architecture, parameters: row.parameters, accuracy: row.accuracy,
        evalAccuracy: r.evaluationAccuracy, evalAccuracyInterval: r.intervals?.evaluationAccuracy, sameClassRetrieval: r.sameClassRetrieval,
        sameClassRetrievalInterval: r.intervals?.sameClassRetrieval, frechetDistance: r.frechetDistance,
        frechetDistanceInterval: r.intervals?.frechetDistance, top1Agreement: r.top1Agreement, top1AgreementInterval: r.intervals?.top1Agreement)
    }
  }
}

/// A classifier's clean test accuracy as its training recorded it (results.json's
/// `evaluation.clean_accuracy`), nil when it recorded none.
enum ClassifierAccuracy {
  static func recorded(in path: String) -> Double? {
    guard let data = try? Data(contentsOf: URL(fileURLWithPath: path).appendingPathComponent("results.json")),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let evaluation = object["evaluation"] as? [String: Any]
    else { return nil }
    return (evaluation["clean_accuracy"] as? NSNumber)?.doubleValue
  }
}
