import Foundation
import Torch

/// Summary numbers of a data set, for `afterimage data info` and for normalisation.
public struct DatasetStatistics: Codable {
  public var name: String
  public var count: Int
  public var classes: [String]
  public var resolution: Int
  public var channels: Int
  /// Examples per class (over the whole split).
  public var classCounts: [Int]
  /// Per-channel mean and standard deviation of pixel values in [0, 1], over `sampled` images.
  public var channelMeans: [Double]
  public var channelStds: [Double]
  public var sampled: Int
  /// For Shapes: each factor's observed minimum and maximum over the sampled images.
  public var factorRanges: [String: [Double]]?

  /// Measures `dataset`, reading at most `maximumSamples` images (evenly spaced) for the pixel
  /// statistics; class counts use every label.
  public static func measure(_ dataset: Dataset, maximumSamples: Int = 10_000, batchSize: Int = 500) throws -> DatasetStatistics {
    let total = dataset.count
    let sampleCount = min(total, maximumSamples)
    let step = max(1, total / max(sampleCount, 1))
    let sampleIndices = Array(stride(from: 0, to: total, by: step).prefix(sampleCount))
    let c = dataset.channels
    var sums = [Double](repeating: 0, count: c)
    var squares = [Double](repeating: 0, count: c)
    var pixels = 0.0
    var factorMinimum = [Double](repeating: .infinity, count: ShapeFactors.names.count)
    var factorMaximum = [Double](repeating: -.infinity, count: ShapeFactors.names.count)
    var sawFactors = false
    for start in stride(from: 0, to: sampleIndices.count, by: batchSize) {
      let batch = try dataset.batch(at: Array(sampleIndices[start..<min(start + batchSize, sampleIndices.count)]))
      let x = batch.images.to(.float64)  // [B, C, H, W]
      let s = x.sum(dims: [0, 2, 3]).scalars(as: Double.self)
      let q = (x * x).sum(dims: [0, 2, 3]).scalars(as: Double.self)
      for i in 0..<c {
        sums[i] += s[i]
        squares[i] += q[i]
      }
      pixels += Double(x.shape[0] * x.shape[2] * x.shape[3])
      for factors in batch.factors ?? [] {
        sawFactors = true
        for (i, value) in factors.values.enumerated() {
          factorMinimum[i] = min(factorMinimum[i], value)
          factorMaximum[i] = max(factorMaximum[i], value)
        }
      }
    }
    let means = sums.map { $0 / pixels }
    let stds = zip(squares, means).map { (max(0, $0 / pixels - $1 * $1)).squareRoot() }
    var classCounts = [Int](repeating: 0, count: dataset.classCount)
    if let inMemory = dataset as? InMemoryDataset {
      for label in inMemory.labels.scalars(as: Int64.self) { classCounts[Int(label)] += 1 }
    } else if let shapes = dataset as? ShapesDataset {
      for index in 0..<total { classCounts[shapes.factors(at: index).label] += 1 }
    }
    var ranges: [String: [Double]]?
    if sawFactors {
      ranges = Dictionary(uniqueKeysWithValues: ShapeFactors.names.enumerated().map { ($1, [factorMinimum[$0], factorMaximum[$0]]) })
    }
    return DatasetStatistics(
      name: dataset.name, count: total, classes: dataset.classNames, resolution: dataset.resolution,
      channels: c, classCounts: classCounts, channelMeans: means, channelStds: stds, sampled: sampleIndices.count,
      factorRanges: ranges)
  }
}
