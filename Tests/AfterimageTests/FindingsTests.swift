@testable import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// The instrument behind the verdicts: same-class retrieval, bootstrap intervals, recovery
/// efficiency and the verdict rule.
final class FindingsTests: XCTestCase {
  /// Distances `[n, n]` from each "reconstruction" to each original, by squared feature distance.
  func distances(_ reconstructions: Tensor, _ originals: Tensor) -> Tensor {
    let x = reconstructions.flattened(from: 1)
    let y = originals.flattened(from: 1)
    return (x.pow(2).sum(dim: 1, keepDim: true) + y.pow(2).sum(dim: 1).unsqueezed(0) - x.matmul(y.t) * 2).clamped(min: 0)
  }

  func testSameClassRetrievalIsOneForPerfectReconstructionsAndChanceForShuffledOnes() {
    let n = 10
    let count = 2000
    let labels = (0..<count).map { $0 % 5 }
    // Each class's images share a class direction (what the class alone would give) plus
    // image-specific detail.
    let classDirections = Tensor.randn([5, 32], generator: Generator(seed: 3)) * 4
    let originals = classDirections.indexSelect(dim: 0, index: Tensor(labels.map(Int64.init))) + Tensor.randn([count, 32], generator: Generator(seed: 4))

    let perfect = Metrics.sameClassRetrievalHits(distances: distances(originals, originals), labels: labels, groupSize: n)
    XCTAssertEqual(perfect.compactMap { $0 }.count, count, "every class has at least N images")
    XCTAssertEqual(perfect.compactMap { $0 }.reduce(0, +), Double(count), "a perfect reconstruction always finds its own original")

    // Shuffled within each class: a reconstruction shows its class but another image's detail,
    // so the class alone is all it carries and retrieval falls to chance, 1/N.
    var shuffled = Array(0..<count)
    var generator = SplitMix64(seed: 9)
    for label in 0..<5 {
      let members = (0..<count).filter { labels[$0] == label }
      let permuted = members.shuffled(using: &generator)
      for (from, to) in zip(members, permuted) { shuffled[from] = to }
    }
    let impostors = originals.indexSelect(dim: 0, index: Tensor(shuffled.map(Int64.init)))
    let hits = Metrics.sameClassRetrievalHits(distances: distances(impostors, originals), labels: labels, groupSize: n).compactMap { $0 }
    XCTAssertEqual(hits.reduce(0, +) / Double(hits.count), 1 / Double(n), accuracy: 0.03)

    // Mixed retrieval on the same shuffled reconstructions is far above chance: it is won by the class.
    let mixed = Metrics.retrieval(distances: distances(impostors, originals), groupSize: n)
    XCTAssertGreaterThan(mixed, 0.15, "mixed candidates: about one in five shares the class, so the class alone wins often")
  }

  func testSameClassRetrievalLeavesOutClassesWithTooFewImages() {
    let labels = [0, 0, 0, 1, 1, 1, 1, 1]
    let points = Tensor.randn([8, 4], generator: Generator(seed: 1))
    let hits = Metrics.sameClassRetrievalHits(distances: distances(points, points), labels: labels, groupSize: 4)
    XCTAssertEqual(hits.prefix(3).compactMap { $0 }.count, 0, "class 0 has 3 images, fewer than N = 4")
    XCTAssertEqual(hits.suffix(5).compactMap { $0 }, [1, 1, 1, 1, 1])
  }

  func testBootstrapIntervalCoversTheTrueMeanAboutNinetyFivePercentOfTheTime() {
    // Exponential(1) samples of 100: a skewed distribution whose mean is known (1).
    var generator = SplitMix64(seed: 5)
    var covered = 0
    let trials = 400
    for trial in 0..<trials {
      let sample = (0..<100).map { _ in -Foundation.log(1 - generator.uniform()) }
      let estimate = Bootstrap.mean(sample, resamples: 400, seed: UInt64(trial))
      XCTAssertLessThanOrEqual(estimate.low, estimate.value)
      XCTAssertGreaterThanOrEqual(estimate.high, estimate.value)
      if estimate.low <= 1 && 1 <= estimate.high { covered += 1 }
    }
    let coverage = Double(covered) / Double(trials)
    // The percentile bootstrap undercovers a little for skewed data at n = 100 (about 93–94%);
    // 400 trials put the binomial spread at ±2.2 points.
    XCTAssertEqual(coverage, 0.95, accuracy: 0.045, "coverage \(coverage)")
  }

  func testPairedDifferenceCancelsWhatTheImagesShare() {
    // Two methods scored on the same images: a large per-image spread shared by both, and a
    // small constant advantage for b. Paired, the interval excludes 0; unpaired, it does not.
    var generator = SplitMix64(seed: 7)
    let shared = (0..<200).map { _ in 10 * generator.normal() }
    let a = shared.map { $0 + 0.1 * generator.normal() }
    let b = shared.map { $0 + 0.3 + 0.1 * generator.normal() }
    let paired = Bootstrap.meanDifference(b, a)
    XCTAssertEqual(paired.value, 0.3, accuracy: 0.05)
    XCTAssertGreaterThan(paired.low, 0)
    XCTAssertEqual(Bootstrap.independentDifference(b, a).side(of: 0), 0)
  }

  func testEfficiencyIsOneWhenReconstructionsCarryWhatTheLogitsDo() {
    let samples = (0..<300).map { index -> ShapeFactors in
      var r = SplitMix64(seed: 11, index: UInt64(index))
      return ShapeFactors(
        objectHue: r.uniform(), objectSaturation: r.uniform(0.6, 1), objectBrightness: r.uniform(0.6, 1), size: r.uniform(0.18, 0.34),
        centreX: r.uniform(), centreY: r.uniform(), rotation: r.uniform(0, 2 * .pi), backgroundHue: r.uniform(),
        backgroundBrightness: r.uniform(0.05, 0.45), textureNoise: r.uniform(0, 0.15))
    }
    let encoding = FactorEncoding(fitting: samples)
    let targets = encoding.encode(samples, symmetries: Array(repeating: 4, count: samples.count))
    // A probe that reads every target with noise: R² well below 1.
    let probe = targets + Tensor.randn(targets.shape, generator: Generator(seed: 2), dtype: targets.dtype) * 0.5
    let names = Set(ShapeFactors.names)
    // Reconstructions that carry exactly what the probe read: efficiency 1 with a tight interval.
    let same = encoding.efficiencyEstimates(predictions: probe, reference: probe, targets: targets, factors: names)
    for name in ShapeFactors.names {
      XCTAssertEqual(same[name]!.value, 1, accuracy: 1e-12, name)
      XCTAssertEqual(same[name]!.low, 1, accuracy: 1e-9, name)
    }
    // Reconstructions noisier than the probe: efficiency below 1, its interval too.
    let noisier = probe + Tensor.randn(targets.shape, generator: Generator(seed: 3), dtype: targets.dtype) * 0.5
    let lower = encoding.efficiencyEstimates(predictions: noisier, reference: probe, targets: targets, factors: ["size"])
    XCTAssertEqual(Set(lower.keys), ["size"], "only the factors asked for")
    XCTAssertLessThan(lower["size"]!.high, 1)
    // The ratio's value is the ratio of the two R².
    let r2 = encoding.rSquared(predictions: noisier, targets: targets)
    let r2Probe = encoding.rSquared(predictions: probe, targets: targets)
    XCTAssertEqual(lower["size"]!.value, r2["size"]! / r2Probe["size"]!, accuracy: 1e-9)
  }

  func testVerdictRuleOnConstructedResults() {
    XCTAssertEqual(Verdict.judging(Estimate(value: 0.2, low: 0.1, high: 0.3)), .holds, "a clear win for the paper")
    XCTAssertEqual(Verdict.judging(Estimate(value: -0.2, low: -0.3, high: -0.1)), .doesNotHold, "a clear loss")
    XCTAssertEqual(Verdict.judging(Estimate(value: 0.05, low: -0.05, high: 0.15)), .inconclusive, "an overlap")
    XCTAssertEqual(Verdict.judging(nil), .notMeasured)
    XCTAssertEqual(Verdict.judging(Estimate(value: .nan, low: .nan, high: .nan)), .notMeasured)
  }

  /// Per-image scores for a constructed report: `hits` same-class retrieval outcomes, and
  /// noise diversities.
  func report(sameClass hits: [Float], diversity: [Float], correct: [Float]) -> ReconstructionReport {
    let n = hits.count
    let zeros = [Float](repeating: 0, count: n)
    let perImage = ReconstructionReport.PerImageScores(
      psnr: zeros, ssim: zeros, perceptualDistance: zeros, top1Agreement: zeros, evaluationCorrect: correct,
      retrieval: hits, sameClassRetrieval: hits, noiseDiversity: diversity)
    func mean(_ values: [Float]) -> Estimate { Bootstrap.mean(values.map(Double.init)) }
    return ReconstructionReport(
      count: n, psnr: 0, ssim: 0, perceptualDistance: 0, top1Agreement: 0, logitCosine: 1, evaluationAccuracy: mean(correct).value,
      evaluationAccuracyOnOriginals: 0.9, retrieval: 0, retrievalGroupSize: 10, noiseDiversity: mean(diversity).value, frechetDistance: 0,
      sameClassRetrieval: mean(hits).value,
      intervals: .init(
        psnr: mean(zeros), ssim: mean(zeros), perceptualDistance: mean(zeros), top1Agreement: mean(zeros), evaluationAccuracy: mean(correct),
        retrieval: mean(hits), sameClassRetrieval: mean(hits), noiseDiversity: mean(diversity), frechetDistance: nil),
      perImage: perImage)
  }

  /// Seeded per-image scores for constructed reports: 0/1 outcomes with probability `p`, and
  /// values spread (sd 0.05) around a mean; 400 images unless told.
  final class ScoreDraws {
    var generator: SplitMix64
    init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    func outcomes(_ p: Double, _ n: Int = 400) -> [Float] { (0..<n).map { _ in generator.uniform() < p ? 1 : 0 } }
    func spread(_ mean: Double, _ n: Int = 400) -> [Float] { (0..<n).map { _ in Float(mean + 0.05 * generator.normal()) } }
  }

  /// Calibration gates the verdicts: a failed check turns every measured verdict into
  /// "instrument not calibrated", keeping its number and saying why; a pass changes nothing.
  func testCalibrationGatesTheVerdictsWithItsNumbers() {
    let draws = ScoreDraws(seed: 2)
    var inputs = FindingInputs(dataset: "constructed")
    inputs.standard = report(sameClass: draws.outcomes(0.3), diversity: draws.spread(0.5), correct: draws.outcomes(0.8))
    inputs.robust = report(sameClass: draws.outcomes(0.6), diversity: draws.spread(0.8), correct: draws.outcomes(0.85))
    let ungated = inputs.verdicts()
    func check(_ inverter: String, efficiency: Double?, accuracy: Double, gap: Double, disagree: [String] = []) -> Calibration.Check {
      Calibration.Check(
        inverter: inverter, efficiency: efficiency.map { ["size": Estimate(value: $0, low: $0 - 0.1, high: $0 + 0.1)] }, rulersDisagree: disagree,
        evaluationAccuracy: accuracy, evaluationAccuracyOnOriginals: 0.9, gap: Estimate(value: gap, low: gap - 0.02, high: gap + 0.02))
    }
    // Passing: efficiency 0.8 ≥ 0.5, 0.8/0.9 ≥ 0.8, gap 5 points ≤ 10.
    inputs.calibration = Calibration(dataset: "constructed", checks: [check("standard-fidelity", efficiency: 0.8, accuracy: 0.8, gap: 0.05)])
    XCTAssertTrue(inputs.calibration!.passes, inputs.calibration!.line)
    XCTAssertEqual(inputs.verdicts().map(\.verdict), ungated.map(\.verdict), "a calibrated instrument changes no verdict")
    // Each threshold alone fails it, and the line names the number.
    for (failing, says) in [
      (check("robust-fidelity", efficiency: 0.3, accuracy: 0.8, gap: 0.05), "size recovery efficiency 0.30 < 0.5"),
      (check("robust-fidelity", efficiency: nil, accuracy: 0.5, gap: 0.05), "eval accuracy 50.0% is 0.556 of the originals' 90.0% (< 0.8)"),
      (check("robust-fidelity", efficiency: 0.8, accuracy: 0.8, gap: 0.37), "gap +37.0 points > 10"),
      (check("robust-fidelity", efficiency: 0.8, accuracy: 0.8, gap: 0.05, disagree: ["size"]), "the two rulers disagree on size"),
    ] {
      inputs.calibration = Calibration(dataset: "constructed", checks: [check("standard-fidelity", efficiency: 0.8, accuracy: 0.8, gap: 0.05), failing])
      XCTAssertFalse(inputs.calibration!.passes)
      XCTAssertTrue(inputs.calibration!.line.contains("NOT calibrated: robust-fidelity \(says)"), inputs.calibration!.line)
      for (gated, original) in zip(inputs.verdicts(), ungated) {
        if original.verdict == .notMeasured {
          XCTAssertEqual(gated.verdict, .notMeasured, "nothing measured, nothing to gate")
        } else {
          XCTAssertEqual(gated.verdict, .instrumentNotCalibrated, "finding \(gated.finding)")
          XCTAssertEqual(gated.effect, original.effect, "the number is kept")
          XCTAssertTrue(gated.evidence.last!.contains("\(original.verdict.rawValue) as measured, but the constructed instrument is not calibrated"), gated.evidence.last!)
        }
      }
    }
    XCTAssertEqual(Verdict(rawValue: "instrument not calibrated"), .instrumentNotCalibrated, "results.json spells it so")
  }

  func testFindingVerdictsFromConstructedReports() {
    let draws = ScoreDraws(seed: 1)
    var inputs = FindingInputs(dataset: "constructed")
    // Robust: clearly more same-class retrieval, clearly *more* noise diversity (against the
    // paper), recognised 80% of the time.
    inputs.standard = report(sameClass: draws.outcomes(0.3), diversity: draws.spread(0.5), correct: draws.outcomes(0.7))
    inputs.robust = report(sameClass: draws.outcomes(0.6), diversity: draws.spread(0.8), correct: draws.outcomes(0.8))
    let verdicts = Dictionary(uniqueKeysWithValues: inputs.verdicts().map { ($0.finding, $0) })
    XCTAssertEqual(verdicts[1]?.verdict, .holds, "80% recognised: above half")
    XCTAssertEqual(verdicts[2]?.verdict, .holds, "standard same-class retrieval 0.3 > chance 0.1")
    XCTAssertEqual(verdicts[3]?.verdict, .holds, "robust retrieves more, paired")
    XCTAssertEqual(verdicts[4]?.verdict, .doesNotHold, "robust changes more with the noise: the opposite of the paper")
    XCTAssertEqual(verdicts[5]?.verdict, .notMeasured, "no misclassified images given")
    XCTAssertEqual(verdicts[7]?.verdict, .notMeasured)

    // Equal classifiers: the robust-vs-standard comparison overlaps zero.
    let same = draws.outcomes(0.4)
    inputs.standard = report(sameClass: same, diversity: draws.spread(0.5), correct: draws.outcomes(0.7))
    inputs.robust = report(sameClass: same.map { $0 }, diversity: draws.spread(0.5), correct: draws.outcomes(0.7))
    XCTAssertEqual(inputs.robustKeepsMore().verdict, .inconclusive)

    // Misclassified drift: 30 of 40 named as the predicted class, 5 as the true one.
    inputs.misclassifiedRobust = try! JSONDecoder().decode(
      ClassExperiments.Drift.self, from: Data(#"{"count": 40, "eval_says_true_class": 0.125, "eval_says_predicted_class": 0.75}"#.utf8))
    XCTAssertEqual(inputs.misclassifiedDrift().verdict, .holds)
    XCTAssertEqual(inputs.misclassifiedDrift().effect!.value, 0.75 - 0.125, accuracy: 1e-12)

    // Transformations: one followed, one ignored → holds; all ignored → does not hold.
    func point(_ name: String, _ low: Double, _ high: Double) -> TransformPoint {
      var point = TransformPoint(transform: name, magnitude: 1, equivarianceError: 0, change: 0)
      point.followed = Estimate(value: (low + high) / 2, low: low, high: high)
      return point
    }
    inputs.transformsRobust = [point("flip", 0.1, 0.3), point("hue", -0.3, -0.1)]
    XCTAssertEqual(inputs.transformations().verdict, .holds)
    inputs.transformsRobust = [point("flip", -0.2, -0.1), point("hue", -0.3, -0.1)]
    XCTAssertEqual(inputs.transformations().verdict, .doesNotHold)
    inputs.transformsRobust = [point("flip", -0.2, 0.1), point("hue", -0.3, -0.1)]
    XCTAssertEqual(inputs.transformations().verdict, .inconclusive)
  }

  func testSeedStudyPoolsSeedsAndCallsADifferenceOnlyWhenItsIntervalExcludesZero() {
    let draws = ScoreDraws(seed: 21)
    func outcomes(_ p: Double) -> [Float] { draws.outcomes(p, 300) }
    func spread(_ mean: Double) -> [Float] { draws.spread(mean, 300) }
    // Three seeds: robust retrieves clearly more; diversity the same for both.
    let pairs = (0..<3).map { seed in
      SeedStudyResult.Pair(
        standard: "s\(seed)", robust: "r\(seed)",
        standardReport: report(sameClass: outcomes(0.2), diversity: spread(0.5), correct: outcomes(0.8)),
        robustReport: report(sameClass: outcomes(0.5), diversity: spread(0.5), correct: outcomes(0.8)))
    }
    let study = SeedStudyResult(dataset: "constructed", count: 300, pairs: pairs)
    let retrieval = study.comparison(named: "same-class retrieval@10")!
    XCTAssertEqual(retrieval.perSeed.count, 3)
    XCTAssertEqual(retrieval.pooled.value, 0.3, accuracy: 0.06)
    XCTAssertTrue(retrieval.isDifference)
    XCTAssertTrue(retrieval.seedsAgree)
    XCTAssertGreaterThan(retrieval.standardSpread, 0, "three draws differ")
    let diversity = study.comparison(named: "noise diversity")!
    XCTAssertFalse(diversity.isDifference, "equal diversity: \(diversity.pooled)")
    // The pooled difference is the mean of the per-seed ones (same images in every seed).
    XCTAssertEqual(retrieval.pooled.value, retrieval.perSeed.map(\.value).reduce(0, +) / 3, accuracy: 1e-9)
    // A seed study decides finding 3 in place of the single run.
    var inputs = FindingInputs(dataset: "constructed")
    inputs.standard = pairs[0].robustReport
    inputs.robust = pairs[0].standardReport  // the single run says the opposite …
    XCTAssertEqual(inputs.robustKeepsMore().verdict, .doesNotHold)
    inputs.seeds = study  // … the seeds decide
    XCTAssertEqual(inputs.robustKeepsMore().verdict, .holds)
  }

  func testFactorRegressorRoundTripsAndRefusesWhatIsNotOne() throws {
    let folder = try temporaryDirectory()
    let train = try ShapesDataset(split: .train, resolution: 32, count: 256, seed: 1)
    let test = try ShapesDataset(split: .test, resolution: 32, count: 64, seed: 1)
    var options = FactorRegressor.Options()
    (options.trainCount, options.epochs, options.batchSize, options.width, options.heldOutCount) = (256, 1, 64, 0.25, 64)
    let regressor = try FactorRegressor.train(on: train, test: test, options: options)
    XCTAssertEqual(Set(regressor.record.ceiling.keys), Set(ShapeFactors.names), "a ceiling for every factor")
    XCTAssertGreaterThan(regressor.record.ceiling["centre_x"]!.value, 0.2, "even one short epoch reads position (coordinate channels)")
    let run = RunDirectory(url: folder.appendingPathComponent("factors"))
    try regressor.save(to: run, command: "afterimage analyze factor-regressor --out factors")
    let loaded = try FactorRegressor.load(run.url.path)
    let images = try test.batch(at: Array(0..<8)).images
    assertClose(loaded.predict(images), regressor.predict(images), atol: 1e-6)
    XCTAssertEqual(loaded.record.command, "afterimage analyze factor-regressor --out factors")
    XCTAssertEqual(loaded.encoding.statistics.means, regressor.encoding.statistics.means)
    // A classifier folder is not a regressor; a damaged record names its field.
    XCTAssertThrowsError(try FactorRegressor.load(folder.path)) { XCTAssertTrue("\($0)".contains("no factors.json"), "\($0)") }
    try Data(#"{"schemaVersion": 1, "dataset": "shapes"}"#.utf8).write(to: FactorRegressor.recordURL(in: run))
    XCTAssertThrowsError(try FactorRegressor.load(run.url.path)) { XCTAssertTrue("\($0)".contains("means"), "\($0)") }
  }

  func testTooFewImagesGiveNoIntervalAndNoVerdictAndStillWriteJSON() throws {
    XCTAssertFalse(Bootstrap.mean([1]).hasInterval, "one image: no interval, not a zero-width one")
    XCTAssertFalse(Bootstrap.mean([]).hasInterval)
    XCTAssertEqual(Verdict.judging(Bootstrap.mean([1])), .notMeasured)
    // Finding 5 on a single misclassified image: not measured, not "holds".
    var inputs = FindingInputs(dataset: "tiny")
    inputs.misclassifiedRobust = try JSONDecoder().decode(
      ClassExperiments.Drift.self, from: Data(#"{"count": 1, "eval_says_true_class": 0, "eval_says_predicted_class": 1}"#.utf8))
    XCTAssertEqual(inputs.misclassifiedDrift().verdict, .notMeasured)
    // Finding 6 from logit-noise files that recorded no image count: not measured.
    inputs.logitNoiseRobust = ManipulationPoint(magnitude: 1, perceptualChange: 0.1, psnrToBaseline: 20, top1Agreement: 0.9, evaluationAccuracy: 0.8)
    inputs.logitNoiseStandard = ManipulationPoint(magnitude: 1, perceptualChange: 0.3, psnrToBaseline: 15, top1Agreement: 0.2, evaluationAccuracy: 0.5)
    XCTAssertEqual(inputs.logitNoise().verdict, .notMeasured)
    // With counts: robust keeps 90% of 64, standard 20%: holds.
    inputs.logitNoiseCount = (64, 64)
    XCTAssertEqual(inputs.logitNoise().verdict, .holds)
    XCTAssertEqual(inputs.logitNoise().effect!.value, 0.7, accuracy: 0.02)
    // A headline whose numbers lack intervals still encodes (JSON has no NaN: nulls).
    let headline = DemoHeadline(rows: [], findings: [.init(dataset: "tiny", finding: "probe", standard: Estimate.unknown(0.5), robust: nil)],
                                verdicts: inputs.verdicts())
    let data = try JSONEncoder().encode(headline)
    let back = try JSONDecoder().decode(DemoHeadline.self, from: data)
    XCTAssertEqual(back.findings[0].standard, 0.5)
    XCTAssertFalse(back.findings[0].standardInterval!.hasInterval)
    XCTAssertEqual(back.verdicts?.count, 7)
  }
}
