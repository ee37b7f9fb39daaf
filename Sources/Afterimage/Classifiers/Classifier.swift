import Foundation
import Torch

/// The architectures Afterimage builds, and TorchScript for a user's own model.
public enum ClassifierArchitecture: String, Codable, CaseIterable, Sendable {
  case resnet20, resnet18, resnet50, evalnet, torchscript
}

/// Everything needed to rebuild a classifier (config.json, and the weights file's metadata).
public struct ClassifierConfig: Codable, Equatable {
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
  /// For TorchScript classifiers: the module file, relative to the run directory.
  public var torchscriptFile: String?
  /// How it was trained (nil for imported models).
  public var training: ClassifierTrainingOptions?
  /// The command that produced this run; running it again reproduces the weights.
  public var command: String?

  public init(
    architecture: ClassifierArchitecture, width: Double = 1, channels: Int, resolution: Int, classNames: [String],
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
    case .evalnet:
      return EvaluationNet(inputChannels: channels, classes: classCount, widthMultiplier: width, generator: generator)
    case .torchscript:
      throw RunError("a TorchScript classifier is loaded from its file, not built")
    }
  }

  /// The config as one line of JSON (for safetensors metadata).
  public func jsonString() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }
}

/// A classifier whose logits Afterimage inverts: images `[B, C, H, W]` in [0, 1] in, logits out.
public protocol ImageClassifier: AnyObject {
  var config: ClassifierConfig { get }
  /// Logits `[B, K]`. Throws only for user-supplied models (TorchScript) that fail.
  func logits(_ images: Tensor) throws -> Tensor
  /// Feature maps this classifier can return by name (empty for TorchScript models).
  var featureNames: [String] { get }
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
  public var isTraining: Bool { model.isTraining }

  public func logits(_ images: Tensor) -> Tensor {
    model.forward(config.normalization(images), keeping: []).logits
  }

  public func features(_ images: Tensor, names: [String]) throws -> (logits: Tensor, features: [String: Tensor]) {
    let unknown = names.filter { !model.featureNames.contains($0) }
    guard unknown.isEmpty else {
      throw RunError("\(config.architecture.rawValue) has no feature map named \(unknown.joined(separator: ", ")); it has \(model.featureNames.joined(separator: ", "))")
    }
    return model.forward(config.normalization(images), keeping: Set(names))
  }

  public func train(_ training: Bool) { model.train(training) }
}

/// A user's PyTorch classifier saved as TorchScript, frozen (evaluation mode, no training).
public final class TorchScriptClassifier: ImageClassifier {
  public let config: ClassifierConfig
  let module: TorchScriptModule
  public var network: (any FeatureNetwork)? { nil }
  public let featureNames: [String] = []
  public var isTraining: Bool { false }

  public init(config: ClassifierConfig, module: TorchScriptModule) throws {
    self.config = config
    self.module = module
    try module.train(false)
  }

  public func logits(_ images: Tensor) throws -> Tensor {
    try module(config.normalization(images))
  }

  public func features(_ images: Tensor, names: [String]) throws -> (logits: Tensor, features: [String: Tensor]) {
    guard names.isEmpty else {
      throw RunError("a TorchScript classifier exposes only its logits; feature maps (\(names.joined(separator: ", "))) need a classifier built by Afterimage")
    }
    return (try logits(images), [:])
  }

  public func train(_ training: Bool) throws {
    if training { throw RunError("an imported TorchScript classifier is frozen and cannot be trained") }
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

  /// Loads a classifier from a run directory or a `model.safetensors` file, in evaluation mode.
  public static func load(_ path: String) throws -> any ImageClassifier {
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
      if config.architecture == .torchscript {
        guard let file = config.torchscriptFile else { throw RunError("\(run.configURL.path) names no torchscriptFile") }
        let module = try TorchScriptModule(contentsOf: url.appendingPathComponent(file).path)
        return try TorchScriptClassifier(config: config, module: module)
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
