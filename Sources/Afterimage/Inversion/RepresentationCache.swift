import Foundation
import Torch

/// The frozen classifier's representation (`Representation`: its logits or a pooled feature map)
/// of a whole (un-augmented) data set, computed once and kept in a safetensors file keyed by a
/// digest of the classifier's weights, the representation and the data set, instead of a
/// classifier forward pass on every training step.
public enum RepresentationCache {
  /// Where cache files live: `$AFTERIMAGE_CACHE`, else `~/.cache/afterimage`.
  public static var directory: URL {
    if let path = ProcessInfo.processInfo.environment["AFTERIMAGE_CACHE"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/afterimage")
  }

  /// A 64-bit FNV-1a digest, as 16 hex digits.
  public static func digest(_ parts: [Data]) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for part in parts {
      for byte in part {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01B3
      }
      hash ^= 0xFF
      hash &*= 0x100_0000_01B3
    }
    return String(format: "%016llx", hash)
  }

  /// The digest of a classifier: its weights file (or TorchScript file) and its config.
  static func classifierDigest(_ classifierPath: String, config: ClassifierConfig) throws -> String {
    digest([try weightsData(classifierPath, config: config), Data(try config.jsonString().utf8)])
  }

  /// The digest of a classifier's weights file (or TorchScript file) alone: what an inverter
  /// records of the classifier it was trained on.
  public static func weightsDigest(_ classifierPath: String, config: ClassifierConfig) throws -> String {
    digest([try weightsData(classifierPath, config: config)])
  }

  static func weightsData(_ classifierPath: String, config: ClassifierConfig) throws -> Data {
    let root = URL(fileURLWithPath: classifierPath)
    var isDirectory: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory)
    let weights = isDirectory.boolValue
      ? root.appendingPathComponent(config.torchscriptFile ?? "model.safetensors") : root
    do {
      return try Data(contentsOf: weights, options: .alwaysMapped)
    } catch {
      throw RunError("cannot read the classifier's weights \(weights.path): \(FileErrors.describe(error))")
    }
  }

  /// `representation` `[N, D]` (float32) of `classifier` for every example of `dataset`, from
  /// the cache when present, else computed (in evaluation mode, without gradients) and stored.
  public static func values(
    of representation: Representation = .logits, classifier: any ImageClassifier, classifierPath: String, dataset: Dataset,
    datasetKey: String, progress: Bool = true
  ) throws -> Tensor {
    // The first images' bytes go into the key too, so that a change in how a data set is read
    // or drawn (not only in its name) makes a new cache entry instead of reusing stale values.
    let fingerprint = try dataset.batch(at: Array(0..<min(8, dataset.count))).images.rawBytes()
    // Logits keep the key they had before representations (their caches stay valid).
    let layer = representation == .logits ? "" : "|\(representation)"
    let key = digest([Data(try classifierDigest(classifierPath, config: classifier.config).utf8),
                      Data("\(datasetKey)|\(dataset.count)|\(dataset.resolution)\(layer)".utf8), Data(fingerprint)])
    let url = url(key: key, representation: representation)
    let size = try classifier.representationSize(representation)
    if let cached = try? Safetensors.read(url), let values = try? cached.tensor("logits"), values.shape == [dataset.count, size] {
      return values
    }
    let wasTraining = classifier.isTraining
    try classifier.train(false)
    defer { try? classifier.train(wasTraining) }
    var pieces: [Tensor] = []
    let bar = progress ? ProgressBar(total: dataset.count, label: "caching \(representation.label)", unit: "img") : nil
    let batches = DataLoader(dataset, batchSize: 500, shuffle: false).epoch(0).makeIterator()
    var done = 0
    while let batch = batches.next() {
      // Cached on the CPU (the file), whatever the classifier's device.
      pieces.append(try withNoGrad { try classifier.represent(batch.images, as: representation).to(.cpu, dtype: .float32) })
      done += batch.labels.count
      bar?.update(done)
    }
    if let error = batches.error { throw error }
    let values = Tensor.cat(pieces, dim: 0)  // [N, D]
    // A cache that cannot be written (read-only home) only costs recomputation next time.
    try? Safetensors.write(
      [("logits", values)], metadata: ["dataset": datasetKey, "classifier": classifierPath, "representation": representation.description], to: url)
    return values
  }

  /// The cache file of `key`: `logits-KEY.safetensors`, or `features-KEY.safetensors`.
  static func url(key: String, representation: Representation) -> URL {
    directory.appendingPathComponent("\(representation == .logits ? "logits" : "features")-\(key).safetensors")
  }
}
