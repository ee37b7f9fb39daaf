import Foundation
import Torch

/// The demo's study: on the shipped models of each data set, every inverter side by side, then
/// standard vs robust classifier on the paper's findings. A list of experiments, run through
/// `ExperimentRunner`; the headline is read from their typed results.
public struct DemoPlan {
  public struct Step {
    public let title: String
    public let dataset: String
    /// "all" (the side-by-side table), "standard" or "robust": whose classifier it inverts.
    public let classifier: String
    public let folder: String
    public let experiment: any Experiment
  }

  /// The shipped models' folder (classifiers/, eval/, inverters/).
  public let models: String
  public let out: String
  /// Held-out images of the side-by-side table; the other experiments scale with it.
  public let count: Int
  /// Steps of the optimisation baseline (0: left out).
  public let optimizeSteps: Int
  public private(set) var steps: [Step] = []
  /// What the plan left out, for the user.
  public private(set) var notes: [String] = []

  /// The data sets models are shipped for.
  public static let datasets = ["shapes", "fashion-mnist"]

  /// The inverters compared, in the headline's order: standard vs robust, fidelity vs the
  /// paper's preset, then the baselines.
  public static let inverterKinds = ["standard-fidelity", "robust-fidelity", "standard-paper", "robust-paper", "standard-upconv", "standard-deepsim"]

  /// The L∞ radius of the adversarial experiment: Shapes' colours and edges survive 8/255
  /// (the paper's CIFAR radius); Fashion-MNIST's classifiers are trained robust at 0.1.
  public static func adversarialEpsilon(for dataset: String) -> String { dataset == "shapes" ? "8/255" : "0.1" }

  public init(models: String, out: String, count: Int, optimizeSteps: Int) {
    self.models = models
    self.out = out
    self.count = count
    self.optimizeSteps = optimizeSteps
  }

  func inverter(_ data: String, _ kind: String) -> String { "\(models)/inverters/\(data)-\(kind)" }

  /// Adds the experiments for `data`; throws when a model the headline needs is missing.
  public mutating func add(dataset data: String) throws {
    let required = ["classifiers/\(data)-standard", "classifiers/\(data)-robust", "eval/\(data)", "inverters/\(data)-standard-fidelity", "inverters/\(data)-robust-fidelity"]
    let missing = required.filter { !FileManager.default.fileExists(atPath: "\(models)/\($0)/model.safetensors") }
    guard missing.isEmpty else {
      throw RunError("the demo needs the shipped models; missing in \(models): \(missing.joined(separator: ", ")). Run it from the repository's root, pass --models DIR, retrain one with `afterimage models train NAME`, or everything with `afterimage demo --train`")
    }
    let evaluation = "\(models)/eval/\(data)"
    let present = Self.inverterKinds.filter { FileManager.default.fileExists(atPath: "\(inverter(data, $0))/model.safetensors") }
    for kind in Self.inverterKinds where !present.contains(kind) {
      notes.append("note: \(inverter(data, kind)) is not there; the demo leaves it out (`afterimage models train \(data)-\(kind)` trains it)")
    }
    var compare = CompareExperiment(
      inverters: present.map { inverter(data, $0) }, optimize: optimizeSteps > 0 ? "\(models)/classifiers/\(data)-standard" : nil, evaluation: evaluation)
    compare.count = count
    compare.optimizeSteps = optimizeSteps
    compare.overview = (shown: ["standard-fidelity", "robust-fidelity"].map { inverter(data, $0) },
                        baselines: ["standard-upconv", "standard-deepsim"].map { inverter(data, $0) })
    steps.append(Step(title: "\(data): every inverter on the same \(count) held-out images", dataset: data, classifier: "all", folder: "\(out)/\(data)-compare", experiment: compare))
    for kind in ["standard", "robust"] {
      let model = inverter(data, "\(kind)-fidelity")
      func step(_ name: String, _ title: String, _ experiment: any Experiment) {
        steps.append(Step(title: "\(data), \(kind) classifier: \(title)", dataset: data, classifier: kind, folder: "\(out)/\(data)-\(name)-\(kind)", experiment: experiment))
      }
      func images(_ count: Int) -> HeldOutImages { HeldOutImages(inverter: model, evaluation: evaluation, count: count) }
      if data == "shapes" {
        var factors = FactorExperiment(inverter: model)
        (factors.count, factors.trainCount, factors.epochs) = (count * 5 / 2, count * 25, 3)
        // The shipped regressor when it is there (its ceiling was measured on 1000 originals);
        // else one is trained here, briefly (a note says so).
        let regressor = "\(models)/eval/shapes-factors"
        if FileManager.default.fileExists(atPath: FactorRegressor.recordURL(in: RunDirectory(regressor)).path) {
          factors.regressor = regressor
        } else if kind == "standard" {
          notes.append("note: \(regressor) is not there; the factor experiments train a small regressor of their own (`afterimage models train shapes-factors` makes the shipped one)")
        }
        step("factors", "which nuisance factors survive in the logits", factors)
      }
      let epsilon = Self.adversarialEpsilon(for: data)
      step("adversarial", "reconstructions of PGD adversarial examples (ε \(epsilon))",
           AdversarialExperiment(images: images(count / 2), attack: try AttackSpec.parse("pgd-linf:\(epsilon)", steps: AdversarialExperiment.defaultSteps)))
      if data == "fashion-mnist" {  // the Shapes classifiers get (nearly) every test image right
        step("misclassified", "reconstructions of misclassified images", MisclassifiedExperiment(images: images(count * 5 / 2)))
      }
      let few = min(64, count)  // the curve experiments reconstruct each image many times
      step("logit-noise", "noise added to the logits", LogitManipulationExperiment(.noise, images: images(few)))
      step("logit-shift", "a constant added to every logit", LogitManipulationExperiment(.shift, images: images(few)))
      step("transforms", "image transformations: followed or ignored", TransformExperiment(images: images(few)))
    }
  }

  /// The side-by-side experiments' overview figures (PNG bytes) by data set, once run.
  public func overviewFigures() -> [String: Data] {
    var figures: [String: Data] = [:]
    for step in steps where step.experiment is CompareExperiment {
      figures[step.dataset] = try? Data(contentsOf: URL(fileURLWithPath: "\(step.folder)/overview.png"))
    }
    return figures
  }

  /// The shipped studies too costly for the demo to run (`analyze seeds` over several inverter
  /// seeds), read from `models/studies/<data set>-seeds` when there: the demo shows them.
  public func storedStudies() throws -> [(dataset: String, folder: String, result: SeedStudyResult)] {
    try Set(steps.map(\.dataset)).sorted().compactMap { data in
      let folder = "\(models)/studies/\(data)-seeds"
      guard FileManager.default.fileExists(atPath: "\(folder)/results.json") else { return nil }
      guard let study = try StoredExperiment(folder: URL(fileURLWithPath: folder)).result as? SeedStudyResult else {
        throw RunError("\(folder)/results.json is not a seed study (`afterimage analyze seeds` writes one)")
      }
      return (data, folder, study)
    }
  }

  /// The shipped studies beyond the paper (`afterimage study depth|classes|architecture`), read
  /// from `models/studies/NAME` when there: the demo shows their figures and tables as stored.
  public func storedBeyondStudies() throws -> [(name: String, folder: String, result: any ExperimentResult)] {
    try ["depth", "classes", "architecture"].compactMap { name in
      let folder = "\(models)/studies/\(name)"
      guard FileManager.default.fileExists(atPath: "\(folder)/results.json") else { return nil }
      return (name, folder, try StoredExperiment(folder: URL(fileURLWithPath: folder)).result)
    }
  }

  /// Runs every step through `runner`, titled on its output; returns the results in step order.
  public func run(with runner: ExperimentRunner) throws -> [any ExperimentResult] {
    try steps.map { step in
      runner.output("\n== \(step.title)")
      return try runner.run(step.experiment, out: step.folder)
    }
  }
}
