import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage analyze …`: the paper's experiments as numbers.
struct AnalyzeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "analyze", abstract: "Measure what survives in the logits (experiments write figures and results.json).",
    subcommands: [AnalyzeReconstruct.self])
}

/// The evaluation classifier for a data set: given, or the shipped one under models/eval.
func evaluationClassifier(_ path: String?, dataset: String) throws -> any ImageClassifier {
  if let path { return try Classifiers.load(path) }
  let base = dataset.split(separator: ":").first.map(String.init) ?? dataset
  let shipped = "models/eval/\(base)"
  guard FileManager.default.fileExists(atPath: shipped) else {
    throw ValidationError("no evaluation classifier for \(dataset): pass --evaluation DIR (train one with `afterimage classifier train --arch evalnet`)")
  }
  return try Classifiers.load(shipped)
}

struct AnalyzeReconstruct: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconstruct", abstract: "Reconstruct held-out images and score them: PSNR, SSIM, perceptual distance, logit agreement, evaluation accuracy, retrieval, diversity, Fréchet distance.")

  @Option(help: "The inverter run directory.") var inverter: String
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: ArgumentHelp("Data set (default: the inverter's).", valueName: "name")) var dataset: String?
  @Option(help: "Held-out images to score.") var count = 200
  @Option(help: "Candidates per retrieval (chance 1/N).") var retrievalN = 10
  @Option(help: "Reconstructions per logit vector for the diversity measure.") var noiseSamples = 3
  @Option(help: "Output folder (gallery.png, results.json).") var out: String

  func validate() throws {
    try require(count >= 2, "--count must be at least 2")
    try require(retrievalN >= 2 && retrievalN <= count, "--retrieval-n must be between 2 and --count")
    try require(noiseSamples >= 1, "--noise-samples must be at least 1")
  }

  func run() throws {
    let model = try Inverter.load(inverter)
    let name = dataset ?? model.config.dataset
    let data = try DatasetSource(name).open(split: .test, resolution: model.config.resolution).dataset
    let evaluator = try evaluationClassifier(evaluation, dataset: name)
    let (report, originals, reconstructions) = try ReconstructionAnalysis.run(
      dataset: data, count: count, classifier: model.classifier, evaluation: evaluator, retrievalGroupSize: retrievalN,
      noiseSamples: noiseSamples
    ) { logits, seed in model.reconstruct(logits: logits, noise: model.noise(count: logits.shape[0], seed: seed)) }
    let folder = URL(fileURLWithPath: out)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let shown = min(32, report.count)
    let pairs = Tensor.stack([originals[0..<shown], reconstructions[0..<shown]], dim: 1).flattened(from: 0, through: 1)
    try PNG.write(ImageGrid.make(pairs, columns: 8, padding: 2, scale: max(1, 64 / model.config.resolution)), to: folder.appendingPathComponent("gallery.png"))
    try printJSONFile(report, to: folder.appendingPathComponent("results.json").path)
    print("\(inverter) on \(report.count) held-out \(data.name) images:")
    print(String(format: "  PSNR %.2f dB   SSIM %.3f   perceptual distance %.3f   Fréchet distance %.2f", report.psnr, report.ssim, report.perceptualDistance, report.frechetDistance))
    print(String(format: "  top-1 agreement %.1f%%   logit cosine %.3f", 100 * report.top1Agreement, report.logitCosine))
    print(String(format: "  evaluation classifier names the true class: %.1f%% of reconstructions (%.1f%% of originals)", 100 * report.evaluationAccuracy, 100 * report.evaluationAccuracyOnOriginals))
    print(String(format: "  retrieval@%d %.3f (chance %.3f)   noise diversity %.3f", report.retrievalGroupSize, report.retrieval, 1 / Double(report.retrievalGroupSize), report.noiseDiversity))
    print("wrote \(out)/gallery.png and \(out)/results.json")
  }
}
