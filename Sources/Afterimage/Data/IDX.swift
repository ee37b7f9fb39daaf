import CImaging
import Foundation
import Torch

/// The IDX format of MNIST and Fashion-MNIST: two zero bytes, a type byte (0x08 = unsigned
/// byte), the number of dimensions, each dimension as a big-endian u32, then the data.
public enum IDX {
  /// Parses IDX bytes (unsigned-byte data only) into its dimensions and values.
  public static func parse(_ data: Data) throws -> (dimensions: [Int], values: Data) {
    guard data.count >= 4, data[data.startIndex] == 0, data[data.startIndex + 1] == 0 else {
      throw DatasetError("not an IDX file (it must start with two zero bytes)")
    }
    let type = data[data.startIndex + 2]
    guard type == 0x08 else {
      throw DatasetError(String(format: "IDX element type 0x%02x is not unsigned bytes (0x08)", type))
    }
    let rank = Int(data[data.startIndex + 3])
    let headerSize = 4 + 4 * rank
    guard rank > 0, data.count >= headerSize else { throw DatasetError("IDX header is truncated") }
    let dimensions = (0..<rank).map { d -> Int in
      let offset = data.startIndex + 4 + 4 * d
      return data[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
    }
    var expected = 1
    for dimension in dimensions {
      let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
      guard !overflow else { throw DatasetError("IDX dimensions \(dimensions) are impossible (corrupt header)") }
      expected = product
    }
    let available = data.count - headerSize
    guard available >= expected else {
      throw DatasetError("IDX data is truncated: dimensions \(dimensions) need \(expected) bytes, \(available) follow")
    }
    return (dimensions, data.subdata(in: (data.startIndex + headerSize)..<(data.startIndex + headerSize + expected)))
  }

  /// Reads an IDX file, gzip-compressed (`.gz`) or not.
  public static func read(_ url: URL) throws -> (dimensions: [Int], values: Data) {
    guard let raw = try? Data(contentsOf: url) else {
      throw DatasetError("cannot read \(url.path): \(FileManager.default.fileExists(atPath: url.path) ? "permission denied" : "no such file")")
    }
    do {
      return try parse(raw.starts(with: [0x1F, 0x8B]) ? try gunzip(raw) : raw)
    } catch let error as DatasetError {
      throw DatasetError("\(url.path): \(error.message)")
    }
  }
}

/// Inflates gzip data through zlib, refusing output beyond `limit` bytes (a few kilobytes of
/// gzip can claim gigabytes). The default, 1 GB, is twenty times Fashion-MNIST's largest file.
public func gunzip(_ data: Data, limit: Int = 1_000_000_000) throws -> Data {
  var output: UnsafeMutablePointer<UInt8>?
  var size = 0
  var message = [CChar](repeating: 0, count: 256)
  let status = data.withUnsafeBytes { raw in
    message.withUnsafeMutableBufferPointer {
      ci_gunzip(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, limit, &output, &size, $0.baseAddress, $0.count)
    }
  }
  guard status == 0, let output else { throw DatasetError("gzip: \(String(cString: message))") }
  defer { free(output) }
  return Data(bytes: output, count: size)
}

/// Fashion-MNIST (Zalando): 28×28 grayscale clothing images in 10 classes, 60,000 for training
/// and 10,000 for testing, read from the IDX files of Debian's `dataset-fashion-mnist`.
public enum FashionMNIST {
  public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
  public static let classNames = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
  ]

  /// Loads a split from `directory` (files `train-…` / `t10k-…`, `.gz` or not).
  public static func load(split: Split, directory: String = defaultDirectory) throws -> InMemoryDataset {
    let prefix = split == .train ? "train" : "t10k"
    func file(_ stem: String) throws -> URL {
      for candidate in ["\(prefix)-\(stem).gz", "\(prefix)-\(stem)"] {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(candidate)
        if FileManager.default.fileExists(atPath: url.path) { return url }
      }
      throw DatasetError(
        "Fashion-MNIST: no \(prefix)-\(stem)(.gz) in \(directory); install Debian's dataset-fashion-mnist "
          + "(scripts/setup does) or name the folder with fashion-mnist:PATH")
    }
    let images = try IDX.read(try file("images-idx3-ubyte"))
    let labels = try IDX.read(try file("labels-idx1-ubyte"))
    guard images.dimensions.count == 3, labels.dimensions.count == 1, images.dimensions[0] == labels.dimensions[0] else {
      throw DatasetError(
        "Fashion-MNIST in \(directory): images \(images.dimensions) and labels \(labels.dimensions) do not match")
    }
    let (n, h, w) = (images.dimensions[0], images.dimensions[1], images.dimensions[2])
    let pixels = images.values.withUnsafeBytes { Tensor(bytes: $0, shape: [n, 1, h, w], dtype: .uint8) }
    let labelValues = labels.values.map { Int64($0) }
    guard let largest = labelValues.max(), largest < classNames.count else {
      throw DatasetError("Fashion-MNIST labels go beyond the 10 classes")
    }
    return InMemoryDataset(name: "fashion-mnist", classNames: classNames, pixels: pixels, labels: labelValues)
  }
}
