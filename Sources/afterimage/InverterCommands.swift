import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage inverter …`: train inverters and reconstruct images from logits.
struct InverterCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inverter", abstract: "Train a feedforward inverter of a classifier's logits, and reconstruct images with it.",
    subcommands: [InverterTrain.self, InverterReconstruct.self, InverterOptimize.self])
}

struct InverterTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train a BigGAN generator conditioned on a classifier's logits (against a projection discriminator).")

  @Option(help: "The classifier to invert (run directory).") var classifier: String
  @Option(help: "The run directory to write.") var out: String
  @OptionGroup var recipe: InverterRecipeOptions
  @OptionGroup var processOptions: TrainingProcessOptions

  func run() throws {
    guard let process = try TrainingProcess(processOptions, out: out) else { return }  // the launcher: the ranks have trained
    let run = process.run
    let model = try Classifiers.load(classifier)
    let config = try processOptions.resume ? savedConfig(of: run) : newConfig(for: model, in: process)
    try validating { try config.checkScorable(by: model.config) }
    let source = try DatasetSource(config.dataset)
    let train = try source.open(split: .train, resolution: config.resolution).dataset
    let heldOut = try source.open(split: .test, resolution: config.resolution).dataset
    // A resumed run finds its perceptual network as it finds its classifier: from the run first.
    let perceptualPath = try config.losses.perceptualNetwork.map { processOptions.resume ? try Inverter.resolveClassifier($0, relativeTo: run, role: "perceptual network") : $0 }
    let perceptual = try perceptualPath.map { try Classifiers.load($0) }
    let trainer = try InverterTrainer(
      run: run, config: config, classifier: model, classifierPath: classifier, perceptualNetwork: perceptual, perceptualNetworkPath: perceptualPath,
      train: train, heldOut: heldOut, datasetKey: "\(config.dataset)|train", device: process.device, group: process.group)
    trainer.setBatchNormGroups(try process.checkBatchNormGroups(batchSize: config.training.batchSize))
    process.announce(
      "training a \(config.resolution)×\(config.resolution) inverter (\(config.preset)) of \(classifier) on \(train.name) for \(config.training.steps) steps",
      batchSize: config.training.batchSize, quiet: { (trainer.showProgress, trainer.log) = (false, nil) })
    let summary = try trainer.fit(resume: processOptions.resume)
    try process.requireFinished(summary.finished)
    guard process.isWriter else { return }
    print(String(format: "done in %@; wrote %@ and samples in %@", ProgressBar.clock(summary.seconds), run.modelURL.path, run.samplesURL.path))
  }

  /// The config of the run being resumed.
  func savedConfig(of run: RunDirectory) throws -> InverterConfig {
    guard run.hasCheckpoint else { throw ValidationError("\(out) has no checkpoint.safetensors to resume from") }
    return try run.readJSON(InverterConfig.self, from: run.configURL)
  }

  /// The config the options ask for, for `model`.
  func newConfig(for model: any ImageClassifier, in process: TrainingProcess) throws -> InverterConfig {
    try process.prepareNewRun()
    let recipe = self.recipe.recipe
    let featureNetwork = try recipe.perceptualNetwork.map { try Classifiers.load($0) } ?? model
    return try validating {
      try recipe.config(classifier: model, classifierPath: classifier, featureNetwork: featureNetwork, command: reproducibleCommandLine())
    }
  }
}

struct InverterReconstruct: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconstruct", abstract: "Originals beside their reconstructions from the classifier's logits, as a PNG grid.")

  @Option(help: "The inverter run directory.") var inverter: String
  @Option(help: "Use this classifier instead of the one recorded in the run.") var classifier: String?
  @Flag(help: "Reconstruct even when the classifier's weights, or the data under the inverter's data set's name, are not those it was trained on (the pictures then answer for a model or data it never saw).")
  var allowMismatch = false
  @Option(help: ArgumentHelp("Data set to take originals from (default: the inverter's).", valueName: "name")) var dataset: String?
  @Option(help: "Which split.") var split = Split.test
  @Option(help: "How many originals.") var count = 16
  @Option(parsing: .upToNextOption, help: "Image files to reconstruct instead of a data set.") var image: [String] = []
  @Option(help: "Reconstructions per original (different noise).") var samples = 1
  @Option(help: "Noise seed.") var seed: UInt64 = 0
  @Option(help: "The PNG to write.") var out = "reconstructions.png"
  @Option(help: ArgumentHelp("Also write the originals, the reconstructions [N, samples, C, H, W], the representation, labels, predictions and (Shapes) factors as arrays beside the PNG (its name with .safetensors or .npz): safetensors, npz, or both (comma-separated).", valueName: "formats"),
          transform: parseArrayFormats)
  var arrays: [ArrayFiles.Format] = []
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 1, "--count must be at least 1")
    try require((1...16).contains(samples), "--samples must be 1 to 16")
  }

  func run() throws {
    let model = try Inverter.load(inverter, classifierOverride: classifier, allowMismatch: allowMismatch, device: try compute.resolved())
    let config = model.classifier.config
    func checkFits(_ n: Int) throws {
      try ResourceLimits.checkGrid(
        count: n * (samples + 1), columns: samples + 1, side: config.resolution, scale: ImageGrid.scale(forResolution: config.resolution, .picture),
        fix: "reconstruct fewer originals (--count) or fewer --samples")
    }
    let originals: Tensor
    var (labels, factors): (Tensor?, [ShapeFactors]?) = (nil, nil)
    if !image.isEmpty {
      try checkFits(image.count)
      originals = try Tensor.stack(image.map { try ImageFile.readModelInput(URL(fileURLWithPath: $0), channels: config.channels, resolution: config.resolution) })
    } else {
      let data = try openReporting(try DatasetSource(dataset ?? model.config.dataset), split: split, resolution: config.resolution)
      try model.checkAccepts(data)
      if dataset == nil || dataset == model.config.dataset { try model.checkOwnData(data, split: split, allowMismatch: allowMismatch) }
      try checkFits(min(count, data.count))
      let batch = try data.batch(at: Array(0..<min(count, data.count)))
      (originals, labels, factors) = (batch.images, batch.labels, batch.factors)
    }
    let sheet = try ReconstructionSheet(inverter: model, originals: originals, samples: samples, seed: seed)
    try PNG.write(sheet.grid(scale: ImageGrid.scale(forResolution: config.resolution, .picture)), to: URL(fileURLWithPath: out))
    if !arrays.isEmpty {
      let url = URL(fileURLWithPath: out)
      let written = try sheet.arrays(labels: labels, factors: factors).write(arrays, in: url.deletingLastPathComponent(), base: url.deletingPathExtension().lastPathComponent)
      print("wrote " + written.map(\.path).joined(separator: ", "))
    }
    let (n, agreement) = (sheet.count, sheet.agreement)
    print("wrote \(out): \(n) originals, \(sheet.reconstructions.count) reconstruction(s) each")
    print(String(format: "top-1 agreement (classifier on reconstruction = on original): %d/%d (%.1f%%)", agreement.matching, agreement.total, 100 * Double(agreement.matching) / Double(agreement.total)))
    for i in 0..<min(n, 8) {
      print("  \(i): \(config.classNames[Int(sheet.originalClasses[i])]) → \(sheet.predicted.map { config.classNames[Int($0[i])] }.joined(separator: ", "))")
    }
  }
}

struct InverterOptimize: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "optimize",
    abstract: "Optimisation-based inversion: gradient descent on images to match the classifier's logits (a baseline).")

  @Option(help: "The classifier whose logits are inverted.") var classifier: String
  @Option(help: ArgumentHelp("Data set to take originals from (default: the classifier's).", valueName: "name")) var dataset: String?
  @Option(help: "Which split.") var split = Split.test
  @Option(help: "How many originals.") var count = 8
  @Option(parsing: .upToNextOption, help: "Image files to invert instead of a data set.") var image: [String] = []
  @Option(help: "Gradient steps per image.") var steps = OptimizationInversion.Options.default.steps
  @Option(help: "Adam learning rate on the image parameters.") var lr = OptimizationInversion.Options.default.learningRate
  @Option(help: "Total-variation prior weight.") var tv = OptimizationInversion.Options.default.totalVariation
  @Option(help: "Norm prior weight.") var norm = OptimizationInversion.Options.default.norm
  @Option(help: "Random jitter in pixels.") var jitter = OptimizationInversion.Options.default.jitter
  @Option(help: "Random seed.") var seed = OptimizationInversion.Options.default.seed
  @Option(help: "The PNG to write.") var out = "optimized.png"
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 1, "--count must be at least 1")
    try require(steps >= 1, "--steps must be at least 1")
    try require(lr > 0 && tv >= 0 && norm >= 0 && jitter >= 0, "--lr must be positive; --tv, --norm, --jitter not negative")
  }

  func run() throws {
    let model = try Classifiers.load(classifier, device: try compute.resolved())
    let config = model.config
    let originals: Tensor
    var (labels, factors): (Tensor?, [ShapeFactors]?) = (nil, nil)
    if !image.isEmpty {
      originals = try Tensor.stack(image.map { try ImageFile.readModelInput(URL(fileURLWithPath: $0), channels: config.channels, resolution: config.resolution) })
    } else {
      guard let name = dataset ?? config.dataset else { throw ValidationError("this classifier records no data set: pass --dataset") }
      let data = try DatasetSource(name).open(split: split, resolution: config.resolution).dataset
      let batch = try data.batch(at: Array(0..<min(count, data.count)))
      (originals, labels, factors) = (batch.images, batch.labels, batch.factors)
    }
    let targets = try withNoGrad { try model.logits(originals) }
    var options = OptimizationInversion.Options()
    options.steps = steps
    options.learningRate = lr
    options.totalVariation = tv
    options.norm = norm
    options.jitter = jitter
    options.seed = seed
    let start = Date()
    let (images, error) = try OptimizationInversion.invert(targets, classifier: model, options: options, progress: true)
    let seconds = Date().timeIntervalSince(start)
    let n = originals.shape[0]
    let agree = try withNoGrad { (try model.logits(images).argmax(dim: 1) .== targets.argmax(dim: 1)).to(.float32).sum().item() }
    let tiles = Tensor.stack([originals.to(images.device), images], dim: 1).flattened(from: 0, through: 1)
    try PNG.write(ImageGrid.make(tiles, columns: 8, padding: 2, scale: ImageGrid.scale(forResolution: config.resolution, .picture)), to: URL(fileURLWithPath: out))
    print(String(format: "wrote %@: %d originals beside their optimised inversions (%d steps, %.2f s per image, %.1f images/s)", out, n, steps, seconds / Double(n), Double(n) / seconds))
    print(String(format: "final logit MSE %.4f; top-1 agreement %d/%d", error, Int(agree), n))
  }
}
