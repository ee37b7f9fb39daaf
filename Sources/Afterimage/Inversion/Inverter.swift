import Foundation
import Torch

/// A trained inverter: the EMA generator of a run, with the classifier whose representation
/// (`config.representation`: its logits, or a pooled feature map) it inverts.
///
///     let inverter = try Inverter.load("models/inverters/shapes-standard-paper")
///     let code = try inverter.represent(images)                      // [B, D]: logits, D = K
///     let images = inverter.reconstruct(representation: code, noise: inverter.noise(count: B, seed: 0))
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
  /// A classifier whose weights differ from those the inverter was trained on (its recorded
  /// digest) is refused unless `allowMismatch`: the reconstructions would answer for another model.
  public static func load(_ path: String, classifierOverride: String? = nil, allowMismatch: Bool = false, device: Device = .cpu) throws -> Inverter {
    let run = RunDirectory(path)
    guard run.exists else {
      throw RunError("no inverter at \(path): expected a run directory with config.json (from afterimage inverter train)")
    }
    let config = try run.readJSON(InverterConfig.self, from: run.configURL)
    let classifierPath = try resolveClassifier(classifierOverride ?? config.classifier, relativeTo: run)
    let classifier = try Classifiers.load(classifierPath, device: device)
    let size = try classifier.representationSize(config.representation)
    guard size == config.representationSize else {
      let what = config.representation == .logits ? "logits" : "values of \(config.representation)"
      throw RunError("the classifier at \(classifierPath) gives \(size) \(what) but the inverter in \(path) was trained on \(config.representationSize)")
    }
    guard classifier.config.channels == config.channels, classifier.config.resolution == config.resolution else {
      throw RunError("the classifier at \(classifierPath) takes \(classifier.config.channels)×\(classifier.config.resolution)² images but the inverter in \(path) makes \(config.channels)×\(config.resolution)² ones: give the classifier it was trained on")
    }
    if let recorded = config.classifierDigest, !allowMismatch {
      let found = try RepresentationCache.weightsDigest(classifierPath, config: classifier.config)
      guard found == recorded else {
        throw RunError("the classifier at \(classifierPath) is not the one the inverter in \(path) was trained on (its weights have changed: digest \(found), recorded \(recorded)). Retrain the inverter, point --classifier at the original, or reconstruct anyway with `afterimage inverter reconstruct --allow-mismatch` (the numbers then describe a model the inverter never saw)")
      }
    }
    if config.preprocessing == .standardized && (config.representationMean.count != config.representationSize || config.representationStd.count != config.representationSize) {
      throw RunError("\(run.configURL.path) standardises the logits but records \(config.representationMean.count) means and \(config.representationStd.count) spreads for \(config.representationSize) logits: the file is damaged; retrain the inverter")
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

  /// A model path recorded in an inverter's config.json (its classifier, its perceptual
  /// network), found from the run directory and each folder above it (a shipped inverter
  /// records `models/classifiers/…`, relative to the repository it was trained in), and only
  /// then from the working directory, so another `models/classifiers/…` where the command runs
  /// is not taken instead. `role` names the model in errors.
  public static func resolveClassifier(_ path: String, relativeTo run: RunDirectory, role: String = "classifier") throws -> String {
    let option = role == "classifier" ? "--classifier" : "a copy of it at that path"
    if path.hasPrefix("/") {
      guard FileManager.default.fileExists(atPath: path) else { throw RunError("the inverter's \(role) \(path) was not found; pass \(option)") }
      return path
    }
    if let found = Self.findUpward(path, from: run) { return found }
    if FileManager.default.fileExists(atPath: path) { return path }
    throw RunError("the inverter's \(role) \(path) was not found (from \(run.url.path) or any folder above it, nor from \(FileManager.default.currentDirectoryPath)); pass \(option)")
  }

  /// `path` taken relative to the run directory, then to each folder above it.
  static func findUpward(_ path: String, from run: RunDirectory) -> String? {
    var folder = run.url.standardized
    while true {
      let candidate = folder.appendingPathComponent(path).standardized.path
      if FileManager.default.fileExists(atPath: candidate) { return candidate }
      let parent = folder.deletingLastPathComponent()
      if parent.path == folder.path { return nil }
      folder = parent
    }
  }

  /// Refuses a data set whose images are not the ones this inverter's classifier takes
  /// (channels, side), before libtorch meets them.
  public func checkAccepts(_ dataset: Dataset) throws {
    let wanted = classifier.config
    guard dataset.channels == wanted.channels, dataset.resolution == wanted.resolution else {
      throw RunError("\(dataset.name) has \(dataset.channels)×\(dataset.resolution)² images; the inverter in \(run.url.path) and its classifier work on \(wanted.channels)×\(wanted.resolution)² ones: choose a data set of that kind")
    }
  }

  /// Refuses `dataset`, opened as `split` of this inverter's own data set, when it no longer
  /// reads as it did when the inverter was trained (`config.data`), unless `allowMismatch`:
  /// scores on it would describe data the inverter never saw. Runs from before the identity was
  /// recorded are not checked.
  /// `escapable`: the command has `--allow-mismatch`, and the error says so.
  public func checkOwnData(_ dataset: Dataset, split: Split, allowMismatch: Bool = false, escapable: Bool = true) throws {
    guard let recorded = config.data, !allowMismatch else { return }
    let was = split == .train ? recorded.train : recorded.test
    if let difference = was.difference(from: try DatasetIdentity.of(dataset)) {
      let escape = escapable ? ", or go on anyway with --allow-mismatch (the numbers then describe images it was not trained or scored on)" : ""
      throw RunError("the \(split) split of \(config.dataset) has changed since the inverter in \(run.url.path) was trained (\(difference)). Restore the data or retrain the inverter\(escape)")
    }
  }

  /// Where the generator and the classifier run.
  public var device: Device { classifier.device }

  /// Standard normal noise `[count, noiseSize]` from `seed`, drawn on the CPU (the same on every
  /// device), on the inverter's device.
  public func noise(count: Int, seed: UInt64) -> Tensor {
    Tensor.randn([count, generator.noiseSize], generator: Generator(seed: seed)).to(device)
  }

  /// What this inverter reconstructs from: the classifier's representation of `images [B, C,
  /// H, W]` in [0, 1], `[B, D]` (logits: D = K), without gradients.
  public func represent(_ images: Tensor) throws -> Tensor {
    try withNoGrad { try classifier.represent(images, as: config.representation) }
  }

  /// Images `[B, C, R, R]` in [0, 1] reconstructed from a raw `representation [B, D]` (for a
  /// logit inverter, the classifier's logits), on the inverter's device.
  public func reconstruct(representation: Tensor, noise: Tensor) -> Tensor {
    withNoGrad {
      let images = generator(representation: config.preprocess(representation.to(device)), noise: noise.to(device))  // (−1, 1)
      return (images + 1) / 2
    }
  }

  /// Reconstructions of `images` (in [0, 1]) through the classifier's representation.
  public func reconstruct(images: Tensor, noise: Tensor) throws -> Tensor {
    reconstruct(representation: try represent(images), noise: noise)
  }
}
