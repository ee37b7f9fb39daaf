@testable import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// The report page as a reader meets it: built from experiment folders and the demo's headline,
/// opened in a real browser at 1400 px (Tests/browser/report_browser.py).
final class ReportBrowserTests: XCTestCase {
  /// A report of every kind that shapes the page: a wide side-by-side table, a curve measured
  /// in an unsorted order, factors with intervals, and the seven verdicts.
  func testTheReportReadsWellInARealBrowser() throws {
    let root = try temporaryDirectory()
    var generator = SplitMix64(seed: 1)
    func estimate(_ value: Double) -> Estimate { Estimate(value: value, low: value - 0.05, high: value + 0.05) }
    let report = ReconstructionReport(
      count: 200, psnr: 14.5, ssim: 0.41, perceptualDistance: 1.2, top1Agreement: 0.9, logitCosine: 0.95, evaluationAccuracy: 0.88,
      evaluationAccuracyOnOriginals: 0.92, retrieval: 0.7, retrievalGroupSize: 10, noiseDiversity: 0.3, frechetDistance: 0.4,
      sameClassRetrieval: 0.27, intervals: .init(
        psnr: estimate(14.5), ssim: estimate(0.41), perceptualDistance: estimate(1.2), top1Agreement: estimate(0.9),
        evaluationAccuracy: estimate(0.88), retrieval: estimate(0.7), sameClassRetrieval: estimate(0.27), noiseDiversity: estimate(0.3),
        frechetDistance: estimate(0.4)))
    let compare = CompareResult(dataset: "shapes", rows: ["a-very-long-inverter-name-standard-fidelity", "robust-fidelity", "standard-deepsim"].map {
      .init(name: "models/inverters/\($0)", report: report, seconds: 4)
    })
    // Measured in the demo's order, which is not x's.
    let shift = LogitCurveResult(manipulation: .shift, count: 8, points: [0, -10, -5, 5, 10, 20].map {
      ManipulationPoint(magnitude: $0, perceptualChange: generator.uniform(), psnrToBaseline: 20, top1Agreement: 0.9, evaluationAccuracy: 0.8)
    })
    let factors = Dictionary(uniqueKeysWithValues: ShapeFactors.names.map { ($0, generator.uniform()) })
    let factorResult = FactorResult(
      reconstructions: factors, originals: factors, linearLogitProbe: factors, mlpLogitProbe: factors,
      intervals: .init(reconstructions: factors.mapValues(estimate), originals: factors.mapValues(estimate), mlpLogitProbe: factors.mapValues(estimate)),
      efficiency: ["size": estimate(0.5)], regressor: "models/eval/shapes-factors", storedCeiling: nil)
    var folders: [URL] = []
    for (name, result) in [("compare", compare as any ExperimentResult), ("logit-shift", shift), ("factors", factorResult)] {
      let folder = root.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try StoredExperiment.write(result, subject: "runs/inv", in: folder)
      folders.append(folder)
    }
    // The curve's chart, drawn as the runner draws it.
    let chart = LineChart(title: "logit shift", xLabel: "shift", yLabel: "change", series: [
      .init(name: "perceptual change", points: shift.points.map { ($0.magnitude, $0.perceptualChange) })
    ])
    try Data(chart.svg().utf8).write(to: folders[1].appendingPathComponent("curve.svg"))
    let verdicts = PaperFinding.all.map { finding in
      FindingVerdict(finding: finding.number, dataset: "shapes", effect: estimate(Double(finding.number % 3) - 1), evidence: ["a number [1–2]"])
    }
    var headline = DemoHeadline(rows: compare.rows.map { DemoHeadline.Row(dataset: "shapes", method: $0.name, scores: $0) }, findings: [], verdicts: verdicts)
    headline.calibrations = [Calibration(dataset: "shapes", checks: [
      Calibration.Check(inverter: "standard-fidelity", efficiency: ["size": estimate(-1.2)], rulersDisagree: ["size"], evaluationAccuracy: 0.52,
                        evaluationAccuracyOnOriginals: 1, gap: estimate(0.37))])]
    let overview = ImageGrid.make(Tensor.rand([8, 3, 32, 32], generator: Generator(seed: 2)), columns: 4, padding: 2, scale: 2)
    let png = root.appendingPathComponent("overview.png")
    try PNG.write(overview, to: png)
    let page = try HTMLReport.build(from: folders, title: "Afterimage demo", preface: headline.html(overview: ["shapes": try Data(contentsOf: png)]))
    let url = root.appendingPathComponent("report.html")
    try Data(page.utf8).write(to: url)

    let screenshot = ProcessInfo.processInfo.environment["AFTERIMAGE_REPORT_SCREENSHOT"]
    let log = try runPython("../browser/report_browser.py", [url.path] + (screenshot.map { [$0] } ?? []))
    print(log)
    for check in ["the page opens with the verdict table", "nothing is wider than the window", "every image decoded", "every chart line runs left to right", "table headers are words", "the console has no errors"] {
      XCTAssertTrue(log.contains("ok: \(check)"), "\(check):\n\(log)")
    }
  }
}
