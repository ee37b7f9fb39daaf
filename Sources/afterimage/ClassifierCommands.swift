import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage classifier …`: the classifiers to invert.
struct ClassifierCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "classifier", abstract: "Train, evaluate and import the classifiers to invert.",
    subcommands: [ClassifierTrain.self, ClassifierEval.self, ClassifierImport.self, ClassifierInfo.self])
}

/// `classifier info`: what a classifier is, and every representation an inverter or a probe
/// can read from it (`--representation`), with the length of its vector.
struct ClassifierInfo: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "A classifier's architecture, classes and data set, and its feature maps as representations (what `inverter train --representation` takes).")

  @Option(help: "A classifier run directory or model.safetensors.") var classifier: String

  func run() throws {
    let model = try Classifiers.load(classifier)
    let config = model.config
    print("\(classifier): \(config.architecture.rawValue), \(config.classCount) classes, \(config.channels)×\(config.resolution)² inputs, trained on \(config.dataset ?? "an unrecorded data set")")
    print("representations (feature maps pooled to at most \(Representation.gridSide)×\(Representation.gridSide) cells and flattened):")
    let probe = Tensor.full([1, config.channels, config.resolution, config.resolution], 0.5)
    let maps = try withNoGrad { try model.features(probe, names: model.featureNames).features }
    for representation in model.representations {
      let shape = representation == .logits ? [1, config.classCount] : maps[representation.label]?.shape ?? []
      let size = try model.representationSize(representation)
      print("  \(representation.description.padding(toLength: 28, withPad: " ", startingAt: 0)) map \(shape.dropFirst().map(String.init).joined(separator: "×").leftPadded(12))  →  \(size) values")
    }
  }
}

/// Parses "0.5,0.4,0.3" into numbers.
func parseList(_ text: String, option: String) throws -> [Double] {
  let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
  guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
    throw ValidationError("\(option) takes comma-separated numbers, e.g. 0.5,0.5,0.5; got '\(text)'")
  }
  return values.map { $0! }
}

struct ClassifierTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train a standard or adversarially robust classifier into a run directory.")

  @OptionGroup var recipe: ClassifierRecipeOptions
  @Option(help: "The run directory to write.") var out: String
  @Option(help: "Test examples attacked with PGD-20 at the end (robust models).")
  var finalAttackCount = ClassifierTrainingResults.defaultFinalAttackCount
  @Flag(help: "Fail on an unreadable image instead of skipping it (image folders).") var strict = false
  @OptionGroup var processOptions: TrainingProcessOptions

  func validate() throws {
    try require(finalAttackCount >= 1, "--final-attack-count must be at least 1")
  }

  func run() throws {
    guard let process = try TrainingProcess(processOptions, out: out) else { return }  // the launcher: the ranks have trained
    let run = process.run
    let source = try DatasetSource(recipe.dataset)
    let (config, options): (ClassifierConfig, ClassifierTrainingOptions)
    let (trainSet, testSet): (Dataset, Dataset)
    if processOptions.resume {
      (config, options) = try savedConfig(of: run)
      (trainSet, testSet) = try openSplits(try DatasetSource(config.dataset ?? recipe.dataset), resolution: config.resolution)
    } else {
      try process.prepareNewRun()
      let asked = try recipe.recipe()
      (trainSet, testSet) = try openSplits(source, resolution: asked.resolution)
      (config, options) = (try asked.config(fittedTo: trainSet, command: reproducibleCommandLine()), asked.training)
    }
    let trainer = try ClassifierTrainer(run: run, config: config, options: options, train: trainSet, test: testSet, device: process.device, group: process.group)
    trainer.finalAttackCount = finalAttackCount
    trainer.state.classifier.model.setBatchNormGroups(try process.checkBatchNormGroups(batchSize: options.batchSize))
    try process.announce(
      "training \(config.architecture.rawValue) (width \(config.width), \(try NetworkClassifier(config: config).model.parameterCount) parameters) on \(trainSet.name): \(options.trainCount ?? trainSet.count) images, \(options.epochs) epochs of \(trainer.totalSteps / max(options.epochs, 1)) steps\(options.adversarial.map { ", adversarial \($0)" } ?? "")",
      batchSize: options.batchSize, quiet: { (trainer.showProgress, trainer.log) = (false, nil) })
    let summary = try trainer.fit(resume: processOptions.resume)
    try process.requireFinished(!summary.interrupted)
    guard process.isWriter, let results = summary.evaluation else { return }
    print(String(format: "done in %@: test accuracy %.2f%%", ProgressBar.clock(summary.seconds), 100 * results.cleanAccuracy)
      + (results.attackAccuracy.map { String(format: ", under %@ %.2f%%", results.attack ?? "attack", 100 * $0) } ?? ""))
    print("wrote \(run.modelURL.path), \(run.resultsURL.path)")
  }

  /// The training and test splits of `source` at `resolution`.
  func openSplits(_ source: DatasetSource, resolution: Int) throws -> (train: Dataset, test: Dataset) {
    (try openReporting(source, split: .train, resolution: resolution, strict: strict),
     try openReporting(source, split: .test, resolution: resolution, strict: strict))
  }

  /// The config of the run being resumed, and the options it was started with.
  func savedConfig(of run: RunDirectory) throws -> (ClassifierConfig, ClassifierTrainingOptions) {
    guard run.hasCheckpoint else { throw ValidationError("\(out) has no checkpoint.safetensors to resume from") }
    let config = try run.readJSON(ClassifierConfig.self, from: run.configURL)
    guard let options = config.training else { throw ValidationError("\(run.configURL.path) records no training options") }
    FileHandle.standardError.write(Data("resuming with the options saved in \(run.configURL.path)\n".utf8))
    return (config, options)
  }
}

struct ClassifierEval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval", abstract: "Clean accuracy and accuracy under attack (FGSM, PGD L∞/L2).")

  @Option(help: "A classifier run directory or model.safetensors.") var classifier: String
  @Option(help: ArgumentHelp("The data set (default: the one it was trained on).", valueName: "name")) var dataset: String?
  @Option(help: "Which split: train or test.") var split = Split.test
  @Option(help: "Attack: fgsm:EPS, pgd-linf:EPS or pgd-l2:EPS (e.g. pgd-linf:8/255).") var attack: String?
  @Option(help: "PGD steps.") var steps = AttackSpec.Defaults.evaluationSteps
  @Option(help: "PGD step size (default 2.5·ε/steps).") var stepSize: Double?
  @Flag(help: "Start PGD at the clean image instead of a random point.") var noRandomStart = false
  @Option(help: "Evaluate the first N examples only.") var count: Int?
  @Flag(help: "Also report accuracy per class.") var perClass = false
  @Option(help: "Write the results as JSON (clean_accuracy, attack_accuracy in 0…1).") var json: String?
  @Option(help: "Random seed (PGD random starts).") var seed: UInt64 = 0
  @Flag(help: "Targeted attack: push each image toward the next class ((label + 1) mod K) and report how often it lands there.") var targeted = false
  @Flag(help: "Fail on an unreadable image instead of skipping it (image folders).") var strict = false
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(steps >= 1, "--steps must be at least 1")
    try require(stepSize.map { $0 > 0 } ?? true, "--step-size must be positive")
    try require(count.map { $0 >= 1 } ?? true, "--count must be at least 1")
    try require(attack != nil || !targeted, "--targeted needs an --attack")
  }

  func run() throws {
    let model = try Classifiers.load(classifier, device: try compute.resolved())
    guard let name = dataset ?? model.config.dataset else {
      throw ValidationError("this classifier records no data set: pass --dataset")
    }
    let data = try openReporting(try DatasetSource(name), split: split, resolution: model.config.resolution, strict: strict)
    let spec = try attack.map { try AttackSpec.parse($0, steps: steps, stepSize: stepSize, randomStart: !noRandomStart, targeted: targeted) }
    let result = try ClassifierEvaluation.evaluate(model, on: data, attack: spec, limit: count, perClass: perClass, seed: seed, progress: true)
    print(String(format: "%@ on %@ (%@, %d images): clean accuracy %.2f%%", model.config.architecture.rawValue, data.name, split.rawValue, result.count, 100 * result.cleanAccuracy))
    if let accuracy = result.attackAccuracy { print(String(format: "under %@: %.2f%%", result.attack ?? "", 100 * accuracy)) }
    if let success = result.targetSuccessRate { print(String(format: "targeted attack reached the next class on %.2f%% of images", 100 * success)) }
    if let perClass = result.perClass {
      for name in data.classNames where perClass[name] != nil {
        let values = perClass[name]!.map { String(format: "%6.2f%%", 100 * $0) }.joined(separator: "  ")
        print("  \(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(values)")
      }
    }
    try writeJSON(result, ifAsked: json)
  }
}

struct ClassifierImport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import", abstract: "Wrap your PyTorch classifier (TorchScript or a .pt2 package) as a run directory Afterimage can invert.")

  @Option(help: "The TorchScript file (torch.jit.save of a scripted or traced model).") var torchscript: String?
  @Option(help: ArgumentHelp("Instead: an AOTInductor package from torch.export (torch._inductor.aoti_compile_and_package); forward only, so the paper preset inverts it.", valueName: "file.pt2")) var pt2: String?
  @Option(help: "Input shape CxHxW, e.g. 3x32x32 (square images).") var input: String
  @Option(help: "Number of classes (the logits' size).") var classes: Int?
  @Option(help: "Class names, comma-separated (instead of --classes).") var classNames: String?
  @Option(help: "Per-channel mean the model expects subtracted, e.g. 0.4914,0.4822,0.4465 (default 0).") var mean: String?
  @Option(help: "Per-channel std the model expects divided by (default 1).") var std: String?
  @Option(help: "The run directory to write.") var out: String
  @OptionGroup var compute: DeviceOptions

  func run() throws {
    let device = try compute.resolved()
    let (modelPath, format): (String, ImportedModelFormat)
    switch (torchscript, pt2) {
    case (let file?, nil): (modelPath, format) = (file, .torchscript)
    case (nil, let file?): (modelPath, format) = (file, .pt2)
    default: throw ValidationError("give exactly one of --torchscript FILE and --pt2 FILE")
    }
    let dims = input.lowercased().split(separator: "x").compactMap { Int($0) }
    guard dims.count == 3, dims[1] == dims[2], dims.allSatisfy({ $0 > 0 }) else {
      throw ValidationError("--input must be CxHxW with H = W, e.g. 3x32x32; got '\(input)'")
    }
    // The import probe runs batches of up to 5 such images: refused before libtorch allocates them.
    guard (1...4).contains(dims[0]), (8...1024).contains(dims[1]) else {
      throw ValidationError("--input \(input) is outside what Afterimage inverts: 1 to 4 channels and 8 to 1024 pixels square")
    }
    let names: [String]
    if let classNames {
      names = classNames.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    } else if let classes, classes > 0 {
      names = (0..<classes).map { "class \($0)" }
    } else {
      throw ValidationError("give --classes N or --class-names a,b,c")
    }
    let channels = dims[0]
    let identity = Normalization.identity(channels: channels)
    let meanValues = try mean.map { try parseList($0, option: "--mean") } ?? identity.mean
    let stdValues = try std.map { try parseList($0, option: "--std") } ?? identity.std
    guard meanValues.count == channels, stdValues.count == channels else {
      throw ValidationError("--mean and --std need \(channels) values, one per channel")
    }
    let classifier = try TorchScriptImport.importModel(
      modelPath: modelPath, format: format, channels: channels, resolution: dims[1], classNames: names,
      normalization: Normalization(mean: meanValues, std: stdValues), run: RunDirectory(out), command: reproducibleCommandLine(),
      device: device)
    print("imported \(modelPath): \(channels)×\(dims[1])×\(dims[2]) → \(classifier.config.classCount) logits; wrote \(out)/config.json and \(out)/\(classifier.config.torchscriptFile ?? "")")
    if format == .torchscript {
      let layers = classifier.defaultFeatureLayers
      print("feature maps: \(classifier.featureNames.count) submodule outputs; default perceptual layers: \(layers.isEmpty ? "none" : layers.joined(separator: ", "))")
    }
  }
}

/// Throws a validation error with `message` unless `condition` holds.
func require(_ condition: Bool, _ message: String) throws {
  if !condition { throw ValidationError(message) }
}

/// Opens a data set split, printing what loading noticed (skipped files) to standard error.
func openReporting(_ source: DatasetSource, split: Split, resolution: Int?, strict: Bool = false) throws -> Dataset {
  let (dataset, notes) = try source.open(split: split, resolution: resolution, strict: strict)
  for note in notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
  return dataset
}
