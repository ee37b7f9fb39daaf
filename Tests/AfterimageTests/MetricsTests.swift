import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

final class MetricsTests: XCTestCase {
  func testPSNRAndSSIMAgreeWithScikitImage() throws {
    let url = try temporaryDirectory().appendingPathComponent("skimage.safetensors")
    try runPython("skimage_metrics.py", [url.path])
    let file = try Safetensors.read(url)
    let a = try file.tensor("a")
    let b = try file.tensor("b")
    assertClose(Metrics.psnr(a, b), try file.tensor("psnr"), atol: 1e-9)
    assertClose(Metrics.ssim(a, b), try file.tensor("ssim"), atol: 1e-9)
    XCTAssertEqual(Metrics.ssim(a, a).min().item(), 1, accuracy: 1e-12)
    XCTAssertGreaterThan(Metrics.psnr(a, a).min().item(), 90, "identical images: PSNR capped only by the MSE floor")
  }

  func testFrechetDistanceIsZeroForIdenticalStatisticsAndMatchesTheClosedForm() {
    let features = Tensor.randn([500, 4], generator: Generator(seed: 1), dtype: .float64)
    let (mean, covariance) = Metrics.featureStatistics(features)
    XCTAssertEqual(Metrics.frechetDistance(mean1: mean, covariance1: covariance, mean2: mean, covariance2: covariance), 0, accuracy: 1e-9)
    // Diagonal covariances: ‖μ₁ − μ₂‖² + Σ (a + b − 2√(ab)).
    let m1 = Tensor([0, 1, 2] as [Double])
    let m2 = Tensor([1, 1, 0] as [Double])
    let a = [1.0, 4.0, 0.25]
    let b = [9.0, 1.0, 0.25]
    let expected = 1 + 0 + 4 + zip(a, b).map { $0 + $1 - 2 * ($0 * $1).squareRoot() }.reduce(0, +)
    let d = Metrics.frechetDistance(
      mean1: m1, covariance1: Tensor.eye(3, dtype: .float64) * Tensor(a), mean2: m2, covariance2: Tensor.eye(3, dtype: .float64) * Tensor(b))
    XCTAssertEqual(d, expected, accuracy: 1e-9)
    // A rotated (non-diagonal) pair: the distance does not depend on the basis.
    let (q, _) = Tensor.randn([3, 3], generator: Generator(seed: 2), dtype: .float64).qr()
    let rotate = { (c: Tensor) in q.matmul(c).matmul(q.t) }
    let rotated = Metrics.frechetDistance(
      mean1: q.matmul(m1), covariance1: rotate(Tensor.eye(3, dtype: .float64) * Tensor(a)),
      mean2: q.matmul(m2), covariance2: rotate(Tensor.eye(3, dtype: .float64) * Tensor(b)))
    XCTAssertEqual(rotated, expected, accuracy: 1e-8)
  }

  func testRetrievalIsOneForPerfectReconstructionsAndChanceForRandomOnes() {
    let n = 10
    let perfect = Tensor.ones([100, 100], dtype: .float64) - Tensor.eye(100, dtype: .float64)
    XCTAssertEqual(Metrics.retrieval(distances: perfect, groupSize: n), 1)
    let random = Tensor.rand([3000, 3000], generator: Generator(seed: 3), dtype: .float64)
    XCTAssertEqual(Metrics.retrieval(distances: random, groupSize: n), 1.0 / Double(n), accuracy: 0.03)
  }

  func testPerceptualDistanceAndItsMatrixAgree() throws {
    let config = ClassifierConfig(
      architecture: .evalnet, width: 0.25, channels: 3, resolution: 16, classNames: (0..<10).map { "class \($0)" },
      normalization: Normalization(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]))
    let network = try NetworkClassifier(config: config, generator: Generator(seed: 1))
    network.train(false)
    let a = Tensor.rand([4, 3, 16, 16], generator: Generator(seed: 2))
    let b = Tensor.rand([4, 3, 16, 16], generator: Generator(seed: 3))
    let layers = ["block1", "block2", "pool"]
    let pairwise = try Metrics.perceptualDistance(a, b, network: network, layers: layers)
    XCTAssertEqual(try Metrics.perceptualDistance(a, a, network: network, layers: layers).abs().max().item(), 0, accuracy: 1e-6)
    XCTAssertGreaterThan(pairwise.min().item(), 0)
    let matrix = try Metrics.perceptualDistanceMatrix(a, b, network: network, layers: layers)
    assertClose(matrix.diagonal(), pairwise, atol: 1e-4)
  }

  func testLogitAgreementAndRSquared() {
    let original = Tensor([3, 1, 0, 0, 2, 5] as [Float], shape: [2, 3])
    let reconstructed = Tensor([2, 0, 1, 4, 1, 0] as [Float], shape: [2, 3])
    XCTAssertEqual(Metrics.top1Agreement(original, reconstructed).scalars(as: Float.self), [1, 0])
    XCTAssertEqual(Metrics.logitCosine(original, original).scalars(as: Float.self)[1], 1, accuracy: 1e-6)
    let targets = Tensor.randn([200, 3], generator: Generator(seed: 4), dtype: .float64)
    XCTAssertEqual(Metrics.rSquared(predictions: targets, targets: targets).min().item(), 1, accuracy: 1e-12)
    let shuffled = targets.indexSelect(dim: 0, index: Tensor.randperm(200, generator: Generator(seed: 5)))
    XCTAssertLessThan(Metrics.rSquared(predictions: shuffled, targets: targets).max().item(), 0.1, "shuffled predictions explain nothing")
  }
}

final class FactorProbeTests: XCTestCase {
  static var probe: FactorProbe?
  static var test: Batch?

  /// The shipped factor regressor (models/eval/shapes-factors) on 400 test images of the
  /// shipped Shapes data set, shared by the tests below.
  func trainedProbe() throws -> (FactorProbe, Batch) {
    if let probe = Self.probe, let test = Self.test { return (probe, test) }
    let root = parityScripts.deletingLastPathComponent().deletingLastPathComponent()
    let regressor = try FactorRegressor.load(root.appendingPathComponent(FactorRegressor.shippedFolder).path)
    let dataset = try XCTUnwrap(try DatasetSource("shapes").open(split: .test, resolution: 32).dataset as? ShapesDataset)
    let probe = FactorProbe(regressor: regressor, dataset: dataset)
    let test = try dataset.batch(at: Array(0..<400))
    Self.probe = probe
    Self.test = test
    return (probe, test)
  }

  /// The ruler reaches: every visible factor is read off clean held-out images at the R² its
  /// factors.json records (within that interval's width), and nothing off shuffled ones.
  func testFactorRecoveryIsHighOnOriginalsAndNoneOnShuffledImages() throws {
    let (probe, test) = try trainedProbe()
    let labels = test.labels.scalars(as: Int64.self).map(Int.init)
    let originals = probe.recovery(images: test.images, factors: test.factors!, labels: labels).mapValues(\.value)
    print("factor R² on clean test images: \(originals.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", "))")
    let recorded = probe.regressor.record.ceiling
    for name in FactorResult.visibleFactors {
      let ceiling = try XCTUnwrap(recorded[name], name)
      XCTAssertEqual(originals[name]!, ceiling.value, accuracy: 3 * (ceiling.high - ceiling.low) + 0.02, "\(name): 400 images agree with the recorded ceiling")
      XCTAssertGreaterThan(originals[name]!, 0.6, "\(name) is readable from the images themselves")
    }
    let shuffle = Tensor.randperm(400, generator: Generator(seed: 2))
    let shuffled = probe.recovery(images: test.images.indexSelect(dim: 0, index: shuffle), factors: test.factors!, labels: labels).mapValues(\.value)
    for (name, value) in shuffled {
      XCTAssertLessThan(value, 0.15, "\(name): shuffled reconstructions carry nothing (R² \(value))")
    }
  }

  func testTheLogitProbeRecoversFactorsPresentInItsInputs() throws {
    let (probe, test) = try trainedProbe()
    let labels = test.labels.scalars(as: Int64.self).map(Int.init)
    // Fake "logits" that carry the object hue and the centre exactly, nothing else.
    func carrier(_ factors: [ShapeFactors]) -> Tensor {
      Tensor(factors.flatMap { [cos(2 * .pi * $0.objectHue), sin(2 * .pi * $0.objectHue), $0.centreX, $0.centreY] }, shape: [factors.count, 4])
    }
    let r2 = probe.logitProbe(
      trainLogits: carrier(test.factors!), trainFactors: test.factors!, trainLabels: labels,
      testLogits: carrier(test.factors!), testFactors: test.factors!, testLabels: labels, ridge: 1e-6)
    XCTAssertGreaterThan(r2["object_hue"]!, 0.99)
    XCTAssertGreaterThan(r2["centre_x"]!, 0.99)
    XCTAssertLessThan(r2["size"]!, 0.2, "size is not in the carrier")
  }

  func testTheMLPProbeFindsWhatTheLogitsHoldNonlinearly() throws {
    let (probe, test) = try trainedProbe()
    let labels = test.labels.scalars(as: Int64.self).map(Int.init)
    // A carrier holding the hue as a plain number h in [0, 1): the target (cos 2πh, sin 2πh) is
    // a smooth function of it, which a linear map cannot follow round the circle.
    let carrier = Tensor(test.factors!.map { $0.objectHue }, shape: [400, 1])
    let factors = test.factors!
    let linear = probe.logitProbe(
      trainLogits: carrier, trainFactors: factors, trainLabels: labels, testLogits: carrier, testFactors: factors, testLabels: labels)
    let dataset = try XCTUnwrap(try DatasetSource("shapes").open(split: .test, resolution: 32).dataset as? ShapesDataset)
    let mlp = RepresentationProbe(encoding: probe.encoding, symmetry: { dataset.rotationSymmetry(ofClass: $0) }).scores(
      train: carrier, trainFactors: factors, trainLabels: labels, test: carrier, testFactors: factors, testLabels: labels, epochs: 150
    ).mlp.mapValues(\.value)
    print("hue R² from a plain hue number: linear \(linear["object_hue"]!), MLP \(mlp["object_hue"]!)")
    XCTAssertLessThan(linear["object_hue"]!, 0.5)
    XCTAssertGreaterThan(mlp["object_hue"]!, 0.9)
    XCTAssertLessThan(mlp["size"]!, 0.2, "size is not in the carrier")
  }
}

final class ReconstructionAnalysisTests: XCTestCase {
  func network(_ seed: UInt64) throws -> NetworkClassifier {
    let config = ClassifierConfig(
      architecture: .evalnet, width: 0.25, channels: 3, resolution: 32, classNames: try ShapesDataset().classNames,
      normalization: Normalization(mean: [0.25, 0.25, 0.25], std: [0.2, 0.2, 0.2]))
    let classifier = try NetworkClassifier(config: config, generator: Generator(seed: seed))
    classifier.train(false)
    return classifier
  }

  func testPerfectAndRandomReconstructionsBracketTheMetrics() throws {
    let data = try ShapesDataset(split: .test, count: 40, seed: 3)
    let classifier = try network(1)
    let evaluation = try network(2)
    let originals = try data.batch(at: Array(0..<40)).images
    // A "perfect inverter" looks the original up by its logits; a random one draws noise.
    let perfect = try ReconstructionAnalysis.run(dataset: data, count: 40, classifier: classifier, evaluation: evaluation, noiseSamples: 2) { logits, _ in
      let all = withNoGrad { classifier.logits(originals) }
      let index = (all.unsqueezed(0) - logits.unsqueezed(1)).abs().sum(dim: 2).argmin(dim: 1)
      return originals.indexSelect(dim: 0, index: index)
    }.report
    XCTAssertEqual(perfect.retrieval, 1)
    XCTAssertEqual(perfect.top1Agreement, 1)
    XCTAssertEqual(perfect.ssim, 1, accuracy: 1e-6)
    XCTAssertEqual(perfect.noiseDiversity, 0, accuracy: 1e-6)
    XCTAssertEqual(perfect.frechetDistance, 0, accuracy: 1e-3)
    XCTAssertEqual(perfect.evaluationAccuracy, perfect.evaluationAccuracyOnOriginals)
    let random = try ReconstructionAnalysis.run(dataset: data, count: 40, classifier: classifier, evaluation: evaluation, noiseSamples: 2) { logits, seed in
      Tensor.rand([logits.shape[0], 3, 32, 32], generator: Generator(seed: seed + 10))
    }.report
    XCTAssertLessThan(random.psnr, perfect.psnr)
    XCTAssertLessThan(random.ssim, 0.2)
    XCTAssertLessThan(random.retrieval, 0.5)
    XCTAssertGreaterThan(random.noiseDiversity, 0)
    XCTAssertGreaterThan(random.frechetDistance, perfect.frechetDistance)
  }
}

final class ExperimentPiecesTests: XCTestCase {
  func testLogitManipulations() {
    let logits = Tensor([5, 1, 3, -2] as [Float], shape: [1, 4])
    let generator = Generator(seed: 0)
    XCTAssertEqual(LogitManipulation.shift.apply(logits, magnitude: 2, spread: 1, generator: generator).scalars(as: Float.self), [7, 3, 5, 0])
    XCTAssertEqual(LogitManipulation.scale.apply(logits, magnitude: 0.5, spread: 1, generator: generator).scalars(as: Float.self), [2.5, 0.5, 1.5, -1])
    XCTAssertEqual(LogitManipulation.topk.apply(logits, magnitude: 2, spread: 1, generator: generator).scalars(as: Float.self), [5, 3, 3, 3])
    XCTAssertEqual(LogitManipulation.topk.apply(logits, magnitude: 4, spread: 1, generator: generator).scalars(as: Float.self), [5, 1, 3, -2])
    let noisy = LogitManipulation.noise.apply(Tensor.zeros([1000, 4]), magnitude: 0.5, spread: 2, generator: generator)
    XCTAssertEqual(noisy.standardDeviation().item(), 1, accuracy: 0.05, "std = magnitude × spread")
    XCTAssertTrue(LogitManipulation.noise.apply(logits, magnitude: 0, spread: 2, generator: generator).equals(logits))
  }

  func testLineChartDrawsEverySeries() {
    let chart = LineChart(
      title: "a < b", xLabel: "x", yLabel: "y",
      series: [.init(name: "one", points: [(0, 1), (1, 2), (2, 4)]), .init(name: "two", points: [(0, 0), (2, .nan)])])
    let svg = chart.svg()
    XCTAssertTrue(svg.hasPrefix("<svg"))
    XCTAssertTrue(svg.hasSuffix("</svg>\n"))
    XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
    XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 4, "non-finite points are left out")
    XCTAssertTrue(svg.contains("a &lt; b"), "titles are escaped")
  }
}

final class ImageTransformTests: XCTestCase {
  func testTransformsDoWhatTheySay() {
    let generator = Generator(seed: 1)
    let images = Tensor.rand([2, 3, 16, 16], generator: generator)
    for transform in ImageTransform.allCases {
      for magnitude in transform.defaultMagnitudes {
        let out = transform.apply(images, magnitude: magnitude, generator: generator)
        XCTAssertEqual(out.shape, images.shape, "\(transform)")
        XCTAssertGreaterThanOrEqual(out.min().item(), -1e-6, "\(transform)")
        XCTAssertLessThanOrEqual(out.max().item(), 1 + 1e-6, "\(transform)")
        XCTAssertFalse(out.allClose(images, atol: 1e-4), "\(transform) \(magnitude) changes the image")
      }
    }
    // Exact cases: a full turn of hue is the identity; rotation by 90° of a centred pattern.
    XCTAssertTrue(ImageTransform.hueShift.apply(images, magnitude: 1, generator: generator).allClose(images.clamped(min: 0, max: 1), atol: 1e-4))
    XCTAssertTrue(ImageTransform.rotation.apply(images, magnitude: 0, generator: generator).allClose(images, atol: 1e-5))
    XCTAssertTrue(ImageTransform.translation.apply(images, magnitude: 0, generator: generator).allClose(images, atol: 1e-5))
    let gray = Tensor.full([1, 3, 4, 4], 0.5)
    XCTAssertTrue(ImageTransform.hueShift.apply(gray, magnitude: 0.3, generator: generator).allClose(gray, atol: 1e-3), "grays have no hue")
    let ramp = Tensor.arange(0, 16, dtype: .float32).reshaped([1, 1, 4, 4]) / 16
    let rotated = ImageTransform.rotation.apply(ramp, magnitude: 90, generator: generator)
    XCTAssertTrue(rotated.allClose(ramp.transposed(2, 3).flipped([2]), atol: 1e-4) || rotated.allClose(ramp.transposed(2, 3).flipped([3]), atol: 1e-4))
    let shifted = ImageTransform.translation.apply(ramp, magnitude: 0.25, generator: generator)  // one pixel right
    XCTAssertTrue(shifted.narrow(dim: 3, start: 1, length: 3).allClose(ramp.narrow(dim: 3, start: 0, length: 3), atol: 1e-4))
  }
}
