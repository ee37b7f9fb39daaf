import Foundation
import Torch

/// CIFAR-10 and CIFAR-100 in their binary format (the `-binary.tar.gz` downloads, unpacked):
/// records of label byte(s) then 3×32×32 bytes, channel-major.
public enum CIFAR {
  public static let cifar10Classes = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
  ]

  /// Which of the two data sets.
  public enum Variant: String, Sendable {
    case cifar10, cifar100

    /// Label bytes before each image (CIFAR-100 stores coarse then fine).
    var labelBytes: Int { self == .cifar10 ? 1 : 2 }
    var files: (train: [String], test: [String]) {
      switch self {
      case .cifar10: return ((1...5).map { "data_batch_\($0).bin" }, ["test_batch.bin"])
      case .cifar100: return (["train.bin"], ["test.bin"])
      }
    }
    var namesFile: String { self == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt" }
  }

  /// Loads a split from `directory` (the folder holding the `.bin` files, or its parent).
  public static func load(_ variant: Variant, split: Split, directory: String) throws -> InMemoryDataset {
    let folder = try locate(variant, in: directory)
    let names = split == .train ? variant.files.train : variant.files.test
    var bytes = Data()
    for name in names {
      let url = folder.appendingPathComponent(name)
      guard let data = try? Data(contentsOf: url) else {
        throw DatasetError("\(variant.rawValue): cannot read \(url.path)")
      }
      bytes.append(data)
    }
    do {
      return try parse(bytes, variant: variant, classNames: readClassNames(variant, folder: folder))
    } catch let error as DatasetError {
      throw DatasetError("\(variant.rawValue) in \(folder.path): \(error.message)")
    }
  }

  /// The data set held by the concatenated binary records `bytes`: per record the label byte(s)
  /// (CIFAR-100: coarse, then fine) and 3×32×32 pixels, channel by channel.
  public static func parse(_ bytes: Data, variant: Variant, classNames: [String]) throws -> InMemoryDataset {
    let recordSize = variant.labelBytes + 3 * 32 * 32
    guard !bytes.isEmpty, bytes.count % recordSize == 0 else {
      throw DatasetError("\(bytes.count) bytes is not a whole number of \(recordSize)-byte records (truncated or wrong variant?)")
    }
    let count = bytes.count / recordSize
    let records = bytes.withUnsafeBytes { Tensor(bytes: $0, shape: [count, recordSize], dtype: .uint8) }
    // The fine label is the last label byte; the image follows.
    let labels = records.select(dim: 1, index: variant.labelBytes - 1).to(.int64).scalars(as: Int64.self)
    let pixels = records.narrow(dim: 1, start: variant.labelBytes, length: 3 * 32 * 32).reshaped([count, 3, 32, 32]).contiguous()
    guard let largest = labels.max(), largest < classNames.count else {
      throw DatasetError("a label exceeds the \(classNames.count) classes (wrong variant?)")
    }
    return InMemoryDataset(name: variant.rawValue, classNames: classNames, pixels: pixels, labels: labels)
  }

  private static func locate(_ variant: Variant, in directory: String) throws -> URL {
    let root = URL(fileURLWithPath: directory)
    let first = variant.files.test[0]
    for candidate in [root, root.appendingPathComponent("cifar-10-batches-bin"), root.appendingPathComponent("cifar-100-binary")] {
      if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(first).path) { return candidate }
    }
    throw DatasetError(
      "\(variant.rawValue): no \(first) in \(directory); point \(variant.rawValue):PATH at the unpacked binary version")
  }

  private static func readClassNames(_ variant: Variant, folder: URL) -> [String] {
    let url = folder.appendingPathComponent(variant.namesFile)
    if let text = try? String(contentsOf: url, encoding: .utf8) {
      let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      if names.count == (variant == .cifar10 ? 10 : 100) { return names }
    }
    return variant == .cifar10 ? cifar10Classes : (0..<100).map { "class-\($0)" }
  }
}
