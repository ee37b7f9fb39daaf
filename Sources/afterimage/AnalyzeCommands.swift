import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage analyze …`: the paper's experiments as numbers. Each subcommand turns its flags
/// into a library `Experiment` and hands it to `ExperimentRunner`, which writes the folder.
struct AnalyzeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "analyze", abstract: "Measure what survives in the logits (experiments write figures and results.json).",
    subcommands: [
      AnalyzeReconstruct.self, AnalyzeFactors.self, AnalyzeInformation.self, AnalyzeFactorRegressor.self, AnalyzeNoise.self, AnalyzeLogitShift.self, AnalyzeLogitScale.self,
      AnalyzeLogitNoise.self, AnalyzeTopK.self, AnalyzeInterpolate.self, AnalyzeMisclassified.self, AnalyzeAdversarial.self,
      AnalyzeTransforms.self, AnalyzeIterate.self, AnalyzeCompare.self, AnalyzeSeeds.self,
    ])
}

/// `--out` and `--device`: where an experiment writes and computes.
struct ExperimentOutput: ParsableArguments {
  @Option(help: "Output folder (figures, results.json, experiment.json, and scores.csv where images are scored one by one).") var out: String
  @Option(help: ArgumentHelp("Also write the originals, reconstructions, representation, labels, predictions and (Shapes) factors as arrays: safetensors, npz, or both (comma-separated).", valueName: "formats"),
          transform: parseArrayFormats)
  var arrays: [ArrayFiles.Format] = []
  @OptionGroup var compute: DeviceOptions

  func run<E: Experiment>(_ experiment: E) throws {
    var runner = ExperimentRunner(device: try compute.resolved())
    runner.arrayFormats = arrays
    try runner.run(experiment, out: out)
  }
}

/// `--arrays safetensors,npz`.
func parseArrayFormats(_ text: String) throws -> [ArrayFiles.Format] {
  try text.split(separator: ",").map { name in
    guard let format = ArrayFiles.Format(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
      throw ValidationError("--arrays takes safetensors, npz or both (comma-separated), not '\(name)'")
    }
    return format
  }
}

/// Options shared by the experiments that reconstruct a few held-out images.
struct HeldOutOptions: ParsableArguments {
  @Option(help: "The inverter run directory.") var inverter: String
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: "Held-out images.") var count = HeldOutImages.defaults.count
  @Option(help: "Images shown per row of the figure.") var shown = HeldOutImages.defaults.shown
  @Option(help: "Noise seed.") var seed = HeldOutImages.defaults.seed
  @Flag(help: "Go on when the classifier's weights or the data set's images are not those the inverter was trained on (the numbers then describe a model or data it never saw).")
  var allowMismatch = false
  @OptionGroup var output: ExperimentOutput

  func validate() throws { try require(count >= 2 && shown >= 1, "--count must be at least 2 and --shown at least 1") }

  var images: HeldOutImages {
    HeldOutImages(inverter: inverter, evaluation: evaluation, count: count, shown: shown, seed: seed, allowMismatch: allowMismatch)
  }
}

struct AnalyzeReconstruct: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconstruct", abstract: "Reconstruct held-out images and score them: PSNR, SSIM, perceptual distance, logit agreement, evaluation accuracy, retrieval, diversity, Fréchet distance.")

  @Option(help: "The inverter run directory.") var inverter: String
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: ArgumentHelp("Data set (default: the inverter's).", valueName: "name")) var dataset: String?
  @Option(help: "Held-out images to score.") var count = ReconstructExperiment.defaults.count
  @Option(help: "Candidates per retrieval (chance 1/N).") var retrievalN = ReconstructExperiment.defaults.retrievalGroupSize
  @Option(help: "Reconstructions per logit vector for the diversity measure.") var noiseSamples = ReconstructExperiment.defaults.noiseSamples
  @OptionGroup var output: ExperimentOutput

  func validate() throws {
    try require(count >= 2, "--count must be at least 2")
    try require(retrievalN >= 2 && retrievalN <= count, "--retrieval-n must be between 2 and --count")
    try require(noiseSamples >= 1, "--noise-samples must be at least 1")
  }

  func run() throws {
    var experiment = ReconstructExperiment(inverter: inverter, evaluation: evaluation, dataset: dataset)
    (experiment.count, experiment.retrievalGroupSize, experiment.noiseSamples) = (count, retrievalN, noiseSamples)
    try output.run(experiment)
  }
}

struct AnalyzeFactors: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "factors",
    abstract: "Shapes factor recovery: R² per nuisance factor read off reconstructions, off the originals (ceiling), and off the logits by a linear and an MLP probe (what the logits hold).")

  @Option(help: "The inverter run directory (its data set must be shapes).") var inverter: String
  @Option(help: "Held-out images scored.") var count = FactorExperiment.defaults.count
  @Option(help: "Clean training images for the factor regressor and the logit probe.") var trainCount = FactorExperiment.defaults.trainCount
  @Option(help: "Epochs of the factor regressor, when one is trained here.") var epochs = FactorExperiment.defaults.epochs
  @Option(help: "A trained factor regressor (default: \(FactorRegressor.shippedFolder) when it is there, else one is trained here).") var regressor: String?
  @Option(help: "Reconstructions per image, each from fresh noise, whose factor readings are averaged (the inverter's estimate; one draw is also reported).") var draws = FactorExperiment.defaults.draws
  @OptionGroup var output: ExperimentOutput

  func validate() throws {
    try require(count >= 10 && trainCount >= 100 && epochs >= 1, "--count ≥ 10, --train-count ≥ 100, --epochs ≥ 1")
    try require(draws >= 1 && draws <= 64, "--draws must be 1 to 64 (8 or more to average a sampling generator's readings)")
  }

  func run() throws {
    var experiment = FactorExperiment(inverter: inverter)
    (experiment.count, experiment.trainCount, experiment.epochs, experiment.regressor) = (count, trainCount, epochs, regressor)
    experiment.draws = draws
    try output.run(experiment)
  }
}

struct AnalyzeInformation: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "information",
    abstract: "What each representation of a Shapes classifier holds: R² per factor of a linear and an MLP probe at every depth (stem … pooled features, logits), and from reconstructions of inverters of some of them against the regressor's ceiling.")

  @Option(help: "The classifier run directory (trained on shapes, any class count).") var classifier: String
  @Option(
    parsing: .upToNextOption,
    help: ArgumentHelp("Representations to probe, in depth order: logits, features:NAME (default: every feature map, then the logits).", valueName: "representation"))
  var representation: [String] = []
  @Option(parsing: .upToNextOption, help: "Inverters of this classifier whose reconstructions are scored.") var inverter: [String] = []
  @Option(help: "Held-out images scored.") var count = InformationExperiment.defaults.count
  @Option(help: "Clean training images the probes are fit on.") var trainCount = InformationExperiment.defaults.trainCount
  @Option(help: "Epochs of the MLP probe.") var epochs = InformationExperiment.defaults.epochs
  @Option(help: "A trained factor regressor (default: \(FactorRegressor.shippedFolder)).") var regressor: String?
  @OptionGroup var output: ExperimentOutput

  func validate() throws {
    try require(count >= 10 && trainCount >= 100 && epochs >= 1, "--count ≥ 10, --train-count ≥ 100, --epochs ≥ 1")
  }

  func run() throws {
    var experiment = InformationExperiment(classifier: classifier)
    experiment.representations = try validating { try representation.isEmpty ? nil : representation.map { try Representation(parsing: $0) } }
    (experiment.inverters, experiment.count, experiment.trainCount, experiment.epochs, experiment.regressor) = (inverter, count, trainCount, epochs, regressor)
    try output.run(experiment)
  }
}

struct AnalyzeFactorRegressor: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "factor-regressor",
    abstract: "Train the Shapes factor regressor (the ruler of `analyze factors`) on images degraded as reconstructions are, and measure its ceilings: R² per factor on held-out originals, clean and degraded.")

  @Option(help: "The run directory to write (model.safetensors, config.json, factors.json).") var out: String
  @Option(help: ArgumentHelp("The Shapes data set.", valueName: "name")) var dataset = "shapes"
  @Option(help: "Image resolution.") var resolution = 32
  @Option(help: "Training images.") var trainCount = FactorRegressor.Options().trainCount
  @Option(help: "Epochs.") var epochs = FactorRegressor.Options().epochs
  @Option(help: "Channel multiplier of the network.") var width = FactorRegressor.Options().width
  @Option(help: "Held-out test images the ceiling is measured on.") var heldOut = FactorRegressor.Options().heldOutCount
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @Flag(help: "Train on clean images only, as regressors did before degradations (blur, lost contrast and colour, noise) were added.") var clean = false
  @Option(help: "Threads (default: all cores).") var threads: Int?
  @Flag(help: "Replace a run already in --out.") var force = false

  func validate() throws {
    try require(trainCount >= 100 && epochs >= 1 && heldOut >= 10, "--train-count ≥ 100, --epochs ≥ 1, --held-out ≥ 10")
    try require(width > 0 && width.isFinite, "--width must be positive")
  }

  func run() throws {
    Torch.ensureInitialised()
    if let threads { Torch.threadCount = threads }
    let source = try DatasetSource(dataset)
    guard case .shapes = source.kind,
      let train = try source.open(split: .train, resolution: resolution).dataset as? ShapesDataset,
      let test = try source.open(split: .test, resolution: resolution).dataset as? ShapesDataset
    else { throw RunError("the factor regressor reads Shapes factors; \(dataset) is not a Shapes data set") }
    let run = RunDirectory(out)
    try run.prepareNewRun(replacing: force)
    var options = FactorRegressor.Options()
    (options.trainCount, options.epochs, options.width, options.heldOutCount, options.seed) = (trainCount, epochs, width, heldOut, seed)
    if clean { options.degradation = nil }
    print("training the factor regressor on \(min(trainCount, train.count)) \(clean ? "clean" : "degraded") \(dataset) images for \(epochs) epochs")
    let regressor = try FactorRegressor.train(on: train, test: test, options: options, progress: true)
    try regressor.save(to: run, command: reproducibleCommandLine())
    print("ceilings, R² per factor on \(heldOut) held-out originals, clean and degraded at every axis's limit (95% intervals):")
    for name in ShapeFactors.names {
      guard let estimate = regressor.record.ceiling[name] else { continue }
      let degraded = regressor.record.degradedCeiling?[name].map { $0.formatted("%.3f") } ?? "n/a"
      print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(estimate.formatted("%.3f").padding(toLength: 26, withPad: " ", startingAt: 0)) \(degraded)")
    }
    print(String(format: "wrote %@ in %@", out, ProgressBar.clock(regressor.record.seconds ?? 0)))
  }
}

/// A logit manipulation's subcommand: the held-out options and the magnitudes.
protocol LogitManipulationCommand: ParsableCommand {
  static var manipulation: LogitManipulation { get }
  var options: HeldOutOptions { get }
  var magnitudes: String? { get }
}

extension LogitManipulationCommand {
  func run() throws {
    let values = try magnitudes.map { try parseList($0, option: "--magnitudes") }
    try options.output.run(LogitManipulationExperiment(Self.manipulation, magnitudes: values, images: options.images))
  }
}

struct AnalyzeLogitShift: LogitManipulationCommand {
  static let configuration = CommandConfiguration(commandName: "logit-shift", abstract: "Add a constant to every logit (softmax-invariant) and see what changes.")
  static let manipulation = LogitManipulation.shift
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Comma-separated shifts.") var magnitudes: String?
}

struct AnalyzeLogitScale: LogitManipulationCommand {
  static let configuration = CommandConfiguration(commandName: "logit-scale", abstract: "Multiply the logits (temperature) and see what changes.")
  static let manipulation = LogitManipulation.scale
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Comma-separated factors.") var magnitudes: String?
}

struct AnalyzeLogitNoise: LogitManipulationCommand {
  static let configuration = CommandConfiguration(commandName: "logit-noise", abstract: "Add Gaussian noise to the logits (std in units of their spread).")
  static let manipulation = LogitManipulation.noise
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Comma-separated standard deviations.") var magnitudes: String?
}

struct AnalyzeTopK: LogitManipulationCommand {
  static let configuration = CommandConfiguration(commandName: "topk", abstract: "Keep only the k largest logits.")
  static let manipulation = LogitManipulation.topk
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Comma-separated k values.") var magnitudes: String?
}

struct AnalyzeNoise: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "noise", abstract: "Fixed logits, resampled noise: how much does the picture change?")
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Noise samples per image.") var samples = NoiseExperiment.defaultSamples

  func run() throws { try options.output.run(NoiseExperiment(images: options.images, samples: samples)) }
}

struct AnalyzeInterpolate: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "interpolate", abstract: "Reconstruct along the line between two images' logits.")
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Comma-separated mixing weights α (0: image a, 1: image b).") var alphas = InterpolationExperiment.defaultAlphas.map { String(format: "%g", $0) }.joined(separator: ",")

  func run() throws {
    try options.output.run(InterpolationExperiment(images: options.images, alphas: try parseList(alphas, option: "--alphas")))
  }
}

struct AnalyzeMisclassified: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "misclassified", abstract: "Do reconstructions of misclassified images drift toward the predicted class?")
  @OptionGroup var options: HeldOutOptions

  func run() throws { try options.output.run(MisclassifiedExperiment(images: options.images)) }
}

struct AnalyzeAdversarial: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "adversarial", abstract: "Reconstruct PGD adversarial examples: does the evaluation classifier see the true or the adversarial class?")
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Attack: pgd-linf:EPS, pgd-l2:EPS or fgsm:EPS.") var attack = AdversarialExperiment.defaultAttack
  @Option(help: "PGD steps.") var steps = AdversarialExperiment.defaultSteps

  func run() throws {
    try options.output.run(AdversarialExperiment(images: options.images, attack: try AttackSpec.parse(attack, steps: steps)))
  }
}

struct AnalyzeTransforms: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "transforms",
    abstract: "Hue shift, brightness, translation, rotation, flip, blur, noise, occlusion: does the reconstruction follow (equivariance) or ignore (invariance) each?")
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Comma-separated transformations (default: all).") var only: String?

  func run() throws {
    let chosen = try only.map { list in
      try list.split(separator: ",").map { name -> ImageTransform in
        guard let transform = ImageTransform(rawValue: String(name)) else {
          throw ValidationError("unknown transformation '\(name)': use \(ImageTransform.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return transform
      }
    } ?? ImageTransform.allCases
    try options.output.run(TransformExperiment(images: options.images, transforms: chosen))
  }
}

struct AnalyzeIterate: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "iterate", abstract: "Reconstruct the reconstructions, again and again: is G∘Φ a projection, or do errors accumulate?")
  @OptionGroup var options: HeldOutOptions
  @Option(help: "Rounds of reconstruct-then-classify.") var iterations = IterationExperiment.defaultIterations

  func validate() throws { try require(iterations >= 1, "--iterations must be at least 1") }
  func run() throws { try options.output.run(IterationExperiment(images: options.images, iterations: iterations)) }
}

struct AnalyzeCompare: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Several inverters (standard vs robust, paper vs fidelity, BigGAN vs baselines) on the same held-out images, in one table.")

  @Option(parsing: .upToNextOption, help: "Inverter run directories (same data set and resolution).") var inverters: [String]
  @Option(help: "Also score optimisation-based inversion of this classifier (slow: hundreds of passes per image).") var optimize: String?
  @Option(help: "Gradient steps of the optimisation baseline.") var optimizeSteps = CompareExperiment.defaults.optimizeSteps
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: "Held-out images scored.") var count = CompareExperiment.defaults.count
  @Option(help: "Candidates per retrieval.") var retrievalN = CompareExperiment.defaults.retrievalGroupSize
  @OptionGroup var output: ExperimentOutput

  func validate() throws {
    try require(!inverters.isEmpty || optimize != nil, "give --inverters and/or --optimize")
    try require(count >= retrievalN && retrievalN >= 2, "--count must be at least --retrieval-n (≥ 2)")
  }

  func run() throws {
    var experiment = CompareExperiment(inverters: inverters, optimize: optimize, evaluation: evaluation)
    (experiment.optimizeSteps, experiment.count, experiment.retrievalGroupSize) = (optimizeSteps, count, retrievalN)
    try output.run(experiment)
  }
}

struct AnalyzeSeeds: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "seeds",
    abstract: "Standard vs robust over several inverter seeds on the same held-out images: per-seed and pooled differences with intervals, and the seed-to-seed spread.")

  @Option(parsing: .upToNextOption, help: "The standard classifier's inverters, one per seed.") var standard: [String]
  @Option(parsing: .upToNextOption, help: "The robust classifier's inverters, in the same seed order.") var robust: [String]
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @Option(help: "Held-out images scored.") var count = SeedStudyExperiment.defaults.count
  @OptionGroup var output: ExperimentOutput

  func validate() throws {
    try require(standard.count >= 2 && standard.count == robust.count, "give as many --robust as --standard inverters, at least 2 of each (one per seed)")
    try require(count >= 20, "--count must be at least 20 (retrieval is scored among 10)")
  }

  func run() throws {
    var experiment = SeedStudyExperiment(standard: standard, robust: robust, evaluation: evaluation)
    experiment.count = count
    try output.run(experiment)
  }
}
