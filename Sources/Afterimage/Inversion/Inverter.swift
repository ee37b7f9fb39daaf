import Foundation
import Torch

/// A trained inverter: the EMA generator of a run, with the classifier whose logits it inverts.
///
///     let inverter = try Inverter.load("models/inverters/shapes-standard-paper")
///     let logits = try inverter.classifier.logits(images)            // [B, K]
///     let images = inverter.reconstruct(logits: logits, noise: inverter.noise(count: B, seed: 0))
public final class Inverter {
  public let config: InverterConfig
  public let generator: any ImageGenerator
  public let classifier: any ImageClassifier
  public let run: RunDirectory

  init(config: InverterConfig, generator: any ImageGenerator, classifier: any ImageClassifier, run: RunDirectory) {
    self.config = config
    self.generator = generator
    self.classifier = classifier
    self.run = run
  }

  /// Loads the inverter in `path` (a run directory) and its classifier. The classifier is found
  /// at the path recorded in config.json, taken relative to the current folder, then to the run's.
  public static func load(_ path: String, classifierOverride: String? = nil, device: Device = .cpu) throws -> Inverter {
    let run = RunDirectory(path)
    guard run.exists else {
      throw RunError("no inverter at \(path): expected a run directory with config.json (from afterimage inverter train)")
    }
    let config = try run.readJSON(InverterConfig.self, from: run.configURL)
    let classifierPath = try resolveClassifier(classifierOverride ?? config.classifier, relativeTo: run)
    let classifier = try Classifiers.load(classifierPath, device: device)
    guard classifier.config.classCount == config.logitCount else {
      throw RunError("the classifier at \(classifierPath) gives \(classifier.config.classCount) logits but the inverter in \(path) was trained on \(config.logitCount)")
    }
    let generator = try config.makeGenerator()
    let weights = try Safetensors.read(run.modelURL)
    do {
      try generator.loadStateDict(weights.dictionary)
    } catch let error as TorchError {
      throw RunError("\(run.modelURL.path): \(error.message)")
    }
    generator.eval()
    generator.move(to: device)
    // Channels-last convolution weights: oneDNN then runs the generator without layout
    // conversions (reconstruction 1.5× faster at 32×32, benchmarks/README.md). The images it
    // returns hold the same values in channels-last order.
    generator.convertToChannelsLast()
    return Inverter(config: config, generator: generator, classifier: classifier, run: run)
  }

  /// The classifier path recorded in an inverter's config.json, found from the working
  /// directory or from the run directory and each folder above it (a shipped inverter records
  /// `models/classifiers/…`, relative to the repository it was trained in).
  static func resolveClassifier(_ path: String, relativeTo run: RunDirectory) throws -> String {
    if FileManager.default.fileExists(atPath: path) { return path }
    guard !path.hasPrefix("/") else {
      throw RunError("the inverter's classifier \(path) was not found; pass --classifier")
    }
    var folder = run.url.standardized
    while true {
      let candidate = folder.appendingPathComponent(path).standardized.path
      if FileManager.default.fileExists(atPath: candidate) { return candidate }
      let parent = folder.deletingLastPathComponent()
      if parent.path == folder.path { break }
      folder = parent
    }
    throw RunError("the inverter's classifier \(path) was not found (from \(FileManager.default.currentDirectoryPath), nor from \(run.url.path) or any folder above it); pass --classifier")
  }

  /// Where the generator and the classifier run.
  public var device: Device { classifier.device }

  /// Standard normal noise `[count, noiseSize]` from `seed`, drawn on the CPU (the same on every
  /// device), on the inverter's device.
  public func noise(count: Int, seed: UInt64) -> Tensor {
    Tensor.randn([count, generator.noiseSize], generator: Generator(seed: seed)).to(device)
  }

  /// Images `[B, C, R, R]` in [0, 1] reconstructed from raw classifier `logits [B, K]`, on the
  /// inverter's device.
  public func reconstruct(logits: Tensor, noise: Tensor) -> Tensor {
    withNoGrad {
      let images = generator(logits: config.preprocess(logits.to(device)), noise: noise.to(device))  // (−1, 1)
      return (images + 1) / 2
    }
  }

  /// Reconstructions of `images` (in [0, 1]) through the classifier's logits.
  public func reconstruct(images: Tensor, noise: Tensor) throws -> Tensor {
    let logits = try withNoGrad { try classifier.logits(images) }
    return reconstruct(logits: logits, noise: noise)
  }
}
