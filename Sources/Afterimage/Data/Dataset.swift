import Foundation
import Torch

/// Which part of a data set: the examples to train on or the held-out ones.
public enum Split: String, CaseIterable, Sendable {
  case train, test
}

/// One labelled image. Images are float32 tensors `[C, H, W]` with values in [0, 1], for every
/// data set (models that want [-1, 1] or normalised inputs convert at their boundary).
public struct Example {
  public let image: Tensor
  public let label: Int
  /// The nuisance factors the image was drawn with, for data sets that know them (Shapes).
  public let factors: ShapeFactors?
}

/// A batch of examples: images `[B, C, H, W]` in [0, 1] and int64 labels `[B]`.
public struct Batch {
  public let images: Tensor
  public let labels: Tensor
  /// Per-example factors, for data sets that record them.
  public let factors: [ShapeFactors]?
  /// The data-set indices the batch was drawn from.
  public let indices: [Int]
}

/// A labelled image data set with random access.
public protocol Dataset: AnyObject {
  /// A short name for reports (`shapes`, `fashion-mnist`, …).
  var name: String { get }
  /// The number of examples.
  var count: Int { get }
  /// Channels per image (1 or 3).
  var channels: Int { get }
  /// Images are `resolution`×`resolution`.
  var resolution: Int { get }
  /// One name per class; labels index this list.
  var classNames: [String] { get }
  /// The example at `index` (0 ≤ index < count).
  func example(at index: Int) throws -> Example
  /// The examples at `indices`, stacked. Data sets held in memory override this with one gather.
  func batch(at indices: [Int]) throws -> Batch
}

extension Dataset {
  public func batch(at indices: [Int]) throws -> Batch {
    let examples = try indices.map { try example(at: $0) }
    let factors = examples.compactMap(\.factors)
    return Batch(
      images: Tensor.stack(examples.map(\.image)),
      labels: Tensor(examples.map { Int64($0.label) }),
      factors: factors.count == examples.count ? factors : nil,
      indices: indices)
  }

  /// The number of classes.
  public var classCount: Int { classNames.count }
}

/// A data set whose images are held in memory as one uint8 tensor `[N, C, H, W]` (Fashion-MNIST,
/// CIFAR, decoded image folders): a batch is a single gather.
public final class InMemoryDataset: Dataset {
  public let name: String
  public let classNames: [String]
  /// All images, `[N, C, H, W]` uint8.
  public let pixels: Tensor
  /// All labels, `[N]` int64.
  public let labels: Tensor
  private let labelValues: [Int64]

  public init(name: String, classNames: [String], pixels: Tensor, labels: [Int64]) {
    precondition(pixels.rank == 4 && pixels.shape[0] == labels.count, "pixels [N, C, H, W] and N labels")
    self.name = name
    self.classNames = classNames
    self.pixels = pixels
    self.labelValues = labels
    self.labels = Tensor(labels)
  }

  public var count: Int { labelValues.count }
  public var channels: Int { pixels.shape[1] }
  public var resolution: Int { pixels.shape[2] }

  public func example(at index: Int) throws -> Example {
    try checkIndex(index)
    return Example(image: pixels[index].to(.float32) / 255, label: Int(labelValues[index]), factors: nil)
  }

  public func batch(at indices: [Int]) throws -> Batch {
    for index in indices { try checkIndex(index) }
    let selection = Tensor(indices.map(Int64.init))
    return Batch(
      images: pixels.indexSelect(dim: 0, index: selection).to(.float32) / 255,
      labels: labels.indexSelect(dim: 0, index: selection), factors: nil, indices: indices)
  }

  private func checkIndex(_ index: Int) throws {
    guard index >= 0 && index < count else {
      throw DatasetError("index \(index) is outside \(name), which has \(count) examples")
    }
  }

  /// The same examples with images resized (antialiased) or zero-padded to `size`×`size`.
  public func resized(to size: Int, pad: Bool) -> InMemoryDataset {
    let current = resolution
    guard size != current else { return self }
    let float = pixels.to(.float32)
    let changed: Tensor
    if pad && size > current {
      let before = (size - current) / 2
      let after = size - current - before
      changed = float.padded([before, after, before, after])
    } else {
      changed = float.resizedBilinear(to: (size, size))
    }
    return InMemoryDataset(
      name: name, classNames: classNames, pixels: changed.round().clamped(min: 0, max: 255).to(.uint8),
      labels: labelValues)
  }
}

/// A problem with a data set that the user can fix (a path, a format, a layout).
public struct DatasetError: Error, CustomStringConvertible {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
