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
