import Foundation
import TestSupport
import XCTest

@testable import Afterimage

/// Results travel as types: every result round-trips through results.json, files written before
/// results were versioned still read, and a missing field is an error naming file and field.
final class ExperimentResultTests: XCTestCase {
  static let report = ReconstructionReport(
    count: 20, psnr: 14.5, ssim: 0.41, perceptualDistance: 0.7, top1Agreement: 0.9, logitCosine: 0.95, evaluationAccuracy: 0.8,
    evaluationAccuracyOnOriginals: 0.95, retrieval: 0.6, retrievalGroupSize: 5, noiseDiversity: 0.01, frechetDistance: 3.25)

  /// One result of every type the catalog names.
  static let examples: [any ExperimentResult] = {
    let point = ManipulationPoint(magnitude: 1, perceptualChange: 0.2, psnrToBaseline: 21, top1Agreement: 0.75, evaluationAccuracy: 0.5)
    let drift = ClassExperiments.Drift(count: 4, trueClass: 0.25, predictedClass: 0.5)
    let factors = ["object_hue": 0.9, "size": 0.4]
    let estimates = ["object_hue": Estimate(value: 0.9, low: 0.85, high: 0.93), "size": Estimate(value: 0.4, low: .nan, high: .nan)]
    let information = InformationResult(
      classifier: "c", classifierDigest: "0123456789abcdef", dataset: "shapes", classCount: 10, count: 20, trainCount: 100,
      layers: [.init(representation: "features:pool", size: 32, linear: estimates, mlp: estimates, reconstructions: estimates, inverter: "i"),
               .init(representation: "logits", size: 10, linear: estimates, mlp: estimates)],
      ceiling: estimates, regressor: "r")
    return [
      ReconstructionResult(source: .init(inverter: "runs/inv", dataset: "shapes"), report: report),
      CompareResult(dataset: "shapes", rows: [.init(name: "runs/inv", report: report, seconds: 2), .init(name: "optimisation (2 steps) of c", report: report, seconds: 8)]),
      FactorResult(reconstructions: factors, originals: factors, linearLogitProbe: factors, mlpLogitProbe: factors),
      NoiseResult(noiseDiversity: 0.03, samples: 4),
      LogitCurveResult(manipulation: .shift, count: 6, points: [point]),
      LogitCurveResult(manipulation: .scale, count: 6, points: [point]),
      LogitCurveResult(manipulation: .noise, count: 6, points: [point]),
      LogitCurveResult(manipulation: .topk, count: 6, points: [point]),
      InterpolationResult(pairs: 3, points: [.init(alpha: 0.5, probabilityOfA: 0.4, probabilityOfB: 0.6)]),
      MisclassifiedResult(scored: 10, correct: drift, misclassified: nil),
      AdversarialResult(attack: "PGD-20 L∞ ε=0.0314", count: 8, trueClass: 0.125, predictedClass: 0.75, attackSuccess: 1),
      TransformResult(points: [TransformPoint(transform: "hue", magnitude: 0.25, equivarianceError: 0.1, change: 0.3)]),
      IterationResult(count: 6, points: [.init(iteration: 1, distanceToOriginal: 0.5, distanceToPrevious: 0.5, top1Agreement: 0.9, logitCosine: 0.95, evaluationAccuracy: 0.7)]),
      SeedStudyResult(dataset: "shapes", count: 20, pairs: (0..<2).map { SeedStudyResult.Pair(standard: "s\($0)", robust: "r\($0)", standardReport: report, robustReport: report) }),
      information,
      DepthStudyResult(entries: [.init(name: "shapes-standard", information: information)]),
      ClassesStudyResult(points: [10, 40].map { k in
        ClassesStudyResult.Point(classes: k, kind: "robust", classifier: "c\(k)", accuracy: 0.9, linear: estimates, mlp: estimates, reconstructions: k == 40 ? estimates : nil, ceiling: nil)
      }),
      ArchitectureStudyResult(rows: [.init(name: "fashion-mnist-vgg", architecture: "vgg", parameters: 72000, accuracy: 0.9, inverter: "i", report: report)]),
    ]
  }()

  func encoded(_ value: any Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  func testEveryCatalogKindHasAnExampleAndEveryResultRoundTrips() throws {
    XCTAssertEqual(Set(Self.examples.map(\.kind)), Set(ExperimentCatalog.kinds), "every kind the catalog names is tested")
    let root = try temporaryDirectory()
    for (index, result) in Self.examples.enumerated() {
      let folder = root.appendingPathComponent("\(index)-\(result.kind)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try StoredExperiment.write(result, subject: "runs/inv", in: folder)
      let stored = try StoredExperiment(folder: folder)
      XCTAssertEqual(stored.record.experiment, result.kind)
      XCTAssertEqual(stored.record.subject, "runs/inv")
      let record = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("experiment.json"))) as! [String: Any]
      XCTAssertEqual(Set(record.keys), ["experiment", "subject"])
      XCTAssertTrue(type(of: stored.result) == type(of: result), "\(result.kind) reads back as \(type(of: result))")
      XCTAssertEqual(try encoded(stored.result), try encoded(result), "\(result.kind) round-trips")
      let file = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("results.json"))) as! [String: Any]
      XCTAssertEqual(file["schema_version"] as? Int, 1)
      XCTAssertEqual(file["experiment"] as? String, result.kind)
      XCTAssertFalse(result.lines.isEmpty && result.title.isEmpty)
    }
  }

  /// Writes the two files an `analyze` command wrote before results were versioned.
  func legacyFolder(_ kind: String, _ results: String, in root: URL) throws -> URL {
    let folder = root.appendingPathComponent(kind)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try Data(#"{"experiment": "\#(kind)", "inverter": "old/inv"}"#.utf8).write(to: folder.appendingPathComponent("experiment.json"))
    try Data(results.utf8).write(to: folder.appendingPathComponent("results.json"))
    return folder
  }

  func testResultsWrittenBeforeVersioningStillRead() throws {
    let root = try temporaryDirectory()
    // The adversarial result had no `attack` and wrote its count as a double.
    let adversarial = try StoredExperiment(folder: legacyFolder(
      "adversarial", #"{"attack_success": 0.5, "count": 8.0, "eval_says_predicted_class": 0.25, "eval_says_true_class": 0.625}"#, in: root))
    XCTAssertEqual(adversarial.record.subject, "old/inv", "experiment.json's `inverter`, from before it was renamed `subject`, still reads")
    let typed = try XCTUnwrap(adversarial.result as? AdversarialResult)
    XCTAssertEqual(typed.attackSuccess, 0.5)
    XCTAssertEqual(typed.count, 8)
    XCTAssertNil(typed.attack)
    XCTAssertTrue(typed.lines[0].contains("the attack fooled the classifier on 50.0% of 8 images"), typed.lines[0])
    // Curves were bare arrays of points; the manipulation came from experiment.json.
    let curve = try StoredExperiment(folder: legacyFolder(
      "logit-noise", #"[{"eval_accuracy": 0.5, "magnitude": 1, "perceptual_change": 0.1, "psnr_to_baseline": 20, "top1_agreement": 0.75}]"#, in: root))
    let points = try XCTUnwrap(curve.result as? LogitCurveResult)
    XCTAssertEqual(points.manipulation, .noise)
    XCTAssertEqual(points.point(at: 1)?.top1Agreement, 0.75)
    let noise = try XCTUnwrap(StoredExperiment(folder: legacyFolder("noise", #"{"noise_diversity": 0.25, "samples": 4.0}"#, in: root)).result as? NoiseResult)
    XCTAssertEqual(noise.samples, 4)
    let misclassified = try XCTUnwrap(StoredExperiment(folder: legacyFolder(
      "misclassified", #"{"correct": {"count": 3, "eval_says_true_class": 1, "eval_says_predicted_class": 1}}"#, in: root)).result as? MisclassifiedResult)
    XCTAssertNil(misclassified.misclassified)
    XCTAssertEqual(misclassified.summary, "No misclassified images among those scored.")
    let row = #"{"count": 20, "eval_accuracy": 0.8, "eval_accuracy_originals": 0.9, "frechet_distance": 3, "images_per_second": 10, "logit_cosine": 0.9, "name": "runs/a", "noise_diversity": 0, "perceptual_distance": 0.5, "psnr": 12, "retrieval": 0.5, "retrieval_n": 10, "ssim": 0.3, "top1_agreement": 1}"#
    let compare = try XCTUnwrap(StoredExperiment(folder: legacyFolder("compare", "[\(row)]", in: root)).result as? CompareResult)
    XCTAssertEqual(compare.rows.map(\.name), ["runs/a"])
    XCTAssertEqual(compare.rows[0].report.retrievalGroupSize, 10)
    // And the report builds from old folders.
    let page = try HTMLReport.build(from: ["adversarial", "logit-noise", "noise", "misclassified", "compare"].map { root.appendingPathComponent($0) })
    XCTAssertEqual(page.components(separatedBy: "<section>").count - 1, 5)
    XCTAssertTrue(page.contains("Noise on the logits") && page.contains("runs/a"))
  }

  func testAMissingFieldIsAnErrorNamingTheFileAndTheField() throws {
    let root = try temporaryDirectory()
    let folder = try legacyFolder("adversarial", #"{"schema_version": 1, "experiment": "adversarial", "result": {"count": 8, "eval_says_predicted_class": 0.25, "eval_says_true_class": 0.625}}"#, in: root)
    XCTAssertThrowsError(try StoredExperiment(folder: folder)) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains(folder.appendingPathComponent("results.json").path), message)
      XCTAssertTrue(message.contains("'result.attack_success' is missing"), message)
    }
    let newer = try legacyFolder("noise", #"{"schema_version": 99, "experiment": "noise", "result": {}}"#, in: root)
    XCTAssertThrowsError(try StoredExperiment(folder: newer)) { XCTAssertTrue("\($0)".contains("schema 99, newer than"), "\($0)") }
    let unknown = try legacyFolder("dream", "{}", in: root)
    XCTAssertThrowsError(try StoredExperiment(folder: unknown)) { XCTAssertTrue("\($0)".contains("does not know"), "\($0)") }
    let corrupt = try legacyFolder("factors", "{\"reconstructions\": ", in: root)
    XCTAssertThrowsError(try StoredExperiment(folder: corrupt)) { XCTAssertTrue("\($0)".contains("not valid JSON"), "\($0)") }
  }

  func testTheDemosResultsRoundTrip() throws {
    let row = CompareResult.Row(name: "m/inverters/shapes-standard-fidelity", report: Self.report, seconds: 1)
    let headline = DemoHeadline(
      rows: [.init(dataset: "shapes", method: "standard-fidelity", scores: row)],
      findings: [.init(dataset: "shapes", finding: "PGD-20 fools the classifier", standard: 1, robust: 0.25), .init(dataset: "shapes", finding: "r", standard: nil, robust: 0.5, isFraction: false)])
    let results = DemoResults(headline: headline, experiments: [
      "shapes-adversarial-standard": .init(dataset: "shapes", classifier: "standard", result: Self.examples[10]),
      "shapes-compare": .init(dataset: "shapes", classifier: "all", result: Self.examples[1]),
    ])
    let data = try JSONEncoder().encode(results)
    let decoded = try JSONDecoder().decode(DemoResults.self, from: data)
    XCTAssertEqual(try encoded(decoded), try encoded(results))
    XCTAssertTrue(decoded.experiments["shapes-adversarial-standard"]?.result is AdversarialResult)
    XCTAssertEqual(decoded.headline.findings[1].standard, nil)
    // The headline's table reads the typed scores.
    XCTAssertTrue(decoded.headline.text.contains("standard-fidelity"))
    XCTAssertTrue(decoded.headline.text.contains("   14.50"), decoded.headline.text)
    XCTAssertTrue(decoded.headline.text.contains("100.0%") && decoded.headline.text.contains("25.0%"))
    let flat = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    XCTAssertEqual((flat["headline"] as? [[String: Any]])?.first?["method"] as? String, "standard-fidelity")
    XCTAssertEqual((flat["headline"] as? [[String: Any]])?.first?["psnr"] as? Double, 14.5)
  }

  func testTheHTMLEscaperEscapesEveryMarkupCharacter() {
    XCTAssertEqual(HTML.escape(#"<a href="x">Tom & Jerry's</a>"#), "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;")
    XCTAssertEqual(HTML.escape("plain ü 😀"), "plain ü 😀")
    XCTAssertEqual(HTML.escape("&amp;"), "&amp;amp;", "escaping is not idempotent: text is escaped once, where it enters markup")
    let chart = LineChart(title: "a<b & \"c\"", xLabel: "'x'", yLabel: "y>", series: [.init(name: "<s>", points: [(0, 0), (1, 1)])]).svg()
    XCTAssertFalse(chart.contains("a<b") || chart.contains("<s>") || chart.contains("y>"), chart)
  }
}
