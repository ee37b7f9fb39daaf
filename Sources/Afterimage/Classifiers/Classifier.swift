import Foundation
import Torch

/// The architectures Afterimage builds, and the two ways in for a user's own PyTorch model:
/// TorchScript (`torch.jit.trace`/`script`) and an AOTInductor package (`torch.export`, `.pt2`).
public enum ClassifierArchitecture: String, Codable, CaseIterable, Sendable {
  case resnet20, resnet18, resnet50, evalnet, torchscript, pt2
  /// A VGG-style network with batch norm (`VGGNet`): the second family the architecture study compares.
  case vgg
  /// The Shapes factor regressor's network (`FactorNet`): one output per regression target.
  case factornet

  /// Whether the model is a user's file rather than one of Afterimage's architectures.
  public var isImported: Bool { self == .torchscript || self == .pt2 }
  /// Whether Afterimage builds (and trains) the network itself.
  public var isBuilt: Bool { !isImported }
  /// The architectures `classifier train` trains.
  public static var built: [ClassifierArchitecture] { allCases.filter(\.isBuilt) }
}

/// Everything needed to rebuild a classifier (config.json, and the weights file's metadata).
public struct ClassifierConfig: VersionedRecord, Equatable {
  public static let currentSchemaVersion = 1
  /// The channel multiplier when none is given.
  public static let defaultWidth = 1.0

  /// The schema this config is in (written to config.json; see `VersionedRecord`).
  public private(set) var schemaVersion = currentSchemaVersion
  public var architecture: ClassifierArchitecture
  /// Channel multiplier (1 = the published widths).
  public var width: Double
  /// Input images: `channels`×`resolution`×`resolution`, values in [0, 1] before `normalization`.
  public var channels: Int
  public var resolution: Int
  public var classNames: [String]
  /// Applied inside the classifier, so callers always pass images in [0, 1].
  public var normalization: Normalization
  /// The data set it was trained on, as named on the command line.
  public var dataset: String?
  /// For imported classifiers: the TorchScript or .pt2 file, relative to the run directory.
  public var torchscriptFile: String?
  /// How it was trained (nil for imported models).
  public var training: ClassifierTrainingOptions?
  /// The command that produced this run; running it again reproduces the weights.
  public var command: String?

  public init(
    architecture: ClassifierArchitecture, width: Double = defaultWidth, channels: Int, resolution: Int, classNames: [String],
    normalization: Normalization, dataset: String? = nil, torchscriptFile: String? = nil,
    training: ClassifierTrainingOptions? = nil, command: String? = nil
  ) {
    self.architecture = architecture
    self.width = width
    self.channels = channels
    self.resolution = resolution
    self.classNames = classNames
    self.normalization = normalization
    self.dataset = dataset
    self.torchscriptFile = torchscriptFile
    self.training = training
    self.command = command
  }

  enum CodingKeys: String, CodingKey {
    case schemaVersion, architecture, width, channels, resolution, classNames, normalization, dataset, torchscriptFile, training, command
  }

  /// Reads a config of any schema up to the current one; a field the file lacks keeps its default.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.checkSchemaVersion(.schemaVersion, of: Self.self)
    self.init(
      architecture: try c.decode(ClassifierArchitecture.self, forKey: .architecture), channels: try c.decode(Int.self, forKey: .channels),
      resolution: try c.decode(Int.self, forKey: .resolution), classNames: try c.decode([String].self, forKey: .classNames),
      normalization: try c.decode(Normalization.self, forKey: .normalization))
    try c.decodeIfPresent(.width, into: &width)
    dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
    torchscriptFile = try c.decodeIfPresent(String.self, forKey: .torchscriptFile)
    training = try c.decodeIfPresent(ClassifierTrainingOptions.self, forKey: .training)
    command = try c.decodeIfPresent(String.self, forKey: .command)
  }

  public var classCount: Int { classNames.count }

  /// A fresh network of this architecture (not for TorchScript).
  public func makeNetwork(generator: Generator? = nil) throws -> any FeatureNetwork {
    switch architecture {
    case .resnet20:
      return CIFARResNet(blocks: [3, 3, 3], widths: [16, 32, 64], widthMultiplier: width, inputChannels: channels, classes: classCount, generator: generator)
    case .resnet18:
      return CIFARResNet(blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512], widthMultiplier: width, inputChannels: channels, classes: classCount, generator: generator)
    case .resnet50:
      return ResNet50(inputChannels: channels, classes: classCount, widthMultiplier: width, generator: generator)
    case .vgg:
      return VGGNet(inputChannels: channels, classes: classCount, widthMultiplier: width, generator: generator)
    case .evalnet:
      return EvaluationNet(inputChannels: channels, classes: classCount, widthMultiplier: width, generator: generator)
    case .factornet:
      return FactorNet(inputChannels: channels, outputs: classCount, resolution: resolution, widthMultiplier: width, generator: generator)
    case .torchscript, .pt2:
      throw RunError("an imported classifier is loaded from its file, not built")
    }
  }

  /// The config as one line of key-sorted JSON (for safetensors metadata).
  public func jsonString() throws -> String { try JSONFiles.line(self) }
}

/// A classifier whose logits Afterimage inverts: images `[B, C, H, W]` in [0, 1] in, logits out.
public protocol ImageClassifier: AnyObject {
  var config: ClassifierConfig { get }
  /// Logits `[B, K]`. Throws only for user-supplied models (TorchScript) that fail.
  func logits(_ images: Tensor) throws -> Tensor
  /// Feature maps this classifier can return by name: its layers', or for an imported model its
  /// submodules' outputs, named as PyTorch's `named_modules()` names them.
  var featureNames: [String] { get }
  /// The two feature maps a perceptual loss uses when none are named: one early and one a scale
  /// deeper (`layer1`, `layer2` for the ResNets).
  var defaultFeatureLayers: [String] { get }
  /// Whether gradients flow through the classifier to its input (false for compiled packages),
  /// which the logit-consistency and perceptual losses need.
  var isDifferentiable: Bool { get }
  /// Where its weights live; `logits` and `features` move their input there and answer there.
  var device: Device { get }
  /// Moves the weights to `device`.
  func move(to device: Device) throws
  /// Logits and the feature maps named in `names`.
  func features(_ images: Tensor, names: [String]) throws -> (logits: Tensor, features: [String: Tensor])
  /// Training or evaluation mode.
  func train(_ training: Bool) throws
  /// Whether the classifier is in training mode.
  var isTraining: Bool { get }
  /// The trainable network (nil for frozen imported models).
  var network: (any FeatureNetwork)? { get }
}

/// A classifier built from one of Afterimage's architectures.
public final class NetworkClassifier: ImageClassifier {
  public let config: ClassifierConfig
  public let model: any FeatureNetwork
  public var network: (any FeatureNetwork)? { model }

  public init(config: ClassifierConfig, model: any FeatureNetwork) {
    self.config = config
    self.model = model
  }

  /// A freshly initialised classifier.
  public convenience init(config: ClassifierConfig, generator: Generator? = nil) throws {
    self.init(config: config, model: try config.makeNetwork(generator: generator))
  }

  public var featureNames: [String] { model.featureNames }
  public var defaultFeatureLayers: [String] {
    let names = model.featureNames
    if names.contains("layer1") && names.contains("layer2") { return ["layer1", "layer2"] }
    return Array(names.filter { $0 != "stem" && $0 != "pool" }.prefix(2))
  }
  public var isDifferentiable: Bool { true }
  public var isTraining: Bool { model.isTraining }
  public private(set) var device: Device = .cpu

  public func move(to device: Device) {
    model.move(to: device)
    self.device = device
  }

  public func logits(_ images: Tensor) -> Tensor {
    model.forward(config.normalization(images.to(device)), keeping: []).logits
  }

  public func features(_ images: Tensor, names: [String]) throws -> (logits: Tensor, features: [String: Tensor]) {
    let unknown = names.filter { !model.featureNames.contains($0) }
    guard unknown.isEmpty else {
      throw RunError("\(config.architecture.rawValue) has no feature map named \(unknown.joined(separator: ", ")); it has \(model.featureNames.joined(separator: ", "))")
    }
    return model.forward(config.normalization(images.to(device)), keeping: Set(names))
  }

  public func train(_ training: Bool) { model.train(training) }
}

/// A user's PyTorch classifier saved as TorchScript, frozen (evaluation mode, no training).
/// Its submodules' outputs are its feature maps.
public final class TorchScriptClassifier: ImageClassifier {
  public let config: ClassifierConfig
  let module: TorchScriptModule
  public var network: (any FeatureNetwork)? { nil }
  public var isTraining: Bool { false }
  public var isDifferentiable: Bool { true }

  public init(config: ClassifierConfig, module: TorchScriptModule) throws {
    self.config = config
    self.module = module
    try module.train(false)
    // Frozen: gradients flow through it to its input only, never into its weights.
    try module.freezeParameters()
  }

  public var featureNames: [String] { module.submoduleNames }
  public internal(set) var device: Device = .cpu

  public func move(to device: Device) throws {
    guard device != self.device else { return }
    try module.move(to: device)
    self.device = device
  }

  public func logits(_ images: Tensor) throws -> Tensor {
    try module(config.normalization(images.to(device)))
  }

  public func features(_ images: Tensor, names: [String]) throws -> (logits: Tensor, features: [String: Tensor]) {
    guard !names.isEmpty else { return (try logits(images), [:]) }
    let unknown = names.filter { !featureNames.contains($0) }
    guard unknown.isEmpty else {
      let known = featureNames.isEmpty ? "none (a frozen or fully inlined module)" : featureNames.joined(separator: ", ")
      throw RunError("\(module.path) has no submodule output named \(unknown.joined(separator: ", ")); it has \(known)")
    }
    let result = try module.forward([config.normalization(images.to(device))], returning: names)
    return (result.output, result.features)
  }

  /// Chosen once from the shapes of every submodule's output on a probe batch: see `FeatureLayerChoice`.
  public lazy var defaultFeatureLayers: [String] = {
    let probe = Tensor.full([1, config.channels, config.resolution, config.resolution], 0.5, device: device)
    guard let shapes = try? withNoGrad({ try features(probe, names: featureNames).features.mapValues(\.shape) }) else { return [] }
    return FeatureLayerChoice.choose(calls: featureNames, shapes: shapes)
  }()

  public func train(_ training: Bool) throws {
    if training { throw RunError("an imported TorchScript classifier is frozen and cannot be trained") }
  }
}

/// How an imported model's default perceptual layers are picked from its submodules' outputs.
public enum FeatureLayerChoice {
  /// Feature maps `[B, C, H, W]` group by their size H×W; the two largest sizes below the one
  /// where the maps are 1×1 give an early and a deeper scale. At each size the outermost module
  /// (fewest dots in its name) called last wins: the end of a block rather than one of its
  /// convolutions. A model with one spatial size (a vision transformer after its patch
  /// embedding) adds its first outermost token block `[B, T, D]` after that map.
  public static func choose(calls: [String], shapes: [String: [Int]]) -> [String] {
    let maps = calls.filter { shapes[$0]?.count == 4 && (shapes[$0]![2] > 1 || shapes[$0]![3] > 1) }
    let sizes = Array(Set(maps.map { shapes[$0]![2] * shapes[$0]![3] })).sorted(by: >)
    func outermostLast(_ names: [String]) -> String? {
      let depth = names.map { $0.split(separator: ".").count }.min()
      return names.last { $0.split(separator: ".").count == depth }
    }
    var chosen = sizes.prefix(2).compactMap { size in outermostLast(maps.filter { shapes[$0]![2] * shapes[$0]![3] == size }) }
    if chosen.count == 1, let first = calls.firstIndex(of: chosen[0]) {
      let tokens = calls[(first + 1)...].filter { shapes[$0]?.count == 3 }
      let depth = tokens.map { $0.split(separator: ".").count }.min()
      if let block = tokens.first(where: { $0.split(separator: ".").count == depth }) { chosen.append(block) }
    }
    return chosen
  }
}

/// A user's PyTorch 2.x classifier compiled ahead of time (torch.export + AOTInductor, a `.pt2`
/// package): logits only, no gradients, no feature maps. Good for probing, logit caches,
/// reconstruction and the paper preset, whose losses need only the logits of real images.
public final class CompiledPackageClassifier: ImageClassifier {
  public let config: ClassifierConfig
  private(set) var package: CompiledPackage
  public var network: (any FeatureNetwork)? { nil }
  public var isTraining: Bool { false }
  public var featureNames: [String] { [] }
  public var defaultFeatureLayers: [String] { [] }
  public var isDifferentiable: Bool { false }

  public init(config: ClassifierConfig, package: CompiledPackage) {
    self.config = config
    self.package = package
  }

  public private(set) var device: Device = .cpu

  /// A package holds kernels for the device it was compiled for (its metadata says which), and
  /// runs only there: moving it elsewhere is refused. On CUDA, moving picks the GPU.
  public func move(to device: Device) throws {
    guard device != self.device else { return }
    let compiled = package.compiledDevice
    let sameKind: Bool
    switch (compiled, device) {
    case (.cpu, .cpu), (.cuda, .cuda): sameKind = true
    default: sameKind = false
    }
    guard sameKind else {
      throw RunError("\(package.path) was compiled for \(compiled == .cpu ? "the CPU" : "CUDA") and cannot run on \(device): use --device \(compiled == .cpu ? "cpu" : "cuda"), or compile the package again with the model and example input on \(device)")
    }
    do {
      package = try CompiledPackage(contentsOf: package.path, device: device)
    } catch let error as TorchError {
      throw RunError(error.message)
    }
    self.device = device
  }

  public func logits(_ images: Tensor) throws -> Tensor {
    try package(config.normalization(images.to(device)).detached())
  }

  public func features(_ images: Tensor, names: [String]) throws -> (logits: Tensor, features: [String: Tensor]) {
    guard names.isEmpty else {
      throw RunError("\(package.path) is a compiled .pt2 package, which returns only its logits; feature maps (\(names.joined(separator: ", "))) need the model as TorchScript")
    }
    return (try logits(images), [:])
  }

  public func train(_ training: Bool) throws {
    if training { throw RunError("an imported .pt2 classifier is frozen and cannot be trained") }
  }
}

/// Saving and loading classifiers as run directories or single weights files.
public enum Classifiers {
  /// Saves `classifier`'s weights (config in the metadata) to `model.safetensors` and its
  /// config to `config.json` in `run`.
  public static func save(_ classifier: NetworkClassifier, to run: RunDirectory) throws {
    try run.create()
    try run.writeJSON(classifier.config, to: run.configURL)
    try classifier.model.saveWeights(to: run.modelURL, metadata: ["config": try classifier.config.jsonString(), "format": "pt"])
  }

  /// Loads a classifier from a run directory or a `model.safetensors` file, in evaluation mode,
  /// onto `device`.
  ///
  /// A TorchScript module is loaded straight onto the device, so that tensor constants inside
  /// it (which `module.to` would leave behind) move too.
  public static func load(_ path: String, device: Device = .cpu) throws -> any ImageClassifier {
    let classifier = try loadOnto(path, device: device)
    try classifier.move(to: device)
    return classifier
  }

  private static func loadOnto(_ path: String, device: Device) throws -> any ImageClassifier {
    let url = URL(fileURLWithPath: path)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
      throw RunError("no classifier at \(path): give a run directory (with config.json) or a model.safetensors file")
    }
    if isDirectory.boolValue {
      let run = RunDirectory(url: url)
      guard run.exists else {
        throw RunError("\(path) has no config.json: it is not a classifier run directory")
      }
      let config = try run.readJSON(ClassifierConfig.self, from: run.configURL)
      if config.architecture.isImported {
        guard let file = config.torchscriptFile else { throw RunError("\(run.configURL.path) names no torchscriptFile") }
        let format: ImportedModelFormat = config.architecture == .pt2 ? .pt2 : .torchscript
        return try TorchScriptImport.open(url.appendingPathComponent(file).path, format: format, config: config, device: device)
      }
      return try loadWeights(run.modelURL, config: config)
    }
    let file = try Safetensors.read(url)
    guard let text = file.metadata["config"], let data = text.data(using: .utf8),
      let config = try? JSONDecoder().decode(ClassifierConfig.self, from: data)
    else {
      throw RunError("\(path) has no classifier config in its metadata: load its run directory instead")
    }
    return try loadWeights(url, config: config, file: file)
  }

  private static func loadWeights(_ url: URL, config: ClassifierConfig, file: Safetensors.File? = nil) throws -> NetworkClassifier {
    let classifier = try NetworkClassifier(config: config)
    let weights = try file ?? Safetensors.read(url)
    do {
      try classifier.model.loadStateDict(weights.dictionary)
    } catch let error as TorchError {
      throw RunError("\(url.path): \(error.message)")
    }
    classifier.train(false)
    return classifier
  }
}
