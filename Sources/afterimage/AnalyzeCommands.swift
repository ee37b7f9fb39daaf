import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage analyze …`: the paper's experiments as numbers.
struct AnalyzeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "analyze", abstract: "Measure what survives in the logits (experiments write figures and results.json).",
    subcommands: [
      AnalyzeReconstruct.self, AnalyzeFactors.self, AnalyzeNoise.self, AnalyzeLogitShift.self, AnalyzeLogitScale.self,
      AnalyzeLogitNoise.self, AnalyzeTopK.self, AnalyzeInterpolate.self, AnalyzeMisclassified.self, AnalyzeAdversarial.self,
      AnalyzeTransforms.self, AnalyzeCompare.self,
    ])
}

/// Records which experiment wrote a folder, for `afterimage report`.
func recordExperiment(_ kind: String, inverter: String, in folder: String) throws {
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  try printJSONFile(["experiment": kind, "inverter": inverter], to: "\(folder)/experiment.json")
}

/// The evaluation classifier for a data set: given, or the shipped one under models/eval.
func evaluationClassifier(_ path: String?, dataset: String, device: Device) throws -> any ImageClassifier {
  if let path { return try Classifiers.load(path, device: device) }
  let base = dataset.split(separator: ":").first.map(String.init) ?? dataset
  let shipped = "models/eval/\(base)"
  guard FileManager.default.fileExists(atPath: shipped) else {
    throw ValidationError("no evaluation classifier for \(dataset): pass --evaluation DIR (train one with `afterimage classifier train --arch evalnet`)")
  }
  return try Classifiers.load(shipped, device: device)
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
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 2, "--count must be at least 2")
    try require(retrievalN >= 2 && retrievalN <= count, "--retrieval-n must be between 2 and --count")
    try require(noiseSamples >= 1, "--noise-samples must be at least 1")
  }

  func run() throws {
    let device = try compute.resolved()
    let model = try Inverter.load(inverter, device: device)
    let name = dataset ?? model.config.dataset
    let data = try DatasetSource(name).open(split: .test, resolution: model.config.resolution).dataset
    let evaluator = try evaluationClassifier(evaluation, dataset: name, device: device)
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
    try recordExperiment("reconstruct", inverter: inverter, in: out)
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
    abstract: "Shapes factor recovery: R² per nuisance factor read off reconstructions, off the originals (ceiling), and off the logits by a linear and an MLP probe (what the logits hold).")

  @Option(help: "The inverter run directory (its data set must be shapes).") var inverter: String
  @Option(help: "Held-out images scored.") var count = 1000
  @Option(help: "Clean training images for the factor regressor and the logit probe.") var trainCount = 10_000
  @Option(help: "Epochs of the factor regressor.") var epochs = 4
  @Option(help: "Output folder (results.json).") var out: String
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 10 && trainCount >= 100 && epochs >= 1, "--count ≥ 10, --train-count ≥ 100, --epochs ≥ 1")
  }

  func run() throws {
    let model = try Inverter.load(inverter, device: try compute.resolved())
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
    let trainLabels = trainBatch.labels.scalars(as: Int64.self).map(Int.init)
    let results: [String: [String: Double]] = [
      "reconstructions": probe.recovery(images: reconstructions, factors: scored.factors!, labels: labels),
      "originals": probe.recovery(images: scored.images, factors: scored.factors!, labels: labels),
      "logit_probe": probe.logitProbe(
        trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainLabels,
        testLogits: logits, testFactors: scored.factors!, testLabels: labels),
      "logit_probe_mlp": probe.mlpLogitProbe(
        trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainLabels,
        testLogits: logits, testFactors: scored.factors!, testLabels: labels),
    ]
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    try printJSONFile(results, to: "\(out)/results.json")
    try recordExperiment("factors", inverter: inverter, in: out)
    print("R² per factor (1: fully recovered, 0: nothing):")
    print("  factor                  reconstructions  originals  logit probe: linear      MLP")
    for name in ShapeFactors.names {
      let row = ["reconstructions", "originals", "logit_probe", "logit_probe_mlp"].map { results[$0]?[name].map { String(format: "%8.3f", $0) } ?? "     n/a" }
      print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))  \(row[0])         \(row[1])           \(row[2]) \(row[3])")
    }
    print("wrote \(out)/results.json")
  }
}

/// Options shared by the experiments that reconstruct a few held-out images.
struct ExperimentOptions: ParsableArguments {
  @Option(help: "The inverter run directory.") var inverter: String
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: "Held-out images.") var count = 64
  @Option(help: "Images shown per row of the figure.") var shown = 8
  @Option(help: "Noise seed.") var seed: UInt64 = 0
  @Option(help: "Output folder (figure.png, curve.svg, results.json).") var out: String
  @OptionGroup var compute: DeviceOptions

  func validate() throws { try require(count >= 2 && shown >= 1, "--count must be at least 2 and --shown at least 1") }

  /// The inverter, its held-out images and labels, and the evaluation classifier.
  func load() throws -> (Inverter, Tensor, Tensor, any ImageClassifier) {
    let device = try compute.resolved()
    let model = try Inverter.load(inverter, device: device)
    let data = try DatasetSource(model.config.dataset).open(split: .test, resolution: model.config.resolution).dataset
    let batch = try data.batch(at: Array(0..<min(count, data.count)))
    return (model, batch.images.to(device), batch.labels.to(device), try evaluationClassifier(evaluation, dataset: model.config.dataset, device: device))
  }

  /// Writes a figure whose rows are `rows` (the first `shown` images of each), originals on top.
  func writeFigure(originals: Tensor, rows: [Tensor], scale: Int) throws {
    let n = min(shown, originals.shape[0])
    let tiles = Tensor.cat(([originals] + rows).map { $0.narrow(dim: 0, start: 0, length: n) })
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    try PNG.write(ImageGrid.make(tiles, columns: n, padding: 2, scale: scale), to: URL(fileURLWithPath: "\(out)/figure.png"))
  }
}

/// Runs one logit manipulation and writes its figure, curve and numbers.
func runManipulation(_ manipulation: LogitManipulation, _ options: ExperimentOptions, magnitudes: String?) throws {
  let values = try magnitudes.map { try parseList($0, option: "--magnitudes") } ?? manipulation.defaultMagnitudes
  let (model, images, labels, evaluator) = try options.load()
  let (points, rows) = try LogitExperiments.run(manipulation, magnitudes: values, images: images, labels: labels, inverter: model, evaluation: evaluator, seed: options.seed)
  try options.writeFigure(originals: images, rows: rows, scale: max(1, 64 / model.config.resolution))
  let sorted = points.sorted { $0.magnitude < $1.magnitude }
  let chart = LineChart(
    title: "logit \(manipulation.rawValue): what changes", xLabel: "magnitude", yLabel: "value",
    series: [
      .init(name: "perceptual change", points: sorted.map { ($0.magnitude, $0.perceptualChange) }),
      .init(name: "top-1 kept", points: sorted.map { ($0.magnitude, $0.top1Agreement) }),
      .init(name: "eval accuracy", points: sorted.map { ($0.magnitude, $0.evaluationAccuracy) }),
    ])
  try Data(chart.svg().utf8).write(to: URL(fileURLWithPath: "\(options.out)/curve.svg"))
  try recordExperiment("logit-\(manipulation.rawValue)", inverter: options.inverter, in: options.out)
  try printJSONFile(points, to: "\(options.out)/results.json")
  print("logit \(manipulation.rawValue) on \(images.shape[0]) images (figure rows: originals, then magnitudes \(values.map { String(format: "%g", $0) }.joined(separator: ", "))):")
  print("  magnitude  perceptual change  PSNR to baseline  top-1 kept  eval accuracy")
  for point in points {
    print(String(format: "  %9g  %17.4f  %16.2f  %9.1f%%  %12.1f%%", point.magnitude, point.perceptualChange, point.psnrToBaseline, 100 * point.top1Agreement, 100 * point.evaluationAccuracy))
  }
  print("wrote \(options.out)/figure.png, curve.svg, results.json")
}

struct AnalyzeLogitShift: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "logit-shift", abstract: "Add a constant to every logit (softmax-invariant) and see what changes.")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Comma-separated shifts.") var magnitudes: String?
  func run() throws { try runManipulation(.shift, options, magnitudes: magnitudes) }
}

struct AnalyzeLogitScale: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "logit-scale", abstract: "Multiply the logits (temperature) and see what changes.")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Comma-separated factors.") var magnitudes: String?
  func run() throws { try runManipulation(.scale, options, magnitudes: magnitudes) }
}

struct AnalyzeLogitNoise: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "logit-noise", abstract: "Add Gaussian noise to the logits (std in units of their spread).")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Comma-separated standard deviations.") var magnitudes: String?
  func run() throws { try runManipulation(.noise, options, magnitudes: magnitudes) }
}

struct AnalyzeTopK: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "topk", abstract: "Keep only the k largest logits.")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Comma-separated k values.") var magnitudes: String?
  func run() throws { try runManipulation(.topk, options, magnitudes: magnitudes) }
}

struct AnalyzeNoise: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "noise", abstract: "Fixed logits, resampled noise: how much does the picture change?")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Noise samples per image.") var samples = 4

  func run() throws {
    let (model, images, _, evaluator) = try options.load()
    let (diversity, rows) = try LogitExperiments.noise(images: images, inverter: model, evaluation: evaluator, samples: max(2, samples))
    try options.writeFigure(originals: images, rows: rows, scale: max(1, 64 / model.config.resolution))
    try printJSONFile(["noise_diversity": diversity, "samples": Double(max(2, samples))], to: "\(options.out)/results.json")
    try recordExperiment("noise", inverter: options.inverter, in: options.out)
    print(String(format: "noise diversity (mean pairwise perceptual distance of reconstructions of the same logits): %.4f", diversity))
    print("wrote \(options.out)/figure.png (rows: originals, then one row per noise sample) and results.json")
  }
}

struct AnalyzeInterpolate: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "interpolate", abstract: "Reconstruct along the line between two images' logits.")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Comma-separated mixing weights α (0: image a, 1: image b).") var alphas = "0,0.25,0.5,0.75,1"

  func run() throws {
    let (model, images, labels, evaluator) = try options.load()
    let weights = try parseList(alphas, option: "--alphas")
    let (points, rows) = try ClassExperiments.interpolate(images: images, labels: labels, inverter: model, evaluation: evaluator, alphas: weights, seed: options.seed)
    let half = images.shape[0] / 2
    try options.writeFigure(originals: images.narrow(dim: 0, start: 0, length: half), rows: rows + [images.narrow(dim: 0, start: half, length: half)], scale: max(1, 64 / model.config.resolution))
    let chart = LineChart(title: "interpolating logits from image a to image b", xLabel: "α", yLabel: "evaluation classifier's probability",
      series: [.init(name: "class of a", points: points.map { ($0.alpha, $0.probabilityOfA) }), .init(name: "class of b", points: points.map { ($0.alpha, $0.probabilityOfB) })])
    try Data(chart.svg().utf8).write(to: URL(fileURLWithPath: "\(options.out)/curve.svg"))
    try printJSONFile(points, to: "\(options.out)/results.json")
    try recordExperiment("interpolate", inverter: options.inverter, in: options.out)
    print("interpolation over \(half) pairs (figure: image a, the α steps, image b):")
    for point in points { print(String(format: "  α %.2f: P(class of a) %.3f  P(class of b) %.3f", point.alpha, point.probabilityOfA, point.probabilityOfB)) }
  }
}

struct AnalyzeMisclassified: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "misclassified", abstract: "Do reconstructions of misclassified images drift toward the predicted class?")
  @OptionGroup var options: ExperimentOptions

  func run() throws {
    let (model, images, labels, evaluator) = try options.load()
    let result = try ClassExperiments.misclassified(images: images, labels: labels, inverter: model, evaluation: evaluator, seed: options.seed)
    if let wrong = result.wrongImages, let reconstructions = result.wrongReconstructions {
      try options.writeFigure(originals: wrong, rows: [reconstructions], scale: max(1, 64 / model.config.resolution))
    }
    try FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
    try printJSONFile(["correct": result.correct, "misclassified": result.wrong], to: "\(options.out)/results.json")
    try recordExperiment("misclassified", inverter: options.inverter, in: options.out)
    for (name, verdict) in [("correctly classified", result.correct), ("misclassified", result.wrong)] {
      guard let verdict else { print("  no \(name) images among the \(images.shape[0])"); continue }
      print(String(format: "  %@ (%d): evaluation classifier says true class %.1f%%, the classifier's predicted class %.1f%%", name, verdict.count, 100 * verdict.trueClass, 100 * verdict.predictedClass))
    }
  }
}

struct AnalyzeAdversarial: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "adversarial", abstract: "Reconstruct PGD adversarial examples: does the evaluation classifier see the true or the adversarial class?")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Attack: pgd-linf:EPS, pgd-l2:EPS or fgsm:EPS.") var attack = "pgd-linf:8/255"
  @Option(help: "PGD steps.") var steps = 20

  func run() throws {
    let (model, images, labels, evaluator) = try options.load()
    let spec = try AttackSpec.parse(attack, steps: steps)
    let result = try ClassExperiments.adversarial(images: images, labels: labels, inverter: model, evaluation: evaluator, attack: spec, seed: options.seed)
    try options.writeFigure(originals: images, rows: [result.adversarialImages, result.reconstructions], scale: max(1, 64 / model.config.resolution))
    try printJSONFile(
      ["count": Double(result.verdict.count), "eval_says_true_class": result.verdict.trueClass, "eval_says_predicted_class": result.verdict.predictedClass,
       "attack_success": result.fooled],
      to: "\(options.out)/results.json")
    try recordExperiment("adversarial", inverter: options.inverter, in: options.out)
    print(String(format: "%@ fooled the classifier on %.1f%% of %d images; on reconstructions of the adversarial logits the evaluation classifier says the true class %.1f%%, the adversarial class %.1f%%",
                 spec.description, 100 * result.fooled, images.shape[0], 100 * result.verdict.trueClass, 100 * result.verdict.predictedClass))
  }
}

struct AnalyzeTransforms: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "transforms",
    abstract: "Hue shift, brightness, translation, rotation, flip, blur, noise, occlusion: does the reconstruction follow (equivariance) or ignore (invariance) each?")
  @OptionGroup var options: ExperimentOptions
  @Option(help: "Comma-separated transformations (default: all).") var only: String?

  func run() throws {
    let (model, images, _, evaluator) = try options.load()
    let chosen = try only.map { list in
      try list.split(separator: ",").map { name -> ImageTransform in
        guard let transform = ImageTransform(rawValue: String(name)) else {
          throw ValidationError("unknown transformation '\(name)': use \(ImageTransform.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return transform
      }
    } ?? ImageTransform.allCases
    let (points, rows) = try TransformExperiments.run(chosen, images: images, inverter: model, evaluation: evaluator, seed: options.seed)
    try options.writeFigure(originals: images, rows: rows, scale: max(1, 64 / model.config.resolution))
    try printJSONFile(points, to: "\(options.out)/results.json")
    try recordExperiment("transforms", inverter: options.inverter, in: options.out)
    print("perceptual distances (figure rows: original, then per transformation at its largest magnitude: T(x), G(Φ(T(x)))):")
    print("  transformation  magnitude  equivariance error  change")
    for point in points {
      print("  " + point.transform.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "  %9g  %18.4f  %6.4f", point.magnitude, point.equivarianceError, point.change))
    }
  }
}

struct AnalyzeCompare: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Several inverters (standard vs robust, paper vs fidelity, BigGAN vs baselines) on the same held-out images, in one table.")

  @Option(parsing: .upToNextOption, help: "Inverter run directories (same data set and resolution).") var inverters: [String]
  @Option(help: "Also score optimisation-based inversion of this classifier (slow: hundreds of passes per image).") var optimize: String?
  @Option(help: "Gradient steps of the optimisation baseline.") var optimizeSteps = 200
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: "Held-out images scored.") var count = 200
  @Option(help: "Candidates per retrieval.") var retrievalN = 10
  @Option(help: "Output folder (results.json, figure.png).") var out: String
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(!inverters.isEmpty || optimize != nil, "give --inverters and/or --optimize")
    try require(count >= retrievalN && retrievalN >= 2, "--count must be at least --retrieval-n (≥ 2)")
  }

  func run() throws {
    let device = try compute.resolved()
    let models = try inverters.map { try Inverter.load($0, device: device) }
    // The data set and resolution come from the first inverter, else from the classifier.
    let (datasetName, resolution): (String, Int)
    if let model = models.first {
      (datasetName, resolution) = (model.config.dataset, model.config.resolution)
    } else {
      let classifier = try Classifiers.load(optimize!, device: device)
      guard let name = classifier.config.dataset else { throw ValidationError("\(optimize!) records no data set") }
      (datasetName, resolution) = (name, classifier.config.resolution)
    }
    for (path, model) in zip(inverters, models) where model.config.dataset != datasetName || model.config.resolution != resolution {
      throw ValidationError("\(path) inverts \(model.config.dataset) at \(model.config.resolution) px, the first one \(datasetName) at \(resolution) px: compare like with like")
    }
    let data = try DatasetSource(datasetName).open(split: .test, resolution: resolution).dataset
    let evaluator = try evaluationClassifier(evaluation, dataset: datasetName, device: device)
    var rows: [[String: Any]] = []
    var figureRows: [Tensor] = []
    var originals: Tensor?
    let encoder = JSONEncoder()
    func add(_ name: String, _ report: ReconstructionReport, seconds: Double) throws {
      var row = try JSONSerialization.jsonObject(with: encoder.encode(report)) as! [String: Any]
      row["name"] = name
      row["images_per_second"] = Double(report.count) / max(seconds, 1e-9)
      rows.append(row)
      print("  " + name.padding(toLength: max(40, name.count), withPad: " ", startingAt: 0) + String(format: "  PSNR %6.2f  SSIM %.3f  eval acc %5.1f%%  retrieval@%d %.3f  top-1 %5.1f%%  %.1f img/s", report.psnr, report.ssim,
                   100 * report.evaluationAccuracy, report.retrievalGroupSize, report.retrieval, 100 * report.top1Agreement, Double(report.count) / max(seconds, 1e-9)))
    }
    print("\(count) held-out \(data.name) images:")
    for (path, model) in zip(inverters, models) {
      let start = Date()
      let (report, x, xHat) = try ReconstructionAnalysis.run(
        dataset: data, count: count, classifier: model.classifier, evaluation: evaluator, retrievalGroupSize: retrievalN, noiseSamples: 2
      ) { logits, seed in model.reconstruct(logits: logits, noise: model.noise(count: logits.shape[0], seed: seed)) }
      try add(path, report, seconds: Date().timeIntervalSince(start) / 3)  // three passes: two noise samples and scoring
      originals = originals ?? x
      figureRows.append(xHat)
    }
    if let optimize {
      let classifier = try Classifiers.load(optimize, device: device)
      var options = OptimizationInversion.Options()
      options.steps = optimizeSteps
      let start = Date()
      let (report, x, xHat) = try ReconstructionAnalysis.run(
        dataset: data, count: count, classifier: classifier, evaluation: evaluator, retrievalGroupSize: retrievalN, noiseSamples: 1
      ) { logits, seed in
        options.seed = seed
        return try OptimizationInversion.invert(logits, classifier: classifier, options: options).images
      }
      try add("optimisation (\(optimizeSteps) steps) of \(optimize)", report, seconds: Date().timeIntervalSince(start))
      originals = originals ?? x
      figureRows.append(xHat)
    }
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let resultData = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
    try resultData.write(to: URL(fileURLWithPath: "\(out)/results.json"))
    if let originals {
      let shown = min(8, originals.shape[0])
      let tiles = Tensor.cat(([originals] + figureRows).map { $0.narrow(dim: 0, start: 0, length: shown) })
      try PNG.write(ImageGrid.make(tiles, columns: shown, padding: 2, scale: max(1, 64 / resolution)), to: URL(fileURLWithPath: "\(out)/figure.png"))
    }
    try recordExperiment("compare", inverter: inverters.joined(separator: ", "), in: out)
    print("wrote \(out)/results.json and figure.png (rows: originals, then each method)")
  }
}
