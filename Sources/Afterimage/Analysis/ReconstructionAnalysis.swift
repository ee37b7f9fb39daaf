import Foundation
import Torch

/// How well an inverter's reconstructions of held-out images carry what the originals show:
/// every fidelity metric of docs/SCIENCE.md, measured on the same images.
public struct ReconstructionReport: Codable {
  public var count: Int
  /// Mean PSNR (dB) and SSIM between originals and reconstructions.
  public var psnr: Double
  public var ssim: Double
  /// Mean perceptual distance in the evaluation classifier's feature maps.
  public var perceptualDistance: Double
  /// The inverted classifier on reconstruction vs original: same top-1 class, cosine of logits.
  public var top1Agreement: Double
  public var logitCosine: Double
  /// The independent evaluation classifier names the original's true class from the reconstruction.
  public var evaluationAccuracy: Double
  /// … and from the originals themselves (the ceiling).
  public var evaluationAccuracyOnOriginals: Double
  /// Retrieval@N by perceptual distance (chance 1/N).
  public var retrieval: Double
  public var retrievalGroupSize: Int
  /// Mean pairwise perceptual distance between reconstructions of the same logits under
  /// different noise (0 for a deterministic decoder).
  public var noiseDiversity: Double
  /// Fréchet distance between the evaluation classifier's pooled features of reconstructions
  /// and of originals.
  public var frechetDistance: Double

  enum CodingKeys: String, CodingKey {
    case count, psnr, ssim, perceptualDistance = "perceptual_distance", top1Agreement = "top1_agreement"
    case logitCosine = "logit_cosine", evaluationAccuracy = "eval_accuracy"
    case evaluationAccuracyOnOriginals = "eval_accuracy_originals", retrieval, retrievalGroupSize = "retrieval_n"
    case noiseDiversity = "noise_diversity", frechetDistance = "frechet_distance"
  }
}

/// Runs the reconstruction experiment: reconstruct `count` held-out images and score them.
public enum ReconstructionAnalysis {
  /// The evaluation classifier's layers used for perceptual distances.
  /// An imported network offers every submodule's output; its two default layers stand in.
  public static func perceptualLayers(of network: any ImageClassifier) -> [String] {
    network.config.architecture.isImported ? network.defaultFeatureLayers : network.featureNames.filter { $0 != "pool" }
  }

  /// Reconstructions `[B, C, H, W]` of `images` from any inverter-like function of logits.
  public typealias Reconstructor = (_ logits: Tensor, _ seed: UInt64) throws -> Tensor

  /// Scores `reconstruct` on the first `count` images of `dataset`.
  public static func run(
    dataset: Dataset, count: Int, classifier: any ImageClassifier, evaluation: any ImageClassifier,
    retrievalGroupSize: Int = 10, noiseSamples: Int = 3, batchSize: Int = 100, reconstruct: Reconstructor
  ) throws -> (report: ReconstructionReport, originals: Tensor, reconstructions: Tensor) {
    let n = min(count, dataset.count)
    let layers = perceptualLayers(of: evaluation)
    var originals: [Tensor] = []
    var reconstructions: [Tensor] = []
    var samples: [[Tensor]] = Array(repeating: [], count: noiseSamples)
    var originalLogits: [Tensor] = []
    var labels: [Tensor] = []
    for start in stride(from: 0, to: n, by: batchSize) {
      let batch = try dataset.batch(at: Array(start..<min(start + batchSize, n)))
      let logits = try withNoGrad { try classifier.logits(batch.images) }  // on the classifier's device
      originals.append(batch.images.to(logits.device))
      originalLogits.append(logits)
      labels.append(batch.labels.to(logits.device))
      for k in 0..<noiseSamples {
        let images = try reconstruct(logits, UInt64(k))
        samples[k].append(images)
        if k == 0 { reconstructions.append(images) }
      }
    }
    let x = Tensor.cat(originals)
    let xHat = Tensor.cat(reconstructions)
    let logits = Tensor.cat(originalLogits)
    let truth = Tensor.cat(labels)
    let reconstructedLogits = try withNoGrad { try classifier.logits(xHat) }
    let evalOnReconstructions = try withNoGrad { try evaluation.logits(xHat).argmax(dim: 1) }
    let evalOnOriginals = try withNoGrad { try evaluation.logits(x).argmax(dim: 1) }
    let distances = try Metrics.perceptualDistanceMatrix(xHat, x, network: evaluation, layers: layers)  // [n, n]
    let pooledReal = try withNoGrad { try evaluation.features(x, names: ["pool"]).features["pool"]! }
    let pooledFake = try withNoGrad { try evaluation.features(xHat, names: ["pool"]).features["pool"]! }
    let (meanReal, covarianceReal) = Metrics.featureStatistics(pooledReal)
    let (meanFake, covarianceFake) = Metrics.featureStatistics(pooledFake)
    let diversity = noiseSamples >= 2
      ? try Metrics.noiseDiversity(samples.map { Tensor.cat($0) }, network: evaluation, layers: layers).mean().item() : 0
    let report = ReconstructionReport(
      count: n,
      psnr: Metrics.psnr(x, xHat).mean().item(),
      ssim: Metrics.ssim(x, xHat).mean().item(),
      perceptualDistance: try Metrics.perceptualDistance(x, xHat, network: evaluation, layers: layers).mean().item(),
      top1Agreement: Metrics.top1Agreement(logits, reconstructedLogits).mean().item(),
      logitCosine: Metrics.logitCosine(logits, reconstructedLogits).mean().item(),
      evaluationAccuracy: (evalOnReconstructions .== truth).to(.float32).mean().item(),
      evaluationAccuracyOnOriginals: (evalOnOriginals .== truth).to(.float32).mean().item(),
      retrieval: Metrics.retrieval(distances: distances, groupSize: retrievalGroupSize),
      retrievalGroupSize: retrievalGroupSize,
      noiseDiversity: diversity,
      frechetDistance: Metrics.frechetDistance(mean1: meanReal, covariance1: covarianceReal, mean2: meanFake, covariance2: covarianceFake))
    return (report, x, xHat)
  }
}
