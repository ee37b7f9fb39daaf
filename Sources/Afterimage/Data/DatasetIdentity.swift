import Foundation
import Torch

/// What a data set held when a model was trained on it, beyond its name: a `folder:` whose files
/// changed, a Fashion-MNIST replaced by another IDX set, or a Shapes generator whose drawing
/// changed all keep their name, and a model scored on them would answer for data it never saw.
///
/// The digest covers the example count, the class names, the image size, and the pixels and
/// labels of the first and last `sampled` examples (reading every image would cost a pass over
/// the data set at every load).
public struct DatasetIdentity: Codable, Equatable, Sendable {
  public var count: Int
  public var classCount: Int
  /// `RepresentationCache.digest` of the count, the classes, the image size and the sampled examples.
  public var digest: String

  /// Examples read from each end of the data set.
  public static let sampled = 16

  public init(count: Int, classCount: Int, digest: String) {
    self.count = count
    self.classCount = classCount
    self.digest = digest
  }

  /// The identity of `dataset` as it reads now.
  public static func of(_ dataset: Dataset) throws -> DatasetIdentity {
    let n = dataset.count
    let head = Array(0..<min(sampled, n))
    let tail = Array(max(head.count, n - sampled)..<n)
    var parts = [Data("\(n)|\(dataset.channels)×\(dataset.resolution)|\(dataset.classNames.joined(separator: "\u{1F}"))".utf8)]
    for indices in [head, tail] where !indices.isEmpty {
      let batch = try dataset.batch(at: indices)
      parts.append(Data(batch.images.contiguous().rawBytes()))
      parts.append(Data(batch.labels.rawBytes()))
    }
    return DatasetIdentity(count: n, classCount: dataset.classNames.count, digest: RepresentationCache.digest(parts))
  }

  /// How `current` differs from this recorded identity, in words; nil when it does not.
  public func difference(from current: DatasetIdentity) -> String? {
    if current.count != count { return "it has \(current.count) examples, and had \(count)" }
    if current.classCount != classCount { return "it has \(current.classCount) classes, and had \(classCount)" }
    if current.digest != digest { return "its images or labels differ (digest \(current.digest), recorded \(digest))" }
    return nil
  }
}

/// The data sets an inverter was trained and is scored on, recorded in its config.json so that
/// a resumed run and every later score can tell when the data under its data set's name changed.
public struct InverterDataIdentity: Codable, Equatable, Sendable {
  public var train: DatasetIdentity
  public var test: DatasetIdentity

  public init(train: DatasetIdentity, test: DatasetIdentity) {
    self.train = train
    self.test = test
  }
}
