import Foundation
import Torch

/// `analyze compare`: several inverters, and optionally optimisation-based inversion, on the
/// same held-out images, in one table.
public struct CompareExperiment: Experiment {
  public var inverters: [String]
  /// A classifier to invert by optimisation as a further row (slow), or nil.
  public var optimize: String?
  public var optimizeSteps = 200
  public var evaluation: String?
  public var count = 200
  public var retrievalGroupSize = 10
  /// A second figure, `overview.png`: originals, then the reconstructions of `shown` (paths
  /// among `inverters`), then of whichever of `baselines` the evaluation classifier recognises
  /// best (the optimisation row counts as a baseline). nil: no overview.
  public var overview: (shown: [String], baselines: [String])?

  public init(inverters: [String], optimize: String? = nil, evaluation: String? = nil) {
    self.inverters = inverters
    self.optimize = optimize
    self.evaluation = evaluation
  }

  /// The defaults the command line shows.
  public static let defaults = CompareExperiment(inverters: [])

  public var subject: String { inverters.joined(separator: ", ") }

  public func run(on device: Device) throws -> ExperimentOutcome<CompareResult> {
    let models = try inverters.map { try Inverter.load($0, device: device) }
    // The data set and resolution come from the first inverter, else from the classifier.
    let (datasetName, resolution): (String, Int)
    if let model = models.first {
      (datasetName, resolution) = (model.config.dataset, model.config.resolution)
    } else if let optimize {
      let classifier = try Classifiers.load(optimize, device: device)
      guard let name = classifier.config.dataset else { throw RunError("\(optimize) records no data set") }
      (datasetName, resolution) = (name, classifier.config.resolution)
    } else {
      throw RunError("give at least one inverter or a classifier to invert by optimisation")
    }
    for (path, model) in zip(inverters, models) where model.config.dataset != datasetName || model.config.resolution != resolution {
      throw RunError("\(path) inverts \(model.config.dataset) at \(model.config.resolution) px, the first one \(datasetName) at \(resolution) px: compare like with like")
    }
    let data = try DatasetSource(datasetName).open(split: .test, resolution: resolution).dataset
    for model in models {
      try model.checkAccepts(data)
      try model.checkOwnData(data, split: .test, escapable: false)
    }
    let evaluator = try EvaluationClassifier.load(evaluation, dataset: datasetName, device: device)
    var rows: [CompareResult.Row] = []
    var figureRows: [Tensor] = []
    var originals: Tensor?
    for (path, model) in zip(inverters, models) {
      let start = Date()
      let (report, x, xHat) = try ReconstructionAnalysis.run(
        dataset: data, count: count, classifier: model.classifier, evaluation: evaluator, retrievalGroupSize: retrievalGroupSize, noiseSamples: 2,
        representation: model.config.representation
      ) { code, seed in model.reconstruct(representation: code, noise: model.noise(count: code.shape[0], seed: seed)) }
      // Three passes per image: two noise samples and scoring.
      rows.append(.init(name: path, report: report, seconds: Date().timeIntervalSince(start) / 3))
      originals = originals ?? x
      figureRows.append(xHat)
    }
    if let optimize {
      let classifier = try Classifiers.load(optimize, device: device)
      var options = OptimizationInversion.Options()
      options.steps = optimizeSteps
      let start = Date()
      let (report, x, xHat) = try ReconstructionAnalysis.run(
        dataset: data, count: count, classifier: classifier, evaluation: evaluator, retrievalGroupSize: retrievalGroupSize, noiseSamples: 1
      ) { logits, seed in
        options.seed = seed
        return try OptimizationInversion.invert(logits, classifier: classifier, options: options).images
      }
      rows.append(.init(name: "optimisation (\(optimizeSteps) steps) of \(optimize)", report: report, seconds: Date().timeIntervalSince(start)))
      originals = originals ?? x
      figureRows.append(xHat)
    }
    let result = CompareResult(dataset: data.name, rows: rows)
    let scale = ImageGrid.scale(forResolution: resolution)
    var figures = originals.map { [Figure.rows([$0] + figureRows, shown: 8, scale: scale)] } ?? []
    if let overview, let originals {
      let shown = overview.shown.compactMap { name in rows.firstIndex { $0.name == name } }
      let candidates = rows.indices.filter { overview.baselines.contains(rows[$0].name) || rows[$0].isOptimisation }
      let best = candidates.max { rows[$0].report.evaluationAccuracy < rows[$1].report.evaluationAccuracy }
      figures.append(.rows([originals] + (shown + (best.map { [$0] } ?? [])).map { figureRows[$0] }, shown: 10, scale: scale, name: "overview.png"))
    }
    // Each method's per-image scores under its name (the folder's last part, or "optimisation").
    var scores = ScoreTable()
    for row in rows {
      guard let perImage = row.report.perImage else { continue }
      scores.append(perImage.table, prefix: row.isOptimisation ? "optimisation" : URL(fileURLWithPath: row.name).lastPathComponent)
    }
    return ExperimentOutcome(result, figures: figures, scores: scores)
  }
}

/// `analyze compare`'s result: one row per method, in the order run.
public struct CompareResult: ExperimentResult {
  public struct Row: Codable {
    /// Which method, and how fast it ran.
    public struct Method: Codable {
      /// The inverter's run directory, or "optimisation (N steps) of CLASSIFIER".
      public var name: String
      /// Reconstructions per second of wall-clock time (this machine, this run).
      public var imagesPerSecond: Double
      enum CodingKeys: String, CodingKey { case name, imagesPerSecond = "images_per_second" }
    }

    public var method: Method
    public var report: ReconstructionReport

    public init(name: String, report: ReconstructionReport, seconds: Double) {
      method = Method(name: name, imagesPerSecond: Double(report.count) / max(seconds, 1e-9))
      self.report = report
    }

    public var name: String { method.name }
    public var imagesPerSecond: Double { method.imagesPerSecond }
    /// Whether this row is optimisation-based inversion rather than an inverter.
    public var isOptimisation: Bool { name.hasPrefix("optimisation") }

    // One flat object per row, as before versioning: name and speed beside the report's fields.
    public init(from decoder: any Decoder) throws { (method, report) = (try Method(from: decoder), try ReconstructionReport(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try method.encode(to: encoder); try report.encode(to: encoder) }
  }

  public var dataset: String?
  public var rows: [Row]

  public static let kinds = ["compare"]
  public var tabulated: any Encodable { rows }
  public var title: String { "Side by side" }
  public var measures: String {
    "The same held-out images reconstructed by several inverters (and optimisation-based inversion), scored with the same metrics; rows of the figure follow the table's order."
  }

  public var lines: [String] {
    ["\(rows.first?.report.count ?? 0) held-out \(dataset ?? "") images:"]
      + rows.map { row in
        let report = row.report
        return "  " + row.name.padding(toLength: max(40, row.name.count), withPad: " ", startingAt: 0)
          + String(format: "  PSNR %6.2f  SSIM %.3f  eval acc %5.1f%%  retrieval@%d %.3f  top-1 %5.1f%%  gap %@  %.1f img/s", report.psnr, report.ssim,
                   100 * report.evaluationAccuracy, report.retrievalGroupSize, report.retrieval, 100 * report.top1Agreement,
                   report.drawnGap.map { String(format: "%+5.1f", 100 * $0) } ?? "  n/a", row.imagesPerSecond)
      } + ["(figure rows: originals, then each method)"]
  }

  /// Before versioning, results.json was the array of rows.
  public static func decodeUnversioned(_ data: Data, kind: String) throws -> CompareResult {
    CompareResult(dataset: nil, rows: try JSONDecoder().decode([Row].self, from: data))
  }
}
