import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// The rulers that read Shapes factors off reconstructions: the geometric one, the averaged
/// readings of a sampling generator, and the "satisfied, not drawn" gap.
final class RulerTests: XCTestCase {
  func shapes(_ count: Int) throws -> Batch {
    let dataset = try XCTUnwrap(try DatasetSource("shapes").open(split: .test, resolution: 32).dataset as? ShapesDataset)
    return try dataset.batch(at: Array(0..<count))
  }

  /// A box blur of side 2r + 1, as a soft reconstruction looks.
  func blurred(_ images: Tensor, radius: Int) -> Tensor {
    let side = 2 * radius + 1
    let window = Tensor.ones([3, 1, side, side]) / Double(side * side)
    return images.padded([radius, radius, radius, radius], mode: .replicate).conv2d(weight: window, groups: 3)
  }

  func testTheGeometricRulerReadsCleanShapes() throws {
    let batch = try shapes(300)
    let readings = GeometricRuler.read(batch.images)
    XCTAssertEqual(readings.shape, [300, 3])
    let ceiling = GeometricRuler.ceiling(originals: readings, factors: batch.factors!, labels: batch.labels.scalars(as: Int64.self).map(Int.init))
    print("geometric ruler on 300 clean originals: \(ceiling.mapValues { String(format: "%.3f", $0.value) })")
    XCTAssertGreaterThan(ceiling["centre_x"]!.value, 0.95, "the centroid is the glyph's area centroid")
    XCTAssertGreaterThan(ceiling["centre_y"]!.value, 0.95)
    XCTAssertGreaterThan(ceiling["size"]!.value, 0.7, "within a glyph class, √area grows with the radius")
  }

  func testTheGeometricRulerMeasuresAKnownBlobAndIgnoresBlur() {
    // A 6×8 bright block on a dark background, its centroid at (10 + 4, 5 + 3) pixels.
    var pixels = [Float](repeating: 0.2, count: 3 * 32 * 32)
    for channel in 0..<3 { for y in 5..<11 { for x in 10..<18 { pixels[channel * 1024 + y * 32 + x] = 0.9 } } }
    let image = Tensor(pixels, shape: [1, 3, 32, 32])
    let reading = GeometricRuler.read(image).scalars(as: Float.self)
    XCTAssertEqual(reading[0], 14.0 / 32, accuracy: 1e-5)
    XCTAssertEqual(reading[1], 8.0 / 32, accuracy: 1e-5)
    XCTAssertEqual(reading[2], (48.0 / 1024).squareRoot(), accuracy: 1e-5)
    // Blurred, measured at half height: the same place, about the same area.
    let soft = GeometricRuler.read(blurred(image, radius: 2)).scalars(as: Float.self)
    XCTAssertEqual(soft[0], reading[0], accuracy: 0.01)
    XCTAssertEqual(soft[1], reading[1], accuracy: 0.01)
    XCTAssertEqual(soft[2], reading[2], accuracy: 0.03)
    // Background alone: no glyph, a point at the centre.
    let empty = GeometricRuler.read(Tensor.ones([1, 3, 32, 32]) * 0.3).scalars(as: Float.self)
    XCTAssertEqual(empty, [0.5, 0.5, 0])
  }

  func testTheGeometricRulerAgreesWithItselfAndNotWithShuffledImages() throws {
    let batch = try shapes(200)
    let originals = GeometricRuler.read(batch.images)
    let same = GeometricRuler.agreement(reconstructions: GeometricRuler.read(blurred(batch.images, radius: 1)), originals: originals)
    let shuffled = GeometricRuler.agreement(
      reconstructions: GeometricRuler.read(batch.images.indexSelect(dim: 0, index: Tensor.randperm(200, generator: Generator(seed: 1)))),
      originals: originals)
    for factor in GeometricRuler.factors {
      XCTAssertGreaterThan(same[factor]!.value, 0.8, "\(factor): a slightly blurred copy keeps the layout")
      XCTAssertLessThan(shuffled[factor]!.value, 0, "\(factor): another image's layout explains nothing")
      XCTAssertTrue(shuffled[factor]!.hasInterval)
    }
  }

  /// Why readings are averaged over draws: a generator that draws a factor at random, from the
  /// right distribution, scores R² ≈ −1 on one draw (two independent draws' squared distance is
  /// twice the variance), and its average over S draws ≈ −1/S, while the probe's best guess
  /// without the factor scores 0. The average compares like with like.
  func testAveragingDrawsTakesARandomGeneratorFromMinusOneTowardZero() {
    let count = 2000, draws = 8
    let generator = Generator(seed: 5)
    let truth = Tensor.randn([count], generator: generator, dtype: .float64)
    let samples = (0..<draws).map { _ in Tensor.randn([count], generator: generator, dtype: .float64) }
    func rSquared(_ prediction: Tensor) -> Double {
      GeometricRuler.rSquared(predictions: prediction.scalars(as: Double.self), targets: truth.scalars(as: Double.self), resamples: 50).value
    }
    XCTAssertEqual(rSquared(samples[0]), -1, accuracy: 0.15)
    XCTAssertEqual(rSquared(Tensor.stack(samples).mean(dim: 0)), -1.0 / Double(draws), accuracy: 0.1)
  }

  /// The gap is paired per image: Φ agrees (1/0) − the evaluation classifier is right (1/0).
  func testTheDrawnGapIsAgreementLessEvaluationAccuracyPerImage() {
    XCTAssertEqual(ReconstructionReport.PerImageScores.drawnGap(agreement: [1, 1, 1, 0], evaluationCorrect: [1, 0, 0, 1]), [0, 1, 1, -1])
  }
}
