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
  /// Same-class retrieval@N (`Metrics.sameClassRetrievalHits`): chance 1/N, and only what is
  /// beyond the class wins. Absent in files written before it was measured.
  public var sameClassRetrieval: Double?
  /// Satisfied but not drawn: `top1Agreement − evaluationAccuracy`, paired per image. A
  /// reconstruction the inverted classifier still reads as the original's class but the
  /// independent one cannot name carries a pattern only Φ reads, not a drawing of the class
  /// (docs/SCIENCE.md, "Drawn, not just satisfied"). Absent in older files.
  public var drawnGap: Double?
  /// 95% bootstrap intervals over images of the scores above (absent in older files).
  public var intervals: Intervals?
  /// Each image's scores, in the order of the held-out set, so that two methods scored on the
  /// same images can be compared pair by pair (absent in older files).
  public var perImage: PerImageScores?

  /// The bootstrap intervals of a report's scores.
  public struct Intervals: Codable {
    public var psnr, ssim, perceptualDistance, top1Agreement, evaluationAccuracy, retrieval: Estimate
    public var sameClassRetrieval, noiseDiversity, frechetDistance, drawnGap: Estimate?
    enum CodingKeys: String, CodingKey {
      case psnr, ssim, perceptualDistance = "perceptual_distance", top1Agreement = "top1_agreement", evaluationAccuracy = "eval_accuracy"
      case retrieval, sameClassRetrieval = "same_class_retrieval", noiseDiversity = "noise_diversity", frechetDistance = "frechet_distance"
      case drawnGap = "drawn_gap"
    }
  }

  /// One value per held-out image (float32 is plenty for scores and keeps results.json small).
  /// Retrieval hits are 1 or 0, and nil for images outside the scored groups.
  public struct PerImageScores: Codable {
    public var psnr, ssim, perceptualDistance, top1Agreement, evaluationCorrect: [Float]
    public var retrieval, sameClassRetrieval: [Float?]
    public var noiseDiversity: [Float]?
    enum CodingKeys: String, CodingKey {
      case psnr, ssim, perceptualDistance = "perceptual_distance", top1Agreement = "top1_agreement", evaluationCorrect = "eval_correct"
      case retrieval, sameClassRetrieval = "same_class_retrieval", noiseDiversity = "noise_diversity"
    }
  }

  enum CodingKeys: String, CodingKey {
    case count, psnr, ssim, perceptualDistance = "perceptual_distance", top1Agreement = "top1_agreement"
    case logitCosine = "logit_cosine", evaluationAccuracy = "eval_accuracy"
    case evaluationAccuracyOnOriginals = "eval_accuracy_originals", retrieval, retrievalGroupSize = "retrieval_n"
    case noiseDiversity = "noise_diversity", frechetDistance = "frechet_distance", sameClassRetrieval = "same_class_retrieval"
    case drawnGap = "drawn_gap", intervals, perImage = "per_image"
  }
}

extension ReconstructionReport.PerImageScores {
  /// The columns as `scores.csv` has them (the first draw's reconstruction of each image).
  public var table: ScoreTable {
    var table = ScoreTable()
    table.add("psnr", psnr)
    table.add("ssim", ssim)
    table.add("perceptual_distance", perceptualDistance)
    table.add("top1_agreement", top1Agreement)
    table.add("eval_correct", evaluationCorrect)
    table.add("drawn_gap", drawnGap)
    table.add("retrieval", retrieval)
    table.add("same_class_retrieval", sameClassRetrieval)
    if let noiseDiversity { table.add("noise_diversity", noiseDiversity) }
    return table
  }

  /// Per image: Φ agrees with the original's top-1 class (1/0) − the evaluation classifier
  /// names the true class (1/0); the mean is `ReconstructionReport.drawnGap`.
  public var drawnGap: [Double] { Self.drawnGap(agreement: top1Agreement, evaluationCorrect: evaluationCorrect) }

  /// `agreement[i] − evaluationCorrect[i]` per image.
  public static func drawnGap(agreement: [Float], evaluationCorrect: [Float]) -> [Double] {
    zip(agreement, evaluationCorrect).map { Double($0) - Double($1) }
  }

  /// The non-nil values of a per-image column, as doubles.
  static func present(_ values: [Float?]) -> [Double] { values.compactMap { $0.map(Double.init) } }

  /// Pairs of one score for the images both columns have, `(a[i], b[i])`.
  public static func paired(_ a: [Float?], _ b: [Float?]) -> (a: [Double], b: [Double]) {
    let pairs = zip(a, b).compactMap { x, y -> (Double, Double)? in
      guard let x, let y else { return nil }
      return (Double(x), Double(y))
    }
    return (pairs.map(\.0), pairs.map(\.1))
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
  /// Images from the classifier's `representation` of a batch (`[B, D]`: its logits, or the
  /// inverted feature vector) and a noise seed.
  public typealias Reconstructor = (_ representation: Tensor, _ seed: UInt64) throws -> Tensor

  /// Scores `reconstruct` on the first `count` images of `dataset`: the report, the originals
  /// and the first draw's reconstructions.
  public static func run(
    dataset: Dataset, count: Int, classifier: any ImageClassifier, evaluation: any ImageClassifier,
    retrievalGroupSize: Int = 10, noiseSamples: Int = 3, batchSize: Int = 100, representation: Representation = .logits,
    reconstruct: Reconstructor
  ) throws -> (report: ReconstructionReport, originals: Tensor, reconstructions: Tensor) {
    let scored = try score(
      dataset: dataset, count: count, classifier: classifier, evaluation: evaluation, retrievalGroupSize: retrievalGroupSize,
      noiseSamples: noiseSamples, batchSize: batchSize, representation: representation, reconstruct: reconstruct)
    return (scored.report, scored.arrays.originals, scored.arrays.reconstructions.select(dim: 1, index: 0))
  }

  /// `run`'s report, with every draw's reconstructions, the representation and the top-1
  /// classes kept as arrays (`ReconstructionArrays`), and each image's scores as a table.
  public static func score(
    dataset: Dataset, count: Int, classifier: any ImageClassifier, evaluation: any ImageClassifier,
    retrievalGroupSize: Int = 10, noiseSamples: Int = 3, batchSize: Int = 100, representation: Representation = .logits,
    reconstruct: Reconstructor
  ) throws -> (report: ReconstructionReport, arrays: ReconstructionArrays, scores: ScoreTable) {
    let n = min(count, dataset.count)
    // All n are scored together: n² distances and every image's features at once.
    try ResourceLimits.checkScoring(
      count: n, channels: dataset.channels, side: dataset.resolution, copies: noiseSamples + 1, pairwise: 3, fix: "score fewer images with --count")
    let layers = perceptualLayers(of: evaluation)
    var originals: [Tensor] = []
    var reconstructions: [Tensor] = []
    var samples: [[Tensor]] = Array(repeating: [], count: noiseSamples)
    var originalLogits: [Tensor] = []
    var codes: [Tensor] = []
    var labels: [Tensor] = []
    var factors: [ShapeFactors] = []
    for start in stride(from: 0, to: n, by: batchSize) {
      let batch = try dataset.batch(at: Array(start..<min(start + batchSize, n)))
      let logits = try withNoGrad { try classifier.logits(batch.images) }  // on the classifier's device
      let code = representation == .logits ? logits : try withNoGrad { try classifier.represent(batch.images, as: representation) }
      originals.append(batch.images.to(logits.device))
      originalLogits.append(logits)
      codes.append(code)
      factors += batch.factors ?? []
      labels.append(batch.labels.to(logits.device))
      for k in 0..<noiseSamples {
        let images = try reconstruct(code, UInt64(k))
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
    let diversityPerImage = noiseSamples >= 2
      ? try Metrics.noiseDiversity(samples.map { Tensor.cat($0) }, network: evaluation, layers: layers) : nil
    let diversity = diversityPerImage?.mean().item() ?? 0
    func column(_ values: Tensor) -> [Float] { values.to(.cpu, dtype: .float32).scalars(as: Float.self) }
    // Each per-image score once ([n]); the report's means and the stored columns both read it.
    let psnr = Metrics.psnr(x, xHat)
    let ssim = Metrics.ssim(x, xHat)
    let perceptual = try Metrics.perceptualDistance(x, xHat, network: evaluation, layers: layers)
    let agreement = Metrics.top1Agreement(logits, reconstructedLogits)
    let retrievalHits = Metrics.retrievalHits(distances: distances, groupSize: retrievalGroupSize)
    let perImage = ReconstructionReport.PerImageScores(
      psnr: column(psnr), ssim: column(ssim), perceptualDistance: column(perceptual), top1Agreement: column(agreement),
      evaluationCorrect: column((evalOnReconstructions .== truth).to(.float32)),
      retrieval: (0..<n).map { $0 < retrievalHits.count ? Float(retrievalHits[$0]) : nil },
      sameClassRetrieval: Metrics.sameClassRetrievalHits(
        distances: distances, labels: truth.to(.cpu).scalars(as: Int64.self).map(Int.init), groupSize: retrievalGroupSize
      ).map { $0.map(Float.init) },
      noiseDiversity: diversityPerImage.map(column))
    let frechet = frechetEstimate(real: pooledReal, fake: pooledFake)
    let report = ReconstructionReport(
      count: n,
      psnr: psnr.mean().item(),
      ssim: ssim.mean().item(),
      perceptualDistance: perceptual.mean().item(),
      top1Agreement: agreement.mean().item(),
      logitCosine: Metrics.logitCosine(logits, reconstructedLogits).mean().item(),
      evaluationAccuracy: (evalOnReconstructions .== truth).to(.float32).mean().item(),
      evaluationAccuracyOnOriginals: (evalOnOriginals .== truth).to(.float32).mean().item(),
      retrieval: Metrics.retrieval(distances: distances, groupSize: retrievalGroupSize),
      retrievalGroupSize: retrievalGroupSize,
      noiseDiversity: diversity,
      frechetDistance: frechet.value,
      sameClassRetrieval: mean(perImage.sameClassRetrieval),
      drawnGap: perImage.drawnGap.reduce(0, +) / Double(max(n, 1)),
      intervals: intervals(of: perImage, frechet: frechet),
      perImage: perImage)
    let draws = Tensor.stack(samples.map { Tensor.cat($0) }, dim: 1)  // [n, S, C, H, W]
    var arrays = ReconstructionArrays(originals: x, reconstructions: draws, representation: Tensor.cat(codes), labels: truth)
    // Every draw's top-1 classes, [n, S]; draw 0 is the one scored above.
    func classes(by network: any ImageClassifier) throws -> Tensor {
      try withNoGrad { Tensor.stack(try samples.map { try network.logits(Tensor.cat($0)).argmax(dim: 1) }, dim: 1) }
    }
    arrays.predictions = [
      ("classifier_originals", logits.argmax(dim: 1)), ("classifier_reconstructions", try classes(by: classifier)),
      ("evaluation_originals", evalOnOriginals), ("evaluation_reconstructions", try classes(by: evaluation)),
    ]
    arrays.factors = factors.count == n ? factors : nil
    return (report, arrays, perImage.table)
  }

  /// The mean of a column's present values (nil when none is).
  static func mean(_ values: [Float?]) -> Double? {
    let present = ReconstructionReport.PerImageScores.present(values)
    return present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
  }

  /// The bootstrap interval of every per-image score.
  static func intervals(of scores: ReconstructionReport.PerImageScores, frechet: Estimate) -> ReconstructionReport.Intervals {
    func interval(_ values: [Float]) -> Estimate { Bootstrap.mean(values.map(Double.init)) }
    func interval(_ values: [Float?]) -> Estimate? {
      let present = ReconstructionReport.PerImageScores.present(values)
      return present.isEmpty ? nil : Bootstrap.mean(present)
    }
    return ReconstructionReport.Intervals(
      psnr: interval(scores.psnr), ssim: interval(scores.ssim), perceptualDistance: interval(scores.perceptualDistance),
      top1Agreement: interval(scores.top1Agreement), evaluationAccuracy: interval(scores.evaluationCorrect),
      retrieval: interval(scores.retrieval) ?? Estimate(value: .nan, low: .nan, high: .nan),
      sameClassRetrieval: interval(scores.sameClassRetrieval), noiseDiversity: scores.noiseDiversity.map(interval), frechetDistance: frechet,
      drawnGap: Bootstrap.mean(scores.drawnGap))
  }

  /// The Fréchet distance of pooled features `real [N, D]` and `fake [N, D]` (row i of each
  /// from image i), with a bootstrap interval over images: both sides are resampled with the
  /// same rows. Fewer resamples than for a mean, as each costs an eigendecomposition. A
  /// resample holds about 63% distinct images, which inflates the distance, so the interval is
  /// the basic bootstrap's (the percentiles reflected about the estimate: [2θ − q₉₇.₅, 2θ − q₂.₅],
  /// floored at 0), which corrects that shift where the percentile interval would carry it.
  static func frechetEstimate(real: Tensor, fake: Tensor, resamples: Int = 200) -> Estimate {
    let (real, fake) = (real.to(.cpu, dtype: .float64), fake.to(.cpu, dtype: .float64))
    let percentile = Bootstrap.estimate(count: real.shape[0], resamples: resamples) { rows in
      let index = Tensor(rows.map(Int64.init))
      let (meanReal, covarianceReal) = Metrics.featureStatistics(real.indexSelect(dim: 0, index: index))
      let (meanFake, covarianceFake) = Metrics.featureStatistics(fake.indexSelect(dim: 0, index: index))
      return Metrics.frechetDistance(mean1: meanReal, covariance1: covarianceReal, mean2: meanFake, covariance2: covarianceFake)
    }
    guard percentile.hasInterval else { return percentile }
    let value = percentile.value
    return Estimate(value: value, low: max(0, 2 * value - percentile.high), high: max(0, 2 * value - percentile.low))
  }
}
