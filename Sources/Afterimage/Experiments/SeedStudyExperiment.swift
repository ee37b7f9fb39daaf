import Foundation
import Torch

/// `analyze seeds`: standard vs robust with several inverter seeds on the same held-out images.
/// One inverter seed is one draw of the training noise; a difference between classifiers that
/// one seed shows and another does not is not a finding. Every inverter is scored on the same
/// images, so each seed's difference is paired image by image.
public struct SeedStudyExperiment: Experiment {
  /// The standard classifier's inverters, one per seed, and the robust classifier's, in seed order.
  public var standard: [String]
  public var robust: [String]
  public var evaluation: String?
  public var count = 1000
  public var retrievalGroupSize = 10

  public init(standard: [String], robust: [String], evaluation: String? = nil) {
    self.standard = standard
    self.robust = robust
    self.evaluation = evaluation
  }

  public static let defaults = SeedStudyExperiment(standard: [], robust: [])

  public var subject: String { (standard + robust).joined(separator: ", ") }

  public func run(on device: Device) throws -> ExperimentOutcome<SeedStudyResult> {
    guard standard.count >= 2, standard.count == robust.count else {
      throw RunError("give the same number (at least 2) of standard and robust inverters, one per seed; got \(standard.count) and \(robust.count)")
    }
    let models = try (standard + robust).map { try Inverter.load($0, device: device) }
    let datasetName = models[0].config.dataset
    for (path, model) in zip(standard + robust, models) where model.config.dataset != datasetName || model.config.resolution != models[0].config.resolution {
      throw RunError("\(path) inverts \(model.config.dataset) at \(model.config.resolution) px, \(standard[0]) \(datasetName) at \(models[0].config.resolution) px: a seed study compares like with like")
    }
    let data = try DatasetSource(datasetName).open(split: .test, resolution: models[0].config.resolution).dataset
    for model in models {
      try model.checkAccepts(data)
      try model.checkOwnData(data, split: .test, escapable: false)
    }
    let evaluator = try EvaluationClassifier.load(evaluation, dataset: datasetName, device: device)
    var reports: [ReconstructionReport] = []
    for model in models {
      let (report, _, _) = try ReconstructionAnalysis.run(
        dataset: data, count: count, classifier: model.classifier, evaluation: evaluator, retrievalGroupSize: retrievalGroupSize, noiseSamples: 2,
        representation: model.config.representation
      ) { code, seed in model.reconstruct(representation: code, noise: model.noise(count: code.shape[0], seed: seed)) }
      reports.append(report)
    }
    let seeds = standard.count
    let pairs = (0..<seeds).map { SeedStudyResult.Pair(standard: standard[$0], robust: robust[$0], standardReport: reports[$0], robustReport: reports[seeds + $0]) }
    // Per image: each seed's standard and robust scores (`standard-seed0/psnr`, …).
    var scores = ScoreTable()
    for (index, pair) in pairs.enumerated() {
      for (role, report) in [("standard", pair.standardReport), ("robust", pair.robustReport)] {
        if let perImage = report.perImage { scores.append(perImage.table, prefix: "\(role)-seed\(index)") }
      }
    }
    return ExperimentOutcome(SeedStudyResult(dataset: data.name, count: reports[0].count, pairs: pairs), scores: scores)
  }
}

/// Standard vs robust per seed and over seeds, for the scores measured per image.
public struct SeedStudyResult: ExperimentResult {
  /// One seed: the two inverters and their reports (per-image scores kept, for pairing).
  public struct Pair: Codable {
    public var standard: String
    public var robust: String
    public var standardReport: ReconstructionReport
    public var robustReport: ReconstructionReport
    enum CodingKeys: String, CodingKey { case standard, robust, standardReport = "standard_report", robustReport = "robust_report" }
  }

  /// One score across seeds.
  public struct Comparison: Codable {
    public var score: String
    /// Mean over seeds of each classifier's score, and the seed-to-seed standard deviation.
    public var standardMean, standardSpread, robustMean, robustSpread: Double
    /// Each seed's paired difference robust − standard, with its interval over images.
    public var perSeed: [Estimate]
    /// The difference of the seed-averaged per-image scores, robust − standard, with its
    /// interval over images: the number a verdict reads.
    public var pooled: Estimate
    /// Whether the pooled interval excludes 0 (a difference), and whether every seed's
    /// difference has the pooled one's sign.
    public var isDifference: Bool
    public var seedsAgree: Bool
    enum CodingKeys: String, CodingKey {
      case score, standardMean = "standard_mean", standardSpread = "standard_seed_sd", robustMean = "robust_mean"
      case robustSpread = "robust_seed_sd", perSeed = "per_seed", pooled, isDifference = "is_difference", seedsAgree = "seeds_agree"
    }
  }

  public var dataset: String
  public var count: Int
  public var pairs: [Pair]

  public static let kinds = ["seeds"]
  public var title: String { "Standard vs robust over inverter seeds" }
  public var measures: String {
    "The standard and the robust classifier's inverters, each trained with several seeds, score the same held-out images. Per score: each classifier's mean over seeds with the seed-to-seed standard deviation, each seed's paired difference (robust − standard) and the pooled difference of seed-averaged per-image scores, with 95% bootstrap intervals over images. A difference is called one only when its interval excludes zero."
  }

  /// The per-image scores compared, by name.
  static let scores: [(name: String, column: (ReconstructionReport.PerImageScores) -> [Float?])] = [
    ("evaluation accuracy", { $0.evaluationCorrect.map(Optional.some) }),
    ("same-class retrieval@10", { $0.sameClassRetrieval }),
    ("retrieval@10", { $0.retrieval }),
    ("perceptual distance", { $0.perceptualDistance.map(Optional.some) }),
    ("noise diversity", { ($0.noiseDiversity ?? []).map(Optional.some) }),
    ("PSNR (dB)", { $0.psnr.map(Optional.some) }),
  ]

  /// Every score's comparison across seeds.
  public var comparisons: [Comparison] {
    Self.scores.compactMap { name, column in comparison(name, column) }
  }

  public func comparison(named name: String) -> Comparison? {
    Self.scores.first { $0.name == name }.flatMap { comparison($0.name, $0.column) }
  }

  func comparison(_ name: String, _ column: (ReconstructionReport.PerImageScores) -> [Float?]) -> Comparison? {
    let columns = pairs.compactMap { pair -> (robust: [Float?], standard: [Float?])? in
      guard let robust = pair.robustReport.perImage.map(column), let standard = pair.standardReport.perImage.map(column),
        !robust.isEmpty, robust.count == standard.count
      else { return nil }
      return (robust, standard)
    }
    guard columns.count == pairs.count, !columns.isEmpty else { return nil }
    func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }
    func spread(_ values: [Double]) -> Double {
      let m = mean(values)
      return values.count > 1 ? (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot() : 0
    }
    let perSeed = columns.map { pair -> Estimate in
      let (r, s) = ReconstructionReport.PerImageScores.paired(pair.robust, pair.standard)
      return Bootstrap.meanDifference(r, s)
    }
    let standardMeans = columns.map { mean(ReconstructionReport.PerImageScores.present($0.standard)) }
    let robustMeans = columns.map { mean(ReconstructionReport.PerImageScores.present($0.robust)) }
    // Per image: the mean over seeds of robust − standard, for images every seed scored.
    let length = columns[0].robust.count
    let differences = (0..<length).compactMap { index -> Double? in
      var total = 0.0
      for pair in columns {
        guard let r = pair.robust[index], let s = pair.standard[index] else { return nil }
        total += Double(r) - Double(s)
      }
      return total / Double(columns.count)
    }
    guard !differences.isEmpty else { return nil }  // e.g. same-class retrieval on too few images per class
    let pooled = Bootstrap.mean(differences)
    return Comparison(
      score: name, standardMean: mean(standardMeans), standardSpread: spread(standardMeans), robustMean: mean(robustMeans),
      robustSpread: spread(robustMeans), perSeed: perSeed, pooled: pooled, isDifference: pooled.side(of: 0) != 0,
      seedsAgree: perSeed.allSatisfy { ($0.value > 0) == (pooled.value > 0) })
  }

  public var tabulated: any Encodable { comparisons }

  public var summary: String? {
    let called = comparisons.filter(\.isDifference).map { "\($0.score) (\(String(format: "%+.3f", $0.pooled.value)))" }
    return "\(pairs.count) seeds per classifier on \(count) \(dataset) images. Differences whose interval excludes zero (robust − standard): \(called.isEmpty ? "none" : called.joined(separator: ", "))."
  }

  public var lines: [String] {
    ["\(pairs.count) inverter seeds per classifier on \(count) held-out \(dataset) images (robust − standard, 95% intervals over images):",
     "  score                       standard (seed sd)   robust (seed sd)   pooled difference             per seed"]
      + comparisons.map { c in
        "  " + c.score.padding(toLength: 26, withPad: " ", startingAt: 0)
          + String(format: "%8.3f (%.3f)", c.standardMean, c.standardSpread).leftPadded(20)
          + String(format: "%8.3f (%.3f)", c.robustMean, c.robustSpread).leftPadded(19)
          + "   " + c.pooled.formatted("%+.3f").padding(toLength: 28, withPad: " ", startingAt: 0)
          + (c.isDifference ? "*" : " ") + "  " + c.perSeed.map { String(format: "%+.3f", $0.value) }.joined(separator: " ")
      } + ["  (* the interval excludes zero)"]
  }
}
