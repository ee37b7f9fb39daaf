import Foundation
import Torch

/// Image transformations for the invariance experiment (finding 7), on `[B, C, H, W]` in [0, 1].
public enum ImageTransform: String, CaseIterable, Codable, Sendable {
  case hueShift = "hue-shift", brightness, translation, rotation, flip, blur, noise, occlusion

  /// The magnitudes measured by default (the transformation's own unit).
  public var defaultMagnitudes: [Double] {
    switch self {
    case .hueShift: return [0.1, 0.25, 0.5]  // turns of the colour wheel
    case .brightness: return [0.6, 0.8, 1.25]  // factor
    case .translation: return [0.0625, 0.125, 0.25]  // fraction of the width
    case .rotation: return [15, 45, 90]  // degrees
    case .flip: return [1]
    case .blur: return [0.5, 1, 2]  // Gaussian σ in pixels
    case .noise: return [0.05, 0.1, 0.2]  // Gaussian σ
    case .occlusion: return [0.25, 0.4, 0.5]  // side of a centred gray square, fraction of the width
    }
  }

  /// The transformed images.
  public func apply(_ images: Tensor, magnitude: Double, generator: Generator) -> Tensor {
    let batch = images.shape[0]
    switch self {
    case .hueShift:
      guard images.shape[1] == 3 else { return images }
      return Self.rotateHue(images, turns: magnitude)
    case .brightness:
      return (images * magnitude).clamped(min: 0, max: 1)
    case .translation:
      // Normalised coordinates span 2 units across the image.
      let theta = Tensor([1, 0, Float(-2 * magnitude), 0, 1, 0], shape: [1, 2, 3]).to(images.device).expanded([batch, 2, 3]).contiguous()
      return images.affineWarped(theta, padding: .border)
    case .rotation:
      let angle = magnitude * Double.pi / 180
      let (c, s) = (Float(Foundation.cos(angle)), Float(Foundation.sin(angle)))
      let theta = Tensor([c, -s, 0, s, c, 0], shape: [1, 2, 3]).to(images.device).expanded([batch, 2, 3]).contiguous()
      return images.affineWarped(theta, padding: .border)
    case .flip:
      return images.flipped([3])
    case .blur:
      let channels = images.shape[1]
      let radius = max(1, Int((3 * magnitude).rounded(.up)))
      let kernel = Metrics.gaussianWindow(sigma: magnitude, radius: radius, dtype: images.dtype).to(images.device).expanded([channels, 1, 2 * radius + 1, 2 * radius + 1]).contiguous()
      return images.padded([radius, radius, radius, radius], mode: .reflect).conv2d(weight: kernel, groups: channels)
    case .noise:
      return (images + Tensor.randn(images.shape, generator: generator, dtype: images.dtype).to(images.device) * magnitude).clamped(min: 0, max: 1)
    case .occlusion:
      let side = images.shape[3]
      let size = max(1, Int(Double(side) * magnitude))
      let start = (side - size) / 2
      let occluded = images.clone()
      withNoGrad { occluded.narrow(dim: 2, start: start, length: size).narrow(dim: 3, start: start, length: size).fill(0.5) }
      return occluded
    }
  }

  /// Rotates colours about the gray axis by `turns` of the colour wheel (a linear map in YIQ).
  static func rotateHue(_ images: Tensor, turns: Double) -> Tensor {
    let angle = 2 * Double.pi * turns
    let (c, s) = (Foundation.cos(angle), Foundation.sin(angle))
    // RGB → YIQ, rotate I and Q, YIQ → RGB.
    let toYIQ: [[Double]] = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
    let fromYIQ = inverse(toYIQ)  // exact, so a full turn is the identity
    let rotate: [[Double]] = [[1, 0, 0], [0, c, -s], [0, s, c]]
    func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
      (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
    }
    let matrix = multiply(fromYIQ, multiply(rotate, toYIQ))
    let weights = Tensor(matrix.flatMap { $0.map(Float.init) }, shape: [3, 3, 1, 1]).to(images.device, dtype: images.dtype)
    return images.conv2d(weight: weights).clamped(min: 0, max: 1)
  }
}

/// The inverse of a 3×3 matrix (by cofactors).
func inverse(_ m: [[Double]]) -> [[Double]] {
  let cofactor: (Int, Int) -> Double = { i, j in
    let rows = (0..<3).filter { $0 != i }
    let columns = (0..<3).filter { $0 != j }
    let minor = m[rows[0]][columns[0]] * m[rows[1]][columns[1]] - m[rows[0]][columns[1]] * m[rows[1]][columns[0]]
    return (i + j) % 2 == 0 ? minor : -minor
  }
  let determinant = (0..<3).reduce(0.0) { $0 + m[0][$1] * cofactor(0, $1) }
  return (0..<3).map { i in (0..<3).map { j in cofactor(j, i) / determinant } }
}

/// One transformation at one magnitude: does the reconstruction follow the transformation?
public struct TransformPoint: Codable {
  public var transform: String
  public var magnitude: Double
  /// d(G(Φ(Tx)), T G(Φ(x))): small when the logits carry the transformation (equivariance).
  public var equivarianceError: Double
  /// d(G(Φ(Tx)), G(Φ(x))): small when the classifier ignores the transformation (invariance).
  public var change: Double
  /// The 95% bootstrap interval over images of `change − equivarianceError`: above 0 when the
  /// reconstructions follow the transformation, below 0 when they ignore it (absent in older files).
  public var followed: Estimate?
  enum CodingKeys: String, CodingKey { case transform, magnitude, equivarianceError = "equivariance_error", change, followed }
}

public enum TransformExperiments {
  /// Measures every transformation at its magnitudes (perceptual distances, same noise).
  public static func run(
    _ transforms: [ImageTransform], images: Tensor, inverter: Inverter, evaluation: any ImageClassifier, seed: UInt64 = 0
  ) throws -> (points: [TransformPoint], figureRows: [Tensor], scores: ScoreTable) {
    let layers = ReconstructionAnalysis.perceptualLayers(of: evaluation)
    var scores = ScoreTable()  // per image: both distances for every transformation and magnitude
    let noise = inverter.noise(count: images.shape[0], seed: seed)
    let reconstruction = try inverter.reconstruct(images: images, noise: noise)
    var points: [TransformPoint] = []
    var rows: [Tensor] = []
    for transform in transforms {
      for magnitude in transform.defaultMagnitudes {
        let generator = Generator(seed: seed &+ 7)
        let transformed = transform.apply(images, magnitude: magnitude, generator: generator)
        let fromTransformed = try inverter.reconstruct(images: transformed, noise: noise)
        let transformedReconstruction = transform.apply(reconstruction, magnitude: magnitude, generator: Generator(seed: seed &+ 7))
        let equivarianceError = try Metrics.perceptualDistance(fromTransformed, transformedReconstruction, network: evaluation, layers: layers)  // [B]
        let change = try Metrics.perceptualDistance(fromTransformed, reconstruction, network: evaluation, layers: layers)  // [B]
        points.append(TransformPoint(
          transform: transform.rawValue, magnitude: magnitude, equivarianceError: equivarianceError.mean().item(), change: change.mean().item(),
          followed: Bootstrap.mean((change - equivarianceError).to(.cpu, dtype: .float64).scalars(as: Double.self))))
        if magnitude == transform.defaultMagnitudes.last { rows += [transformed, fromTransformed] }
        let label = "\(transform.rawValue)@\(String(format: "%g", magnitude))"
        scores.add("equivariance_error:\(label)", equivarianceError.to(.cpu, dtype: .float64).scalars(as: Double.self))
        scores.add("change:\(label)", change.to(.cpu, dtype: .float64).scalars(as: Double.self))
      }
    }
    return (points, rows, scores)
  }
}
