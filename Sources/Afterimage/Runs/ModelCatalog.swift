import Foundation

// What a shipped model is, as a value: its data set and its role. Its folder under the models
// folder follows from that, so code asks a `ModelID` for a path and never reads a path to learn
// what a model is. `afterimage models` keys every recipe by one (Sources/afterimage/ShippedModels.swift).

/// How a classifier was trained: on clean images, or adversarially (Madry's PGD training).
public enum ClassifierKind: String, CaseIterable, Codable, Sendable {
  case standard, robust
}

/// A classifier under `classifiers/`: a shipped one, described by its data set, kind, class count
/// and family, or one a user names by its folder.
public struct ClassifierID: Hashable, Sendable {
  public var dataset: String
  public var kind: ClassifierKind
  /// The Shapes glyph classes when not the data set's default of 10.
  public var classes: Int?
  /// The family when not the shipped ResNet-20 (`vgg`).
  public var family: String?
  /// The folder name of a classifier outside the catalogue (`study architecture --classifier mine`).
  public private(set) var folderName: String?

  public init(_ dataset: String, _ kind: ClassifierKind, classes: Int? = nil, family: String? = nil) {
    self.dataset = dataset
    self.kind = kind
    self.classes = classes == 10 ? nil : classes
    self.family = family
  }

  /// The classifier in `classifiers/NAME`, whatever it is.
  public static func named(_ name: String) -> ClassifierID {
    var id = ClassifierID("", .standard)
    id.folderName = name
    return id
  }

  /// Its name without the data set, as the tables label it: `standard`, `40-robust`, `vgg`.
  public var label: String { folderName ?? ((classes.map { "\($0)-" } ?? "") + (family ?? kind.rawValue)) }

  /// Its folder's name: `shapes-standard`, `shapes-40-robust`, `fashion-mnist-vgg`.
  public var name: String { folderName ?? "\(dataset)-\(label)" }
}

/// An inverter of a classifier: the preset it was trained with, what of the classifier it inverts,
/// and its training seed.
public struct InverterID: Hashable, Sendable {
  public var classifier: ClassifierID
  public var preset: InverterPreset
  /// The feature map it inverts (`pool` for `--representation features:pool`); nil: the logits.
  public var layer: String?
  /// The training seed when not 0.
  public var seed: Int?

  public init(of classifier: ClassifierID, _ preset: InverterPreset, layer: String? = nil, seed: Int? = nil) {
    self.classifier = classifier
    self.preset = preset
    self.layer = layer
    self.seed = seed == 0 ? nil : seed
  }

  /// Its name without the data set, as the demo's tables label it: `standard-fidelity`,
  /// `robust-paper`, `standard-pool-fidelity`.
  public var label: String {
    ([classifier.label] + [layer, preset.rawValue, seed.map { "seed\($0)" }].compactMap { $0 }).joined(separator: "-")
  }

  /// Its folder's name: `shapes-standard-fidelity`, `fashion-mnist-robust-fidelity-seed1`.
  public var name: String {
    ([classifier.name] + [layer, preset.rawValue, seed.map { "seed\($0)" }].compactMap { $0 }).joined(separator: "-")
  }
}

/// The studies whose results are shipped.
public enum StudyName: String, CaseIterable, Sendable {
  case depth, classes, architecture
}

/// A shipped model or result: what it is, and so where it lives under the models folder.
public enum ModelID: Hashable, Sendable {
  case classifier(ClassifierID)
  /// The independent classifier that judges reconstructions of `dataset` (`evaluation`).
  case evaluation(dataset: String)
  case inverter(InverterID)
  /// The ruler that reads the factors off `dataset`'s images (Shapes).
  case factorRegressor(dataset: String)
  /// Standard vs robust over inverter seeds (`analyze seeds`).
  case seedStudy(dataset: String)
  /// A study beyond the paper (`afterimage study NAME`).
  case study(StudyName)

  /// The name `afterimage models list` and `models train NAME` use.
  public var name: String {
    switch self {
    case .classifier(let classifier): return classifier.name
    case .evaluation(let dataset): return "eval-\(dataset)"
    case .inverter(let inverter): return inverter.name
    case .factorRegressor(let dataset): return "\(dataset)-factors"
    case .seedStudy(let dataset): return "\(dataset)-seeds"
    case .study(let study): return "study-\(study.rawValue)"
    }
  }

  /// The folder, relative to the models folder.
  public var folder: String {
    switch self {
    case .classifier(let classifier): return "classifiers/\(classifier.name)"
    case .evaluation(let dataset): return "eval/\(dataset)"
    case .inverter(let inverter): return "inverters/\(inverter.name)"
    case .factorRegressor(let dataset): return "eval/\(dataset)-factors"
    case .seedStudy(let dataset): return "studies/\(dataset)-seeds"
    case .study(let study): return "studies/\(study.rawValue)"
    }
  }

  /// The folder under the models folder `models`.
  public func path(in models: String) -> String { "\(models)/\(folder)" }

  /// The file whose presence means the model is there: its weights, or a study's results.
  public var product: String {
    switch self {
    case .seedStudy, .study: return "results.json"
    default: return "model.safetensors"
    }
  }

  /// Whether it is in `models`.
  public func isPresent(in models: String) -> Bool {
    FileManager.default.fileExists(atPath: "\(path(in: models))/\(product)")
  }
}

/// The shipped catalogue's fixed points: the data sets, and the models the demo, the explorer
/// and the analyses reach for by default.
public enum ShippedModels {
  /// The models folder, relative to the repository's root.
  public static let folder = "models"

  /// The data sets models are shipped for.
  public static let datasets = ["shapes", "fashion-mnist"]

  /// The fidelity inverters of `dataset`'s standard and robust classifiers.
  public static func fidelityInverters(of dataset: String) -> [InverterID] {
    ClassifierKind.allCases.map { InverterID(of: ClassifierID(dataset, $0), .fidelity) }
  }

  /// The factor regressor the Shapes analyses read with (`analyze factors`, `study depth`).
  public static let factorRegressor = ModelID.factorRegressor(dataset: "shapes")
}
