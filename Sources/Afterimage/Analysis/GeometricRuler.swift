import Foundation
import Torch

/// A second ruler for Shapes' layout, one that needs no training and so cannot have learned to
/// misread a blurred image: the foreground's centroid and area.
///
/// The background colour of each image is the median of its border pixels (Shapes keeps every
/// glyph clear of the border). A pixel is foreground when its colour lies at least half as far
/// from the background as the farthest pixel's does, and at least `minimumContrast` away: half
/// the peak contrast, so a blurred blob is measured at its half-height, as a blurred edge is.
/// The readings are the foreground's centroid as fractions of the width and height (Shapes'
/// `centre_x`, `centre_y`: the glyph's area centroid in the same units) and the square root of
/// its area fraction, which grows in proportion to the glyph's radius (`size`).
public enum GeometricRuler {
  /// The factors it reads, in the order of `read`'s columns.
  public static let factors = ["centre_x", "centre_y", "size"]

  /// Below this distance from the background colour (RGB, in [0, 1]) nothing is foreground:
  /// an image of background alone has no glyph to measure.
  public static let minimumContrast = 0.05

  /// Readings `[N, 3]` (centroid x, centroid y, √area) of images `[N, C, H, W]` in [0, 1]. An
  /// image with no foreground reads as a point at the centre with no area.
  public static func read(_ images: Tensor) -> Tensor {
    withNoGrad {
      let x = images.to(.cpu, dtype: .float32).contiguous()
      let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
      let background = Tensor(borderMedians(x), shape: [n, c, 1, 1])
      let distance = (x - background).pow(2).sum(dim: 1).sqrt()  // [N, H, W]
      let threshold = (distance.max(dims: [1, 2], keepDim: true) * 0.5).clamped(min: minimumContrast)  // [N, 1, 1]
      let mask = (distance .>= threshold).to(.float32)  // [N, H, W]
      let pixels = mask.sum(dims: [1, 2])  // [N]
      let found = (pixels .> 0).to(.float32)
      let columns = ((Tensor.arange(0, Double(w), dtype: .float32) + 0.5) / Double(w)).view([1, 1, w])
      let rows = ((Tensor.arange(0, Double(h), dtype: .float32) + 0.5) / Double(h)).view([1, h, 1])
      let weight = pixels.clamped(min: 1)
      // Empty masks: (1 − found) · 0.5 puts the centroid at the centre.
      let centreX = (mask * columns).sum(dims: [1, 2]) / weight + (1 - found) * 0.5
      let centreY = (mask * rows).sum(dims: [1, 2]) / weight + (1 - found) * 0.5
      let size = (pixels / Double(h * w)).sqrt()
      return Tensor.stack([centreX, centreY, size], dim: 1)  // [N, 3]
    }
  }

  /// The per-channel median of each image's border pixels, `[N · C]` (image-major).
  static func borderMedians(_ x: Tensor) -> [Float] {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let top = x.narrow(dim: 2, start: 0, length: 1).reshaped([n, c, w])
    let bottom = x.narrow(dim: 2, start: h - 1, length: 1).reshaped([n, c, w])
    let left = x.narrow(dim: 2, start: 1, length: h - 2).narrow(dim: 3, start: 0, length: 1).reshaped([n, c, h - 2])
    let right = x.narrow(dim: 2, start: 1, length: h - 2).narrow(dim: 3, start: w - 1, length: 1).reshaped([n, c, h - 2])
    let border = Tensor.cat([top, bottom, left, right], dim: 2).contiguous()  // [N, C, P]
    let count = border.shape[2]
    let values = border.scalars(as: Float.self)
    return (0..<(n * c)).map { index in values[(index * count)..<((index + 1) * count)].sorted()[count / 2] }
  }

  /// R² of `predictions` against `targets` (both `[N]`), with a bootstrap interval over the rows.
  public static func rSquared(predictions: [Double], targets: [Double], resamples: Int = 300) -> Estimate {
    Bootstrap.estimate(count: targets.count, resamples: resamples) { draw in
      let mean = draw.reduce(0) { $0 + targets[$1] } / Double(max(draw.count, 1))
      var residual = 0.0, total = 0.0
      for row in draw {
        residual += (targets[row] - predictions[row]) * (targets[row] - predictions[row])
        total += (targets[row] - mean) * (targets[row] - mean)
      }
      return 1 - residual / max(total, 1e-12)
    }
  }

  /// Per factor, R² of the readings of `reconstructions` against those of the originals, as
  /// in `read`'s columns (`[N, 3]` each): what of the layout the reconstructions show.
  public static func agreement(reconstructions: Tensor, originals: Tensor) -> [String: Estimate] {
    let fake = reconstructions.to(.float64).contiguous()
    let real = originals.to(.float64).contiguous()
    var result: [String: Estimate] = [:]
    for (column, name) in factors.enumerated() {
      result[name] = rSquared(
        predictions: fake.select(dim: 1, index: column).contiguous().scalars(as: Double.self),
        targets: real.select(dim: 1, index: column).contiguous().scalars(as: Double.self))
    }
    return result
  }

  /// The ruler's own ceiling, read off clean originals against their known factors: R² of the
  /// centroid against `centre_x` and `centre_y` directly (the same units), and of √area mapped
  /// to `size` by the best line for each glyph class (`labels`): a ring and a disc of one
  /// radius differ in area, so only within a class is √area proportional to the radius.
  public static func ceiling(originals readings: Tensor, factors: [ShapeFactors], labels: [Int]) -> [String: Estimate] {
    let r = readings.to(.float64).contiguous()
    func column(_ index: Int) -> [Double] { r.select(dim: 1, index: index).contiguous().scalars(as: Double.self) }
    let sizes = factors.map(\.size)
    let roots = column(2)
    var predicted = [Double](repeating: 0, count: sizes.count)
    for label in Set(labels) {
      let rows = labels.indices.filter { labels[$0] == label }
      let (slope, intercept) = leastSquaresLine(rows.map { roots[$0] }, rows.map { sizes[$0] })
      for row in rows { predicted[row] = slope * roots[row] + intercept }
    }
    return [
      "centre_x": rSquared(predictions: column(0), targets: factors.map(\.centreX)),
      "centre_y": rSquared(predictions: column(1), targets: factors.map(\.centreY)),
      "size": rSquared(predictions: predicted, targets: sizes),
    ]
  }

  /// The least-squares line `y ≈ slope · x + intercept`.
  static func leastSquaresLine(_ x: [Double], _ y: [Double]) -> (slope: Double, intercept: Double) {
    let n = Double(max(x.count, 1))
    let meanX = x.reduce(0, +) / n, meanY = y.reduce(0, +) / n
    let covariance = zip(x, y).reduce(0) { $0 + ($1.0 - meanX) * ($1.1 - meanY) }
    let variance = x.reduce(0) { $0 + ($1 - meanX) * ($1 - meanX) }
    let slope = covariance / max(variance, 1e-12)
    return (slope, meanY - slope * meanX)
  }
}
