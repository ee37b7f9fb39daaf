import Foundation
import Torch

/// The demo's study: on the shipped models of each data set, every inverter side by side, then
/// standard vs robust classifier on the paper's findings. A list of experiments, run through
/// `ExperimentRunner`; the headline is read from their typed results.
public struct DemoPlan {
  public struct Step {
    public let title: String
    public let dataset: String
    /// Whose classifier it inverts (nil: the side-by-side table, every inverter).
    public let classifier: ClassifierKind?
    public let folder: String
    public let experiment: any Experiment
    /// The side-by-side table's inverters, in the order of its rows (before the optimisation row).
    public var inverters: [InverterID] = []
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
  public static let datasets = ShippedModels.datasets

  /// The inverters compared, in the headline's order: standard vs robust, fidelity vs the
  /// paper's preset, then the baselines.
  public static let compared: [(ClassifierKind, InverterPreset)] = [
    (.standard, .fidelity), (.robust, .fidelity), (.standard, .paper), (.robust, .paper), (.standard, .upconv), (.standard, .deepsim),
  ]

  /// The L∞ radius of the adversarial experiment: Shapes' colours and edges survive 8/255
  /// (the paper's CIFAR radius); Fashion-MNIST's classifiers are trained robust at 0.1.
  public static func adversarialEpsilon(for dataset: String) -> String { dataset == "shapes" ? "8/255" : "0.1" }

  public init(models: String, out: String, count: Int, optimizeSteps: Int) {
    self.models = models
    self.out = out
    self.count = count
    self.optimizeSteps = optimizeSteps
  }

  /// Where `id` is in the models folder.
  func path(_ id: ModelID) -> String { id.path(in: models) }
  func inverter(_ data: String, _ kind: ClassifierKind, _ preset: InverterPreset) -> InverterID { InverterID(of: ClassifierID(data, kind), preset) }

  /// Adds the experiments for `data`; throws when a model the headline needs is missing.
  public mutating func add(dataset data: String) throws {
    let required: [ModelID] = ClassifierKind.allCases.map { .classifier(ClassifierID(data, $0)) } + [.evaluation(dataset: data)]
      + ShippedModels.fidelityInverters(of: data).map { .inverter($0) }
    let missing = required.filter { !$0.isPresent(in: models) }
    guard missing.isEmpty else {
      throw RunError("the demo needs the shipped models; missing in \(models): \(missing.map(\.folder).joined(separator: ", ")). Run it from the repository's root, pass --models DIR, retrain one with `afterimage models train NAME`, or everything with `afterimage demo --train`")
    }
    let evaluation = path(.evaluation(dataset: data))
    let compared = Self.compared.map { inverter(data, $0.0, $0.1) }
    let present = compared.filter { ModelID.inverter($0).isPresent(in: models) }
    for id in compared where !present.contains(id) {
      notes.append("note: \(path(.inverter(id))) is not there; the demo leaves it out (`afterimage models train \(ModelID.inverter(id).name)` trains it)")
    }
    var compare = CompareExperiment(
      inverters: present.map { path(.inverter($0)) }, optimize: optimizeSteps > 0 ? path(.classifier(ClassifierID(data, .standard))) : nil, evaluation: evaluation)
    compare.count = count
    compare.optimizeSteps = optimizeSteps
    compare.overview = (shown: ShippedModels.fidelityInverters(of: data).map { path(.inverter($0)) },
                        baselines: [InverterPreset.upconv, .deepsim].map { path(.inverter(inverter(data, .standard, $0))) })
    var table = Step(title: "\(data): every inverter on the same \(count) held-out images", dataset: data, classifier: nil, folder: "\(out)/\(data)-compare", experiment: compare)
    table.inverters = present
    steps.append(table)
    for kind in ClassifierKind.allCases {
      let model = path(.inverter(inverter(data, kind, .fidelity)))
      func step(_ name: String, _ title: String, _ experiment: any Experiment) {
        steps.append(Step(title: "\(data), \(kind) classifier: \(title)", dataset: data, classifier: kind, folder: "\(out)/\(data)-\(name)-\(kind)", experiment: experiment))
      }
      func images(_ count: Int) -> HeldOutImages { HeldOutImages(inverter: model, evaluation: evaluation, count: count) }
      if data == "shapes" {
        var factors = FactorExperiment(inverter: model)
        (factors.count, factors.trainCount, factors.epochs) = (count * 5 / 2, count * 25, 3)
        // The shipped regressor when it is there (its ceiling was measured on 1000 originals);
        // else one is trained here, briefly (a note says so).
        let regressor = path(ShippedModels.factorRegressor)
        if FileManager.default.fileExists(atPath: FactorRegressor.recordURL(in: RunDirectory(regressor)).path) {
          factors.regressor = regressor
        } else if kind == .standard {
          notes.append("note: \(regressor) is not there; the factor experiments train a small regressor of their own (`afterimage models train \(ShippedModels.factorRegressor.name)` makes the shipped one)")
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
      let folder = path(.seedStudy(dataset: data))
      guard FileManager.default.fileExists(atPath: "\(folder)/results.json") else { return nil }
      guard let study = try StoredExperiment(folder: URL(fileURLWithPath: folder)).result as? SeedStudyResult else {
        throw RunError("\(folder)/results.json is not a seed study (`afterimage analyze seeds` writes one)")
      }
      return (data, folder, study)
    }
  }

  /// The shipped studies beyond the paper (`afterimage study depth|classes|architecture`), read
  /// from `models/studies/NAME` when there: the demo shows their figures and tables as stored.
  public func storedBeyondStudies() throws -> [(study: StudyName, folder: String, result: any ExperimentResult)] {
    try StudyName.allCases.compactMap { study in
      let folder = path(.study(study))
      guard FileManager.default.fileExists(atPath: "\(folder)/results.json") else { return nil }
      return (study, folder, try StoredExperiment(folder: URL(fileURLWithPath: folder)).result)
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
