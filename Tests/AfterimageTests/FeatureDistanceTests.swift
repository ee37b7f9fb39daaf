import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// The one perceptual distance behind the metric and the inverter's perceptual loss.
final class FeatureDistanceTests: XCTestCase {
  /// Feature maps of the three shapes networks give: `[B, C, H, W]`, pooled `[B, C]`, tokens `[B, T, D]`.
  let shapes = [[3, 8, 5, 5], [3, 8], [3, 6, 8]]

  func testTheLossIsTheMetricAveragedOverImagesAndDividedByTheChannels() {
    for (index, shape) in shapes.enumerated() {
      let a = Tensor.randn(shape, generator: Generator(seed: UInt64(index)))
      let b = Tensor.randn(shape, generator: Generator(seed: UInt64(index + 10)))
      let perImage = FeatureDistance.perImage(a, b)
      XCTAssertEqual(perImage.shape, [3], "\(shape)")
      let channels = Double(FeatureDistance.channelCount(a))
      XCTAssertEqual(FeatureDistance.channelAveraged(a, b).item(), perImage.mean().item() / channels, accuracy: 1e-6, "\(shape)")
      XCTAssertEqual(FeatureDistance.perImage(a, a).abs().max().item(), 0, accuracy: 1e-6)
      // Unit channel vectors: their squared distance lies in [0, 4] at every position.
      XCTAssertLessThanOrEqual(perImage.max().item(), 4 + 1e-5)
    }
    XCTAssertEqual(FeatureDistance.positionCount(Tensor.zeros([2, 8, 5, 4])), 20)
    XCTAssertEqual(FeatureDistance.positionCount(Tensor.zeros([2, 6, 8])), 6, "a token is a position")
    XCTAssertEqual(FeatureDistance.channelCount(Tensor.zeros([2, 6, 8])), 8, "a token's channels are D")
  }

  /// The shipped numbers stay: for convolutional and pooled maps the helper computes exactly what
  /// the metric and the loss computed before they shared it.
  func testConvolutionalMapsGiveTheNumbersOfBeforeToTheBit() {
    func unitBefore(_ x: Tensor, _ axis: Int) -> Tensor { x / (x.pow(2).sum(dim: axis, keepDim: true) + 1e-10).sqrt() }
    for shape in shapes.prefix(2) {
      let a = Tensor.randn(shape, generator: Generator(seed: 1))
      let b = Tensor.randn(shape, generator: Generator(seed: 2))
      let difference = (unitBefore(a, 1) - unitBefore(b, 1)).pow(2).sum(dim: 1)
      let metricBefore = difference.rank > 1 ? difference.flattened(from: 1).mean(dims: [1]) : difference
      XCTAssertTrue(FeatureDistance.perImage(a, b).equals(metricBefore), "\(shape)")
    }
    for shape in shapes {
      let a = Tensor.randn(shape, generator: Generator(seed: 3))
      let b = Tensor.randn(shape, generator: Generator(seed: 4))
      let axis = shape.count == 3 ? 2 : 1
      XCTAssertTrue(FeatureDistance.channelAveraged(a, b).equals(Loss.mse(unitBefore(a, axis), unitBefore(b, axis))), "\(shape)")
    }
  }
}
