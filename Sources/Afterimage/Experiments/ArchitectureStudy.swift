import Foundation
import Torch

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
        accuracy: ClassifierTrainingResults.recordedAccuracy(of: classifier.path), inverter: path, report: report,
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

  public static let kinds = ["architecture-study"]
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
