import Foundation
import Torch

/// A data set named on the command line:
///
///     shapes                      the procedural default (10 classes, 32×32)
///     shapes:classes=20,seed=3    options: classes, seed, train (count), test (count)
///     fashion-mnist               Debian's dataset-fashion-mnist
///     fashion-mnist:PATH          the IDX files in another folder
///     cifar10:PATH  cifar100:PATH the binary format
///     folder:PATH                 one sub-folder of PNG/JPEG images per class
public struct DatasetSource: CustomStringConvertible, Sendable {
  public enum Kind: Sendable {
    case shapes(classes: Int, seed: UInt64, trainCount: Int?, testCount: Int?)
    case fashionMNIST(directory: String)
    case cifar(CIFAR.Variant, directory: String)
    case folder(path: String)
  }

  public let kind: Kind
  public let description: String

  /// The names users can give, for help texts.
  public static let help =
    "shapes[:classes=N,seed=S], fashion-mnist[:PATH], cifar10:PATH, cifar100:PATH, folder:PATH"

  public init(_ text: String) throws {
    description = text
    let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
    let head = parts.first?.lowercased() ?? ""
    let argument = parts.count > 1 ? parts[1] : nil
    switch head {
    case "shapes":
      var options: [String: String] = [:]
      for pair in (argument ?? "").split(separator: ",") where !pair.isEmpty {
        let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2, ["classes", "seed", "train", "test"].contains(kv[0]) else {
          throw DatasetError("shapes option '\(pair)' is not one of classes=N, seed=S, train=N, test=N")
        }
        options[kv[0]] = kv[1]
      }
      func integer(_ key: String) throws -> Int? {
        guard let value = options[key] else { return nil }
        let smallest = key == "seed" ? 0 : 1
        guard let number = Int(value), number >= smallest else {
          throw DatasetError("shapes option \(key)=\(value) needs an integer of at least \(smallest)")
        }
        return number
      }
      kind = .shapes(
        classes: try integer("classes") ?? 10, seed: UInt64(try integer("seed") ?? 0),
        trainCount: try integer("train"), testCount: try integer("test"))
    case "fashion-mnist", "fashionmnist":
      kind = .fashionMNIST(directory: argument ?? FashionMNIST.defaultDirectory)
    case "cifar10", "cifar100":
      guard let argument, !argument.isEmpty else {
        throw DatasetError("\(head) needs the folder of its binary files: \(head):PATH")
      }
      kind = .cifar(head == "cifar10" ? .cifar10 : .cifar100, directory: argument)
    case "folder":
      guard let argument, !argument.isEmpty else { throw DatasetError("folder needs a path: folder:PATH") }
      kind = .folder(path: argument)
    default:
      throw DatasetError("unknown data set '\(text)'; use one of: \(Self.help)")
    }
  }

  /// The resolution images come at when none is asked for.
  public var nativeResolution: Int {
    switch kind {
    case .fashionMNIST: return 28
    default: return 32
    }
  }

  /// Opens a split. `resolution` resizes (Fashion-MNIST: zero-pads 28 → 32 when `pad`), and the
  /// returned notes say anything the user should know (skipped files).
  public func open(split: Split, resolution: Int? = nil, pad: Bool = true, strict: Bool = false) throws
    -> (dataset: Dataset, notes: [String])
  {
    if let resolution, !(8...1024).contains(resolution) {
      throw DatasetError("a resolution of \(resolution) pixels is outside 8…1024")
    }
    switch kind {
    case .shapes(let classes, let seed, let trainCount, let testCount):
      let dataset = try ShapesDataset(
        split: split, classes: classes, resolution: resolution ?? 32,
        count: split == .train ? trainCount : testCount, seed: seed)
      return (dataset, [])
    case .fashionMNIST(let directory):
      let dataset = try FashionMNIST.load(split: split, directory: directory)
      return (resolution.map { dataset.resized(to: $0, pad: pad) } ?? dataset, [])
    case .cifar(let variant, let directory):
      let dataset = try CIFAR.load(variant, split: split, directory: directory)
      return (resolution.map { dataset.resized(to: $0, pad: false) } ?? dataset, [])
    case .folder(let path):
      let (dataset, report) = try ImageFolder.load(path: path, split: split, resolution: resolution ?? 32, strict: strict)
      return (dataset, report.summary.map { [$0] } ?? [])
    }
  }
}
