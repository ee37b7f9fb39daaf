import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage study …`: the studies beyond the paper, end to end. Each finds the models it
/// needs in the models folder, trains the missing ones with their recipes (`Recipes.study…`),
/// then measures into `--out`, reusing the probe results of unchanged classifiers there.
struct StudyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "study", abstract: "Studies beyond the paper: information across depth, against the number of classes, and across architectures.",
    subcommands: [StudyDepth.self, StudyClasses.self, StudyArchitecture.self])
}

/// What every study takes: where the models are, how to train the missing ones, and the counts.
struct StudyOptions: ParsableArguments {
  @Option(help: "The models folder the study reads and trains into.") var models = "models"
  @Option(help: "Output folder (figures, results.json, and parts/ with each classifier's probes).") var out: String
  @Option(help: "Held-out images scored.") var count = InformationExperiment.defaults.count
  @Option(help: "Clean training images the probes are fit on.") var trainCount = InformationExperiment.defaults.trainCount
  @Option(help: "Epochs of the MLP probe.") var epochs = InformationExperiment.defaults.epochs
  @Option(help: "The factor regressor that reads reconstructions (default: \(FactorRegressor.shippedFolder)).") var regressor: String?
  @Option(help: ArgumentHelp("Extra flags for every classifier the study trains, after an = sign (e.g. --classifier-options=\"--epochs 1\"; they override the recipe's).", valueName: "flags"))
  var classifierOptions = ""
  @Option(help: ArgumentHelp("Extra flags for every inverter the study trains, after an = sign (e.g. --inverter-options=\"--steps 100\").", valueName: "flags"))
  var inverterOptions = ""
  @Option(help: "Threads for training (default: all cores).") var threads: Int?
  @Flag(help: "List the models the study needs and which would be trained, without training or measuring.") var dryRun = false
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 10 && trainCount >= 100 && epochs >= 1, "--count ≥ 10, --train-count ≥ 100, --epochs ≥ 1")
  }

  var settings: InformationExperiment {
    var settings = InformationExperiment(classifier: "")
    (settings.count, settings.trainCount, settings.epochs, settings.regressor) = (count, trainCount, epochs, regressor)
    return settings
  }

  /// The recipes' folders under the models folder, training those whose weights are missing.
  func ensure(_ recipes: [Recipe]) throws {
    let missing = recipes.filter { !$0.id.isPresent(in: models) }
    for recipe in recipes {
      print("\(missing.contains { $0.id == recipe.id } ? "to train" : "found   ")  \(recipe.id.path(in: models))")
    }
    guard !dryRun, !missing.isEmpty else { return }
    let extra = missing.map { recipe -> Recipe in
      let flags = recipe.kind == .inverter ? inverterOptions : classifierOptions
      return recipe.appending(flags.split(separator: " ").map(String.init))
    }
    for (recipe, seconds) in try Recipes.train(extra, models: models, threads: threads, device: compute.device) {
      print(String(format: "%@ took %@", recipe.name, ProgressBar.clock(seconds)))
    }
  }

  func run<E: Experiment>(_ experiment: E) throws {
    guard !dryRun else { return }
    try ExperimentRunner(device: try compute.resolved()).run(experiment, out: out)
  }
}

struct StudyDepth: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "depth",
    abstract: "Information across depth: for Shapes classifiers, probe R² per factor at the stem, each stage, the pooled features and the logits, with inverters of the pooled features and the logits scored against the ceiling.")

  @Option(parsing: .upToNextOption, help: "Shapes classifiers (names under MODELS/classifiers).") var classifier = ["shapes-standard", "shapes-robust"]
  @OptionGroup var options: StudyOptions

  func run() throws {
    let classifiers = classifier.map(Recipes.classifierID(named:))
    try requireClassifiers(classifiers, in: options.models)
    try options.ensure(classifiers.flatMap(Recipes.depthInverters(of:)))
    let studied = classifiers.map { id in
      StudyClassifier(name: id.name, path: ModelID.classifier(id).path(in: options.models),
                      inverters: Recipes.depthInverters(of: id).map { $0.id.path(in: options.models) })
    }
    var study = DepthStudy(classifiers: studied, folder: options.out)
    study.settings = options.settings
    try options.run(study)
  }
}

struct StudyClasses: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "classes",
    abstract: "Information against the number of classes: Shapes classifiers with K classes, standard and PGD-robust (the shipped recipe scaled to K), probed per factor; the largest K's inverted.")

  @Option(help: "Class counts of the standard classifiers.", transform: { try parseCounts($0) }) var standard = [10, 20, 40]
  @Option(help: "Class counts of the robust classifiers (empty: none).", transform: { try parseCounts($0) }) var robust = [10, 40]
  @Option(help: ArgumentHelp("Which kinds are inverted at the largest K: standard,robust, one of them, or none.", valueName: "kinds"))
  var invert = "standard,robust"
  @Option(help: ArgumentHelp("Options added to the Shapes data set of the classifiers trained here (e.g. train=512,test=256).", valueName: "options"))
  var shapesOptions: String?
  @OptionGroup var options: StudyOptions

  func run() throws {
    let wanted = standard.map { ($0, ClassifierKind.standard) } + robust.map { ($0, ClassifierKind.robust) }
    guard !wanted.isEmpty else { throw ValidationError("give at least one class count (--standard or --robust)") }
    let largest = wanted.map(\.0).max()!
    let inverted: [ClassifierKind] = try invert == "none" ? [] : invert.split(separator: ",").map { word in
      guard let kind = ClassifierKind(rawValue: String(word)) else {
        throw ValidationError("--invert takes standard, robust, standard,robust or none; got '\(invert)'")
      }
      return kind
    }
    func invertsIt(_ classes: Int, _ kind: ClassifierKind) -> Bool { classes == largest && inverted.contains(kind) }
    let classifiers = wanted.map { Recipes.shapesClassifier(classes: $0.0, kind: $0.1, options: shapesOptions) }
    let inverters = wanted.filter { invertsIt($0.0, $0.1) }.map { Recipes.fidelityInverter(of: ClassifierID("shapes", $0.1, classes: $0.0)) }
    try options.ensure(classifiers + inverters)
    let studied = wanted.map { classes, kind -> (classes: Int, kind: String, classifier: StudyClassifier) in
      let id = ClassifierID("shapes", kind, classes: classes)
      let inverters = invertsIt(classes, kind) ? [Recipes.fidelityInverter(of: id).id.path(in: options.models)] : []
      return (classes, kind.rawValue, StudyClassifier(name: id.name, path: ModelID.classifier(id).path(in: options.models), inverters: inverters))
    }
    var study = ClassesStudy(classifiers: studied, folder: options.out)
    study.settings = options.settings
    try options.run(study)
  }
}

struct StudyArchitecture: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "architecture",
    abstract: "Architecture families on one data set: each classifier inverted with the fidelity recipe and scored with the same reconstruction metrics.")

  @Option(parsing: .upToNextOption, help: "Classifiers (names under MODELS/classifiers).") var classifier = ["fashion-mnist-standard", "fashion-mnist-vgg"]
  @Option(help: "The independent evaluation classifier (default: models/eval/<data set>).") var evaluation: String?
  @OptionGroup var options: StudyOptions

  func run() throws {
    let classifiers = classifier.map(Recipes.classifierID(named:))
    let trainable = classifiers.compactMap { id in Recipes.all.first { $0.id == .classifier(id) } }
    try requireClassifiers(classifiers.filter { id in !trainable.contains { $0.id == .classifier(id) } }, in: options.models)
    try options.ensure(trainable + classifiers.map { Recipes.fidelityInverter(of: $0) })
    var study = ArchitectureStudy(classifiers: classifiers.map { id in
      StudyClassifier(name: id.name, path: ModelID.classifier(id).path(in: options.models), inverters: [Recipes.fidelityInverter(of: id).id.path(in: options.models)])
    })
    (study.evaluation, study.count) = (evaluation, options.count)
    try options.run(study)
  }
}

/// Throws unless every named classifier is in the models folder (the studies train inverters,
/// and only the classifiers they have recipes for).
func requireClassifiers(_ classifiers: [ClassifierID], in models: String) throws {
  for id in classifiers {
    let path = ModelID.classifier(id).path(in: models)
    guard !FileManager.default.fileExists(atPath: "\(path)/config.json") else { continue }
    throw ValidationError("no classifier \(path): train it with `afterimage classifier train --out \(path) …` (or `afterimage models train \(id.name)` for a shipped one)")
  }
}

/// "10,20,40" as class counts (an empty string: none).
func parseCounts(_ text: String) throws -> [Int] {
  let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
  guard parts.allSatisfy({ $0 != nil && $0! >= 2 }) else {
    throw ValidationError("class counts are comma-separated integers of at least 2, e.g. 10,20,40; got '\(text)'")
  }
  return parts.map { $0! }
}
