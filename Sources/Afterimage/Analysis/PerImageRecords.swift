import Foundation
import Torch

/// The reconstructions themselves, for other tools: `arrays.safetensors` and `arrays.npz`
/// (`--arrays`). Images are float32 in [0, 1], as everywhere in the project.
///
///     originals            [N, C, H, W]     float32
///     reconstructions      [N, S, C, H, W]  float32   S noise draws per image
///     representation       [N, D]           float32   what was inverted (logits, or a feature vector)
///     labels               [N]              int64     the data set's classes (absent for image files)
///     predictions/NAME     [N] or [N, S]    int64     a classifier's top-1 class, of the originals or of each draw
///     factors              [N, F]           float64   Shapes' nuisance factors, `ShapeFactors.names` order
public struct ReconstructionArrays {
  public var originals: Tensor
  public var reconstructions: Tensor
  public var representation: Tensor
  public var labels: Tensor?
  /// Top-1 classes by name: `classifier_originals`, `classifier_reconstructions`,
  /// `evaluation_reconstructions`, …
  public var predictions: [(name: String, classes: Tensor)] = []
  public var factors: [ShapeFactors]?

  public init(originals: Tensor, reconstructions: Tensor, representation: Tensor, labels: Tensor?) {
    (self.originals, self.reconstructions, self.representation, self.labels) = (originals, reconstructions, representation, labels)
  }

  /// The arrays by name, on the CPU.
  public var named: [(name: String, tensor: Tensor)] {
    var arrays: [(name: String, tensor: Tensor)] = [
      ("originals", originals.to(.cpu, dtype: .float32)), ("reconstructions", reconstructions.to(.cpu, dtype: .float32)),
      ("representation", representation.to(.cpu, dtype: .float32)),
    ]
    if let labels { arrays.append(("labels", labels.to(.cpu, dtype: .int64))) }
    arrays += predictions.map { ("predictions/\($0.name)", $0.classes.to(.cpu, dtype: .int64)) }
    if let factors, let first = factors.first {
      arrays.append(("factors", Tensor(factors.flatMap(\.values), shape: [factors.count, first.values.count])))
    }
    return arrays
  }

  /// Writes `arrays.<format>` in `folder` for each format; returns the files written.
  @discardableResult
  public func write(_ formats: [ArrayFiles.Format], in folder: URL, base: String = "arrays") throws -> [URL] {
    let metadata = ["factor_names": ShapeFactors.names.joined(separator: ","), "images": "float32 in [0, 1]"]
    return try formats.map { format in
      let url = folder.appendingPathComponent(format.fileName(base))
      try ArrayFiles.write(named, metadata: metadata, to: url)
      return url
    }
  }
}

/// One row per image, one column per per-image score: `scores.csv` of an analyze folder.
/// A score an image has none of (a retrieval hit outside the scored groups) is an empty cell.
public struct ScoreTable {
  public private(set) var columns: [(name: String, values: [Double?])] = []

  public init() {}

  /// The number of rows (the first column's length; 0 when empty).
  public var count: Int { columns.first?.values.count ?? 0 }

  /// Adds a column; every column must have one value per image.
  public mutating func add<Value: BinaryFloatingPoint>(_ name: String, _ values: [Value?]) {
    precondition(columns.isEmpty || values.count == count, "\(name) has \(values.count) values, the table \(count) rows")
    columns.append((name, values.map { $0.map(Double.init) }))
  }

  public mutating func add<Value: BinaryFloatingPoint>(_ name: String, _ values: [Value]) { add(name, values.map(Optional.some)) }

  public mutating func add(_ name: String, _ values: [Int]) { add(name, values.map { Double($0) }) }

  /// Adds every column of `other` (the same images), its name prefixed with `prefix/`: one
  /// table for several methods scored on the same images.
  public mutating func append(_ other: ScoreTable, prefix: String) {
    for column in other.columns { add("\(prefix)/\(column.name)", column.values) }
  }

  /// The CSV text: a header, then `image` (the row's index in the scored set) and each column,
  /// with the shortest decimal that reads back to the same double.
  public var csv: String {
    var lines = [(["image"] + columns.map(\.name)).joined(separator: ",")]
    for row in 0..<count {
      lines.append(([String(row)] + columns.map { $0.values[row].map { "\($0)" } ?? "" }).joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Writes `scores.csv` in `folder`.
  public func write(in folder: URL) throws {
    try FileSystem.writeAtomically(Data(csv.utf8), to: folder.appendingPathComponent("scores.csv"))
  }
}
