import Afterimage
import ArgumentParser
import Foundation
import Torch

/// One shipped model: where it lives under the models folder and the command that trains it.
/// This table is the single record of how every shipped weight file was made; `afterimage
/// models train`, `afterimage demo --train` and scripts/train-* all run it.
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

  let name: String
  let kind: Kind
  /// The run directory, relative to the models folder.
  let folder: String
  /// The sub-command's arguments after `--out DIR`; `{models}` stands for the models folder.
  let arguments: [String]

  /// The words of the command line, e.g. `["classifier", "train", "--out", …]`.
  func commandLine(models: String) -> [String] {
    return kind.subcommand + ["--out", "\(models)/\(folder)"] + arguments.map { $0.replacingOccurrences(of: "{models}", with: models) }
  }
}

enum Recipes {
  static let all: [Recipe] = classifiers + inverters + studies

  /// ResNet-20 at half width; the robust ones are Madry PGD-7 trained at the ε the demo attacks with.
  static let classifiers: [Recipe] = [
    Recipe(name: "shapes-standard", kind: .classifier, folder: "classifiers/shapes-standard",
           arguments: "--dataset shapes --arch resnet20 --width 0.5 --epochs 6 --warmup-steps 100"),
    Recipe(name: "shapes-robust", kind: .classifier, folder: "classifiers/shapes-robust",
           arguments: "--dataset shapes --arch resnet20 --width 0.5 --epochs 6 --train-count 30000 --warmup-steps 100 --adversarial linf:8/255"),
    Recipe(name: "fashion-mnist-standard", kind: .classifier, folder: "classifiers/fashion-mnist-standard",
           arguments: "--dataset fashion-mnist --arch resnet20 --width 0.5 --epochs 8 --warmup-steps 100"),
    Recipe(name: "fashion-mnist-robust", kind: .classifier, folder: "classifiers/fashion-mnist-robust",
           arguments: "--dataset fashion-mnist --arch resnet20 --width 0.5 --epochs 4 --train-count 40000 --warmup-steps 100 --adversarial linf:0.1"),
    Recipe(name: "eval-shapes", kind: .evaluation, folder: "eval/shapes",
           arguments: "--dataset shapes --arch evalnet --width 0.5 --epochs 4 --warmup-steps 100 --seed 1"),
    Recipe(name: "eval-fashion-mnist", kind: .evaluation, folder: "eval/fashion-mnist",
           arguments: "--dataset fashion-mnist --arch evalnet --width 0.5 --epochs 6 --warmup-steps 100 --seed 1"),
  ]

  /// BigGAN inverters (fidelity and the paper's preset) of every shipped classifier, and the
  /// up-convolutional baselines of the standard ones. ch 16, batch 64, 32×32. The perceptual
  /// terms use the inverted classifier's own features, so the evaluation classifier stays
  /// independent.
  static let inverters: [Recipe] = {
    /// The inverter of `data`'s `kind` classifier trained with `preset` (the decoder for the
    /// up-convolutional presets).
    func inverter(_ data: String, _ kind: String, _ preset: String) -> Recipe {
      let arch = ["upconv", "deepsim"].contains(preset) ? " --arch upconv" : ""
      // Every inverter gets the same budget: 1500 steps, about 8 minutes on 2 cores for the
      // BigGAN generator with the fidelity terms (200 images/s) and for DeePSiM's decoder (205).
      let training = preset == "fidelity" ? " " + fidelityTraining : " --steps 1500"
      return Recipe(name: "\(data)-\(kind)-\(preset)", kind: .inverter, folder: "inverters/\(data)-\(kind)-\(preset)",
                    arguments: "--classifier {models}/classifiers/\(data)-\(kind)\(arch) --preset \(preset)" + training)
    }
    let datasets = ["fashion-mnist", "shapes"]
    // In training order: the fidelity inverters first (the demo's main comparison), then the
    // quick pixel-loss baseline, the paper's preset, and DeePSiM.
    return datasets.flatMap { data in ["standard", "robust"].map { inverter(data, $0, "fidelity") } }
      + datasets.map { inverter($0, "standard", "upconv") }
      + datasets.flatMap { data in ["standard", "robust"].map { inverter(data, $0, "paper") } }
      + datasets.map { inverter($0, "standard", "deepsim") }
  }()

  /// The Shapes factor regressor (the ruler of factor recovery), the Fashion-MNIST fidelity
  /// inverters of two more seeds, and the seed study that scores all six on 1000 images: what
  /// costs more than the demo may spend, computed once and shown by the demo.
  static let studies: [Recipe] = {
    let seeds = [1, 2]
    func seeded(_ kind: String, _ seed: Int) -> Recipe {
      Recipe(name: "fashion-mnist-\(kind)-fidelity-seed\(seed)", kind: .inverter, folder: "inverters/fashion-mnist-\(kind)-fidelity-seed\(seed)",
             arguments: "--classifier {models}/classifiers/fashion-mnist-\(kind) --preset fidelity \(fidelityTraining) --seed \(seed)")
    }
    func folders(_ kind: String) -> String {
      (["{models}/inverters/fashion-mnist-\(kind)-fidelity"] + seeds.map { "{models}/inverters/fashion-mnist-\(kind)-fidelity-seed\($0)" }).joined(separator: " ")
    }
    return [
      Recipe(name: "shapes-factors", kind: .factorRegressor, folder: "eval/shapes-factors",
             arguments: "--train-count 30000 --epochs 20 --width 0.5"),
    ] + ["standard", "robust"].flatMap { kind in seeds.map { seeded(kind, $0) } } + [
      Recipe(name: "fashion-mnist-seeds", kind: .study, folder: "studies/fashion-mnist-seeds",
             arguments: "--standard \(folders("standard")) --robust \(folders("robust")) --evaluation {models}/eval/fashion-mnist --count 1000"),
    ]
  }()

  /// The fidelity inverters' training length and rates, beside the preset's losses.
  static let fidelityTraining = "--steps 1500 --g-lr 0.0002"

  /// The recipes called `names` (all when empty), or an error naming the unknown ones.
  static func select(_ names: [String]) throws -> [Recipe] {
    guard !names.isEmpty else { return all }
    let groups: [String: [Recipe]] = ["classifiers": classifiers, "inverters": inverters, "studies": studies]
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
      if let threads, recipe.kind != .study { words += ["--threads", String(threads)] }
      if let device, recipe.kind != .factorRegressor { words += ["--device", device] }
      let folder = "\(models)/\(recipe.folder)"
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
  init(name: String, kind: Kind, folder: String, arguments: String) {
    self.init(name: name, kind: kind, folder: folder, arguments: arguments.split(separator: " ").map(String.init))
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
      let weights = "\(models)/\(recipe.folder)/model.safetensors"
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
  @Argument(help: "Models to train (names from `models list`, or 'classifiers', 'inverters'; default: all).") var names: [String] = []
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
