import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage analyze …`: the paper's experiments as numbers.
struct AnalyzeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "analyze", abstract: "Measure what survives in the logits (experiments write figures and results.json).",
    subcommands: [AnalyzeReconstruct.self, AnalyzeFactors.self])
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

struct AnalyzeFactors: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "factors",
    abstract: "Shapes factor recovery: R² per nuisance factor read off reconstructions, off the originals (ceiling) and off the logits by a linear probe (upper bound).")

  @Option(help: "The inverter run directory (its data set must be shapes).") var inverter: String
  @Option(help: "Held-out images scored.") var count = 1000
  @Option(help: "Clean training images for the factor regressor and the logit probe.") var trainCount = 10_000
  @Option(help: "Epochs of the factor regressor.") var epochs = 4
  @Option(help: "Output folder (results.json).") var out: String

  func validate() throws {
    try require(count >= 10 && trainCount >= 100 && epochs >= 1, "--count ≥ 10, --train-count ≥ 100, --epochs ≥ 1")
  }

  func run() throws {
    let model = try Inverter.load(inverter)
    let source = try DatasetSource(model.config.dataset)
    guard case .shapes = source.kind else {
      throw ValidationError("factor recovery needs the Shapes data set (its factors are known); \(inverter) was trained on \(model.config.dataset)")
    }
    let train = try source.open(split: .train, resolution: model.config.resolution).dataset as! ShapesDataset
    let test = try source.open(split: .test, resolution: model.config.resolution).dataset as! ShapesDataset
    let probe = try FactorProbe(dataset: train, count: trainCount, epochs: epochs, progress: true)
    let scored = try test.batch(at: Array(0..<min(count, test.count)))
    let labels = scored.labels.scalars(as: Int64.self).map(Int.init)
    let logits = try withNoGrad { Tensor.cat(try scored.images.split(size: 250).map { try model.classifier.logits($0) }) }
    let reconstructions = Tensor.cat(logits.split(size: 250).enumerated().map { index, part in
      model.reconstruct(logits: part, noise: model.noise(count: part.shape[0], seed: UInt64(index)))
    })
    let trainBatch = try train.batch(at: Array(0..<min(trainCount, train.count)))
    let trainLogits = try withNoGrad { Tensor.cat(try trainBatch.images.split(size: 250).map { try model.classifier.logits($0) }) }
    let results: [String: [String: Double]] = [
      "reconstructions": probe.recovery(images: reconstructions, factors: scored.factors!, labels: labels),
      "originals": probe.recovery(images: scored.images, factors: scored.factors!, labels: labels),
      "logit_probe": probe.logitProbe(
        trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainBatch.labels.scalars(as: Int64.self).map(Int.init),
        testLogits: logits, testFactors: scored.factors!, testLabels: labels),
    ]
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    try printJSONFile(results, to: "\(out)/results.json")
    print("R² per factor (1: fully recovered, 0: nothing):")
    print("  factor                  reconstructions  originals  logit probe")
    for name in ShapeFactors.names {
      let row = ["reconstructions", "originals", "logit_probe"].map { results[$0]?[name].map { String(format: "%8.3f", $0) } ?? "     n/a" }
      print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))  \(row[0])         \(row[1])   \(row[2])")
    }
    print("wrote \(out)/results.json")
  }
}
