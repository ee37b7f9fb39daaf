import Afterimage
import ArgumentParser
import Foundation
import Torch

/// One shipped model: what it is (`id`, which gives its folder under the models folder) and the
/// command that trains it. This table is the single record of how every shipped weight file was
/// made; `afterimage models train`, `afterimage demo --train` and scripts/train-* all run it.
struct Recipe {
  enum Kind: String {
    case classifier, evaluation = "evaluation classifier", inverter, factorRegressor = "factor regressor", study

    /// The sub-command that makes this kind of model.
    var subcommand: [String] {
      switch self {
      case .classifier, .evaluation: return ["classifier", "train"]
      case .inverter: return ["inverter", "train"]
      case .factorRegressor: return ["analyze", "factor-regressor"]
      case .study: return ["analyze", "seeds"]
      }
    }
  }

  let id: ModelID
  /// The sub-command's arguments after `--out DIR`; `{models}` stands for the models folder.
  let arguments: [String]
  /// The sub-command when it is not the kind's (`study depth` for a study beyond the paper).
  var subcommand: [String]? = nil

  var name: String { id.name }
  /// The run directory, relative to the models folder.
  var folder: String { id.folder }
  var kind: Kind {
    switch id {
    case .classifier: return .classifier
    case .evaluation: return .evaluation
    case .inverter: return .inverter
    case .factorRegressor: return .factorRegressor
    case .seedStudy, .study: return .study
    }
  }

  /// The words of the command line, e.g. `["classifier", "train", "--out", …]`.
  func commandLine(models: String) -> [String] {
    return (subcommand ?? kind.subcommand) + ["--out", id.path(in: models)] + arguments.map { $0.replacingOccurrences(of: "{models}", with: models) }
  }

  /// The same recipe with `flags` after its own (a later flag overrides an earlier one).
  func appending(_ flags: [String]) -> Recipe {
    Recipe(id: id, arguments: arguments + flags, subcommand: subcommand)
  }

  /// The file whose presence means the recipe has been run: the weights, or a study's results.
  var product: String { id.product }
}

enum Recipes {
  static let all: [Recipe] = classifiers + inverters + studies + beyond

  /// ResNet-20 at half width; the robust ones are Madry PGD-7 trained at the ε the demo attacks with.
  static let classifiers: [Recipe] = [
    shapesClassifier(classes: 10, kind: .standard),
    shapesClassifier(classes: 10, kind: .robust),
    Recipe(id: .classifier(ClassifierID("fashion-mnist", .standard)),
           arguments: "--dataset fashion-mnist --arch resnet20 --width 0.5 --epochs 8 --warmup-steps 100"),
    Recipe(id: .classifier(ClassifierID("fashion-mnist", .robust)),
           arguments: "--dataset fashion-mnist --arch resnet20 --width 0.5 --epochs 4 --train-count 40000 --warmup-steps 100 --adversarial linf:0.1"),
    Recipe(id: .evaluation(dataset: "shapes"),
           arguments: "--dataset shapes --arch evalnet --width 0.5 --epochs 4 --warmup-steps 100 --seed 1"),
    Recipe(id: .evaluation(dataset: "fashion-mnist"),
           arguments: "--dataset fashion-mnist --arch evalnet --width 0.5 --epochs 6 --warmup-steps 100 --seed 1"),
  ]

  /// BigGAN inverters (fidelity and the paper's preset) of every shipped classifier, and the
  /// up-convolutional baselines of the standard ones. ch 16, batch 64, 32×32. The perceptual
  /// terms use the inverted classifier's own features, so the evaluation classifier stays
  /// independent.
  static let inverters: [Recipe] = {
    /// The inverter of `data`'s `kind` classifier trained with `preset` (the decoder for the
    /// up-convolutional presets).
    func inverter(_ data: String, _ kind: ClassifierKind, _ preset: InverterPreset) -> Recipe {
      if preset == .fidelity { return fidelityInverter(of: ClassifierID(data, kind)) }
      let arch = [.upconv, .deepsim].contains(preset) ? " --arch upconv" : ""
      // Every inverter gets the same budget: 1500 steps (see `fidelityTraining`).
      return Recipe(id: .inverter(InverterID(of: ClassifierID(data, kind), preset)),
                    arguments: "--classifier {models}/\(ModelID.classifier(ClassifierID(data, kind)).folder)\(arch) --preset \(preset.rawValue) --steps 1500")
    }
    let datasets = ["fashion-mnist", "shapes"]
    // In training order: the fidelity inverters first (the demo's main comparison), then the
    // quick pixel-loss baseline, the paper's preset, and DeePSiM.
    return datasets.flatMap { data in ClassifierKind.allCases.map { inverter(data, $0, .fidelity) } }
      + datasets.map { inverter($0, .standard, .upconv) }
      + datasets.flatMap { data in ClassifierKind.allCases.map { inverter(data, $0, .paper) } }
      + datasets.map { inverter($0, .standard, .deepsim) }
  }()

  /// The Shapes factor regressor (the ruler of factor recovery), the Fashion-MNIST fidelity
  /// inverters of two more seeds, and the seed study that scores all six on 1000 images: what
  /// costs more than the demo may spend, computed once and shown by the demo.
  static let studies: [Recipe] = {
    let seeds = [1, 2]
    func folders(_ kind: ClassifierKind) -> String {
      ([0] + seeds).map { "{models}/" + ModelID.inverter(InverterID(of: ClassifierID("fashion-mnist", kind), .fidelity, seed: $0)).folder }.joined(separator: " ")
    }
    return [
      Recipe(id: ShippedModels.factorRegressor, arguments: "--train-count 30000 --epochs 20 --width 0.5"),
    ] + ClassifierKind.allCases.flatMap { kind in seeds.map { fidelityInverter(of: ClassifierID("fashion-mnist", kind), seed: $0) } } + [
      Recipe(id: .seedStudy(dataset: "fashion-mnist"),
             arguments: "--standard \(folders(.standard)) --robust \(folders(.robust)) --evaluation {models}/\(ModelID.evaluation(dataset: "fashion-mnist").folder) --count 1000"),
    ]
  }()

  /// The models and results of the studies beyond the paper (`afterimage study …`): Shapes
  /// classifiers with 20 and 40 classes and their inverters, inverters of the pooled features, a
  /// VGG-style Fashion-MNIST classifier, and the three studies, which the demo shows.
  static let beyond: [Recipe] = {
    let classes = [shapesClassifier(classes: 20, kind: .standard), shapesClassifier(classes: 40, kind: .standard), shapesClassifier(classes: 40, kind: .robust)]
    let vggID = ClassifierID("fashion-mnist", .standard, family: "vgg")
    let vgg = Recipe(id: .classifier(vggID), arguments: "--dataset fashion-mnist --arch vgg --width 0.5 --epochs 8 --warmup-steps 100")
    let inverters = ClassifierKind.allCases.map { depthInverters(of: ClassifierID("shapes", $0))[0] } + [fidelityInverter(of: vggID)]
    // The shipped classes study probes the logits only (--invert none); `study classes` without
    // that flag also trains and scores the K = 40 inverters (about 16 minutes more).
    let options: [StudyName: [String]] = [.depth: [], .classes: ["--invert", "none"], .architecture: []]
    let studies = StudyName.allCases.map { study in
      Recipe(id: .study(study), arguments: ["--models", "{models}"] + options[study]!, subcommand: ["study", study.rawValue])
    }
    return classes + [vgg] + inverters + studies
  }()

  /// The shipped Shapes classifier recipe scaled to `classes` (only the data set changes):
  /// ResNet-20 at half width, 6 epochs; the robust one PGD-7 at ε = 8/255 on 30000 images.
  /// `options` adds Shapes options (train=N,test=N) to its data set.
  static func shapesClassifier(classes: Int, kind: ClassifierKind, options: String? = nil) -> Recipe {
    let settings = (classes == 10 ? [] : ["classes=\(classes)"]) + (options.map { [$0] } ?? [])
    let dataset = settings.isEmpty ? "shapes" : "shapes:" + settings.joined(separator: ",")
    let robust = kind == .robust ? " --train-count 30000" : ""
    let attack = kind == .robust ? " --adversarial linf:8/255" : ""
    return Recipe(id: .classifier(ClassifierID("shapes", kind, classes: classes)),
                  arguments: "--dataset \(dataset) --arch resnet20 --width 0.5 --epochs 6\(robust) --warmup-steps 100\(attack)")
  }

  /// The fidelity inverter of `classifier` (of its logits, or of the feature map `layer`): the
  /// shipped fidelity recipe for its data set.
  static func fidelityInverter(of classifier: ClassifierID, layer: String? = nil, seed: Int? = nil) -> Recipe {
    let representation = layer.map { " --representation features:\($0)" } ?? ""
    let seeded = seed.map { " --seed \($0)" } ?? ""
    return Recipe(id: .inverter(InverterID(of: classifier, .fidelity, layer: layer, seed: seed)),
                  arguments: "--classifier {models}/\(ModelID.classifier(classifier).folder) --preset fidelity\(representation) \(fidelityTraining(classifier.dataset))\(seeded)")
  }

  /// The inverters the depth study scores for a classifier: of its pooled features, and of its logits.
  static func depthInverters(of classifier: ClassifierID) -> [Recipe] {
    [fidelityInverter(of: classifier, layer: "pool"), fidelityInverter(of: classifier)]
  }

  /// The fidelity inverters' training length and rates, beside the preset's losses. Every
  /// inverter gets the same budget, 1500 steps: the BigGAN generator with the fidelity terms and
  /// DeePSiM's decoder then train for about the same time on 2 cores (docs/SCIENCE.md, "The
  /// fidelity recipe"). On Shapes the generator's rate is 1e-3 and its seed takes the
  /// representation (docs/SCIENCE.md, "Second round of trials").
  static func fidelityTraining(_ dataset: String) -> String {
    dataset == "shapes" ? "--steps 1500 --g-lr 0.001 --seed-input noise+representation" : "--steps 1500 --g-lr 0.0002"
  }

  /// The catalogue's classifier whose folder is `classifiers/NAME`, or one outside the catalogue
  /// by that name (a user's own, which the studies can still invert with the fidelity recipe).
  static func classifierID(named name: String) -> ClassifierID {
    for recipe in all {
      if case .classifier(let id) = recipe.id, id.name == name { return id }
    }
    return .named(name)
  }

  /// The recipes called `names` (all when empty), or an error naming the unknown ones.
  static func select(_ names: [String]) throws -> [Recipe] {
    guard !names.isEmpty else { return all }
    let groups: [String: [Recipe]] = ["classifiers": classifiers, "inverters": inverters, "studies": studies, "beyond": beyond]
    var chosen: [Recipe] = []
    for name in names {
      if let group = groups[name] { chosen += group; continue }
      guard let recipe = all.first(where: { $0.name == name }) else {
        throw ValidationError("no shipped model called '\(name)'; `afterimage models list` names them (or use 'classifiers', 'inverters', 'studies')")
      }
      chosen.append(recipe)
    }
    return chosen
  }

  /// Trains `recipes` into `models`, in order, each through its own command (so each run's
  /// config.json records the command that made it). Returns the seconds each took.
  @discardableResult
  static func train(_ recipes: [Recipe], models: String, threads: Int? = nil, device: String? = nil) throws -> [(Recipe, Double)] {
    var times: [(Recipe, Double)] = []
    for recipe in recipes {
      var words = recipe.commandLine(models: models)
      // A seed study takes no --threads (it sets none), the factor regressor no --device (it trains on the CPU).
      if let threads, recipe.kind != .study || recipe.subcommand != nil { words += ["--threads", String(threads)] }
      if let device, recipe.kind != .factorRegressor { words += ["--device", device] }
      let folder = recipe.id.path(in: models)
      try? FileManager.default.removeItem(atPath: folder)
      print("== \(recipe.name): afterimage \(words.joined(separator: " "))")
      let start = Date()
      var command = try AfterimageCommand.parseAsRoot(words)
      recordedCommandLine = ["afterimage"] + words
      defer { recordedCommandLine = nil }
      try command.run()
      // The shipped run keeps its weights and its record; the optimizer state stays out
      // (resuming a finished shipped model is not a use case, and it doubles the size).
      if recipe.kind == .inverter { try? FileManager.default.removeItem(atPath: "\(folder)/checkpoint.safetensors") }
      times.append((recipe, Date().timeIntervalSince(start)))
    }
    return times
  }
}

private extension Recipe {
  init(id: ModelID, arguments: String) {
    self.init(id: id, arguments: arguments.split(separator: " ").map(String.init))
  }
}

/// `afterimage models …`: the shipped models and the commands that made them.
struct ModelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "models", abstract: "List the shipped models (with the command that trained each) or retrain them.",
    subcommands: [ModelsList.self, ModelsTrain.self])
}

struct ModelsList: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "list", abstract: "Each shipped model: present or not, size, and the command that trains it.")
  @Option(help: "The models folder.") var models = "models"

  func run() throws {
    for recipe in Recipes.all {
      let weights = "\(models)/\(recipe.folder)/\(recipe.product)"
      let size = (try? FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int) ?? nil
      let state = size.map { String(format: "%7.2f MB", Double($0) / 1e6) } ?? "  missing "
      print("\(recipe.name.padding(toLength: 32, withPad: " ", startingAt: 0)) \(state)  afterimage \(recipe.commandLine(models: models).joined(separator: " "))")
    }
  }
}

struct ModelsTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Retrain shipped models from scratch with their recorded commands (all: about 3 hours on 2 cores).")
  @Argument(help: "Models to train (names from `models list`, or 'classifiers', 'inverters', 'studies', 'beyond'; default: all).") var names: [String] = []
  @Option(help: "The models folder to write (inverters read their classifiers from it).") var models = "models"
  @Option(help: "Threads (default: all cores).") var threads: Int?
  @Flag(help: "Check and print each command without training anything.") var dryRun = false
  @OptionGroup var compute: DeviceOptions

  func run() throws {
    let chosen = try Recipes.select(names)
    if dryRun {
      for recipe in chosen {
        let words = recipe.commandLine(models: models)
        _ = try AfterimageCommand.parseAsRoot(words)  // the options parse and validate
        print("afterimage \(words.joined(separator: " "))")
      }
      return
    }
    _ = try compute.resolved()  // refused before the first recipe starts
    for (recipe, seconds) in try Recipes.train(chosen, models: models, threads: threads, device: compute.device) {
      print(String(format: "%@ took %@", recipe.name, ProgressBar.clock(seconds)))
    }
  }
}
