import Foundation
import Torch

/// Image-similarity and inversion metrics. Images are `[B, C, H, W]` in [0, 1]; every function
/// returns one value per image (`[B]`) unless it says otherwise, so callers can average or
/// break results down as they like.
public enum Metrics {
  // MARK: pixel fidelity

  /// Peak signal-to-noise ratio in dB for data range 1: `10 · log10(1 / MSE)` per image.
  public static func psnr(_ a: Tensor, _ b: Tensor) -> Tensor {
    let mse = (a - b).pow(2).flattened(from: 1).mean(dims: [1]).clamped(min: 1e-10)  // [B]
    return mse.log() * (-10 / Foundation.log(10.0))
  }

  /// The structural similarity index (Wang et al. 2004) per image: an 11×11 Gaussian window of
  /// σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1, population covariances, averaged over the
  /// positions the window fits in and over channels. This is scikit-image's
  /// `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  /// data_range=1)`.
  public static func ssim(_ a: Tensor, _ b: Tensor) -> Tensor {
    let channels = a.shape[1]
    let window = gaussianWindow(sigma: 1.5, radius: 5, dtype: a.dtype).to(a.device).expanded([channels, 1, 11, 11]).contiguous()
    func blur(_ x: Tensor) -> Tensor { x.conv2d(weight: window, groups: channels) }  // 'valid': [B, C, H−10, W−10]
    let (c1, c2) = (0.01 * 0.01, 0.03 * 0.03)
    let muA = blur(a)
    let muB = blur(b)
    let varianceA = blur(a * a) - muA * muA
    let varianceB = blur(b * b) - muB * muB
    let covariance = blur(a * b) - muA * muB
    let numerator = (muA * muB * 2 + c1) * (covariance * 2 + c2)
    let denominator = (muA * muA + muB * muB + c1) * (varianceA + varianceB + c2)
    return (numerator / denominator).flattened(from: 1).mean(dims: [1])
  }

  /// A normalised 2-D Gaussian kernel `[1, 1, 2r+1, 2r+1]` (scipy's, truncated at r).
  static func gaussianWindow(sigma: Double, radius: Int, dtype: DType) -> Tensor {
    let offsets = (-radius...radius).map { Double($0) }
    let weights = offsets.map { Foundation.exp(-$0 * $0 / (2 * sigma * sigma)) }
    let total = weights.reduce(0, +)
    let line = weights.map { $0 / total }
    let kernel = line.flatMap { row in line.map { row * $0 } }
    return Tensor(kernel, shape: [1, 1, 2 * radius + 1, 2 * radius + 1]).to(dtype)
  }

  // MARK: perceptual distance

  /// Perceptual distance per image pair: for each named feature map of `network`, the squared
  /// distance of unit-normalised channel vectors summed over channels and averaged over
  /// positions (`FeatureDistance.perImage`), summed over layers (LPIPS without learned weights).
  public static func perceptualDistance(_ a: Tensor, _ b: Tensor, network: any ImageClassifier, layers: [String]) throws -> Tensor {
    let fa = try withNoGrad { try network.features(a, names: layers).features }
    let fb = try withNoGrad { try network.features(b, names: layers).features }
    var total = Tensor.zeros([a.shape[0]], device: network.device)
    for layer in layers {
      total = total + FeatureDistance.perImage(fa[layer]!, fb[layer]!)
    }
    return total
  }

  /// Perceptual distances between every `a[i]` and every `b[j]`: `[A, B]`.
  public static func perceptualDistanceMatrix(_ a: Tensor, _ b: Tensor, network: any ImageClassifier, layers: [String]) throws -> Tensor {
    let fa = try withNoGrad { try network.features(a, names: layers).features }
    let fb = try withNoGrad { try network.features(b, names: layers).features }
    var total = Tensor.zeros([a.shape[0], b.shape[0]], device: network.device)
    for layer in layers {
      let x = FeatureDistance.unitChannels(fa[layer]!).flattened(from: 1)  // [A, D]: unit channel vectors, all positions
      let y = FeatureDistance.unitChannels(fb[layer]!).flattened(from: 1)  // [B, D]
      let positions = Double(FeatureDistance.positionCount(fa[layer]!))
      // ‖x − y‖² = ‖x‖² + ‖y‖² − 2 x·y, averaged over positions like `perceptualDistance`.
      let squares = x.pow(2).sum(dim: 1, keepDim: true) + y.pow(2).sum(dim: 1).unsqueezed(0) - x.matmul(y.t) * 2
      total = total + squares.clamped(min: 0) / positions
    }
    return total
  }

  // MARK: logits and classes

  /// Whether the top-1 class of `reconstructed` logits equals that of `original` (1 or 0 per image).
  public static func top1Agreement(_ original: Tensor, _ reconstructed: Tensor) -> Tensor {
    (original.argmax(dim: 1) .== reconstructed.argmax(dim: 1)).to(.float32)
  }

  /// Cosine similarity of two logit vectors per image.
  public static func logitCosine(_ a: Tensor, _ b: Tensor) -> Tensor {
    (a * b).sum(dim: 1) / (a.norm(dims: [1]) * b.norm(dims: [1])).clamped(min: 1e-12)
  }

  // MARK: retrieval and diversity

  /// Retrieval@N: the fraction of reconstructions whose nearest original, by `distances[i, j]`
  /// (reconstruction i, original j) within its group of N consecutive candidates, is its own.
  /// Chance is 1/N. Images beyond the last whole group are left out.
  public static func retrieval(distances: Tensor, groupSize n: Int) -> Double {
    let hits = retrievalHits(distances: distances, groupSize: n)
    return hits.isEmpty ? .nan : hits.reduce(0, +) / Double(hits.count)
  }

  /// Retrieval@N per reconstruction, 1 (its own original is the nearest of its group) or 0, for
  /// the images in whole groups of N consecutive candidates.
  public static func retrievalHits(distances: Tensor, groupSize n: Int) -> [Double] {
    let count = distances.shape[0] / n * n
    var hits: [Double] = []
    for start in stride(from: 0, to: count, by: n) {
      let block = distances.narrow(dim: 0, start: start, length: n).narrow(dim: 1, start: start, length: n)  // [N, N]
      let nearest = block.argmin(dim: 1).scalars(as: Int64.self)
      hits += nearest.enumerated().map { Int($0.element) == $0.offset ? 1 : 0 }
    }
    return hits
  }

  /// Same-class retrieval@N per reconstruction: the candidates are its own original and N − 1
  /// other originals *of the same class* (drawn with `seed`), so the class alone gives chance,
  /// 1/N, and only what the reconstruction carries beyond its class can do better. 1 when its
  /// own original is strictly the nearest, else 0; nil for an image whose class has fewer than
  /// N originals in the set. `distances[i, j]`: reconstruction i to original j; `labels`: the
  /// originals' true classes.
  public static func sameClassRetrievalHits(distances: Tensor, labels: [Int], groupSize n: Int, seed: UInt64 = 0) -> [Double?] {
    precondition(distances.shape[0] == labels.count && distances.shape[1] == labels.count, "one label per image")
    let rows = distances.to(.cpu, dtype: .float64).scalars(as: Double.self)
    let count = labels.count
    var members: [Int: [Int]] = [:]
    for (index, label) in labels.enumerated() { members[label, default: []].append(index) }
    return (0..<count).map { i -> Double? in
      var others = members[labels[i]]!.filter { $0 != i }
      guard others.count >= n - 1 else { return nil }
      var generator = SplitMix64(seed: seed, index: UInt64(i))
      others.shuffle(using: &generator)
      let own = rows[i * count + i]
      return others.prefix(n - 1).allSatisfy { own < rows[i * count + $0] } ? 1 : 0
    }
  }

  /// Mean pairwise perceptual distance between `samples [K, B, C, H, W]` (K reconstructions of
  /// the same B logit vectors under different noise): how much the noise changes, per image `[B]`.
  public static func noiseDiversity(_ samples: [Tensor], network: any ImageClassifier, layers: [String]) throws -> Tensor {
    precondition(samples.count >= 2, "diversity needs at least two samples per logit vector")
    var total = Tensor.zeros([samples[0].shape[0]], device: network.device)
    var pairs = 0.0
    for i in 0..<samples.count {
      for j in (i + 1)..<samples.count {
        total = total + (try perceptualDistance(samples[i], samples[j], network: network, layers: layers))
        pairs += 1
      }
    }
    return total / pairs
  }

  // MARK: distributions

  /// Mean `[D]` and covariance `[D, D]` of feature rows `[N, D]` (float64, population covariance
  /// with N − 1 as numpy's `cov`).
  public static func featureStatistics(_ features: Tensor) -> (mean: Tensor, covariance: Tensor) {
    let x = features.to(.float64)
    let mean = x.mean(dims: [0])
    let centred = x - mean.unsqueezed(0)
    return (mean, centred.t.matmul(centred) / Double(max(1, x.shape[0] - 1)))
  }

  /// The Fréchet distance between Gaussians N(μ₁, Σ₁) and N(μ₂, Σ₂):
  /// ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½) (FID's formula, in any feature space).
  public static func frechetDistance(mean1: Tensor, covariance1: Tensor, mean2: Tensor, covariance2: Tensor) -> Double {
    let m1 = mean1.to(.float64)
    let m2 = mean2.to(.float64)
    let s1 = covariance1.to(.float64)
    let s2 = covariance2.to(.float64)
    let root1 = symmetricSquareRoot(s1)
    let (values, _) = root1.matmul(s2).matmul(root1).symmetricEigen()
    let traceRoot = values.clamped(min: 0).sqrt().sum().item()
    let meanTerm = (m1 - m2).pow(2).sum().item()
    return max(0, meanTerm + s1.diagonal().sum().item() + s2.diagonal().sum().item() - 2 * traceRoot)
  }

  /// The positive semi-definite square root of a symmetric matrix.
  static func symmetricSquareRoot(_ matrix: Tensor) -> Tensor {
    let symmetric = (matrix + matrix.t) / 2
    let (values, vectors) = symmetric.symmetricEigen()
    return (vectors * values.clamped(min: 0).sqrt().unsqueezed(0)).matmul(vectors.t)
  }

  /// The coefficient of determination of `predictions` against `targets` per column: `[D]`.
  public static func rSquared(predictions: Tensor, targets: Tensor) -> Tensor {
    let p = predictions.to(.float64)
    let t = targets.to(.float64)
    let residual = (t - p).pow(2).sum(dims: [0])
    let total = (t - t.mean(dims: [0], keepDim: true)).pow(2).sum(dims: [0]).clamped(min: 1e-12)
    return 1 - residual / total
  }
}
