import Foundation
import Torch

/// `analyze reconstruct`: one inverter's reconstructions of held-out images, scored by every
/// fidelity metric (`ReconstructionAnalysis`).
public struct ReconstructExperiment: Experiment {
  public static var keepsArrays: Bool { true }
  public var inverter: String
  public var evaluation: String?
  /// The data set scored (nil: the inverter's).
  public var dataset: String?
  public var count = 200
  /// Candidates per retrieval (chance 1/N).
  public var retrievalGroupSize = 10
  /// Reconstructions per logit vector for the diversity measure.
  public var noiseSamples = 3

  public init(inverter: String, evaluation: String? = nil, dataset: String? = nil) {
    self.inverter = inverter
    self.evaluation = evaluation
    self.dataset = dataset
  }

  /// The defaults the command line shows.
  public static let defaults = ReconstructExperiment(inverter: "")

  public var subject: String { inverter }

  public func run(on device: Device) throws -> ExperimentOutcome<ReconstructionResult> {
    let model = try Inverter.load(inverter, device: device)
    let name = dataset ?? model.config.dataset
    let data = try DatasetSource(name).open(split: .test, resolution: model.config.resolution).dataset
    try model.checkAccepts(data)
    if name == model.config.dataset { try model.checkOwnData(data, split: .test, escapable: false) }
    let evaluator = try EvaluationClassifier.load(evaluation, dataset: name, device: device)
    let (report, arrays, scores) = try ReconstructionAnalysis.score(
      dataset: data, count: count, classifier: model.classifier, evaluation: evaluator, retrievalGroupSize: retrievalGroupSize,
      noiseSamples: noiseSamples,
      representation: model.config.representation
    ) { code, seed in model.reconstruct(representation: code, noise: model.noise(count: code.shape[0], seed: seed)) }
    let (originals, reconstructions) = (arrays.originals, arrays.reconstructions.select(dim: 1, index: 0))
    let shown = min(32, report.count)
    // Original and reconstruction side by side, four pairs a row.
    let pairs = Tensor.stack([originals[0..<shown], reconstructions[0..<shown]], dim: 1).flattened(from: 0, through: 1)
    let result = ReconstructionResult(source: .init(inverter: inverter, dataset: data.name), report: report)
    return ExperimentOutcome(
      result, figures: [.grid(name: "gallery.png", images: pairs, columns: 8, scale: ImageGrid.scale(forResolution: model.config.resolution))],
      scores: scores, arrays: arrays)
  }
}

/// `analyze reconstruct`'s result: the report, flat in results.json as before versioning.
public struct ReconstructionResult: ExperimentResult {
  /// What was reconstructed (absent in files written before versioning).
  public struct Source: Codable {
    public var inverter: String?
    public var dataset: String?
  }

  public var source: Source
  public var report: ReconstructionReport

  public static let kinds = ["reconstruct"]
  public var title: String { "Reconstruction fidelity" }
  public var measures: String {
    "Held-out images are turned into logits by the classifier and back into images by the inverter; the numbers say how much of each original comes back (PSNR and SSIM on pixels, a perceptual distance, whether the classifier and an independent classifier still see the class, and whether a reconstruction picks out its own original among N)."
  }

  public var summary: String? {
    String(format: "The independent classifier names the true class of %.0f%% of reconstructions (%.0f%% of originals); a reconstruction finds its own original among %d candidates %.0f%% of the time (chance %.0f%%); PSNR %.1f dB.",
           100 * report.evaluationAccuracy, 100 * report.evaluationAccuracyOnOriginals, report.retrievalGroupSize, 100 * report.retrieval,
           100 / Double(report.retrievalGroupSize), report.psnr)
  }

  public var lines: [String] {
    [
      "\(source.inverter ?? "the inverter") on \(report.count) held-out \(source.dataset ?? "") images:",
      String(format: "  PSNR %.2f dB   SSIM %.3f   perceptual distance %.3f   Fréchet distance %.2f", report.psnr, report.ssim, report.perceptualDistance, report.frechetDistance),
      String(format: "  top-1 agreement %.1f%%   logit cosine %.3f", 100 * report.top1Agreement, report.logitCosine),
      String(format: "  evaluation classifier names the true class: %.1f%% of reconstructions (%.1f%% of originals)", 100 * report.evaluationAccuracy, 100 * report.evaluationAccuracyOnOriginals),
    ] + (report.drawnGap.map { gap in
      [String(format: "  satisfied, not drawn (top-1 agreement − evaluation accuracy): %+.1f points%@", 100 * gap,
              report.intervals?.drawnGap.map { String(format: " [%.1f–%.1f]", 100 * $0.low, 100 * $0.high) } ?? "")]
    } ?? []) + [
      String(format: "  retrieval@%d %.3f (chance %.3f)   noise diversity %.3f", report.retrievalGroupSize, report.retrieval, 1 / Double(report.retrievalGroupSize), report.noiseDiversity),
    ]
  }
}

// One object: the source's fields beside the report's. In an extension, so the memberwise
// initialiser stays.
extension ReconstructionResult {
  public init(from decoder: any Decoder) throws { (source, report) = (try Source(from: decoder), try ReconstructionReport(from: decoder)) }
  public func encode(to encoder: any Encoder) throws { try source.encode(to: encoder); try report.encode(to: encoder) }
}
