@testable import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// The degradations the factor regressor is trained on: what they change, what they keep
/// (hue), and the records that say how a regressor was trained.
final class ReconstructionDegradationTests: XCTestCase {
  /// Images `[4, 3, 8, 8]` in [0.3, 0.7], so no degradation here reaches the clip at 0 or 1.
  func midRangeImages() -> Tensor {
    Tensor.rand([4, 3, 8, 8], generator: Generator(seed: 3)) * 0.4 + 0.3
  }

  func testNothingChangesAtProbabilityZeroAndEveryImageChangesAtOne() {
    var degradation = ReconstructionDegradation()
    degradation.probability = 0
    let images = midRangeImages()
    assertClose(degradation.apply(images, generator: Generator(seed: 0)), images, atol: 0)
    degradation.probability = 1
    let degraded = degradation.apply(images, generator: Generator(seed: 0))
    XCTAssertEqual(degraded.shape, images.shape)
    for index in 0..<4 {
      XCTAssertGreaterThan((degraded[index] - images[index]).abs().max().item(), 1e-3, "image \(index) was degraded")
    }
    XCTAssertGreaterThanOrEqual(degraded.min().item(), 0)
    XCTAssertLessThanOrEqual(degraded.max().item(), 1)
  }

  /// Without blur and noise, the strongest setting scales every pixel's chroma by the lowest
  /// saturation (its direction, the hue, kept) and its luma's distance from the image's mean
  /// luma by the lowest contrast.
  func testContrastAndColourShrinkLumaAndChromaWithoutTurningTheHue() {
    var degradation = ReconstructionDegradation.strongest
    (degradation.blurLevels, degradation.maximumNoise) = ([0], 0)
    let images = midRangeImages()
    let degraded = degradation.apply(images, generator: Generator(seed: 0), extreme: true)
    let (luma, degradedLuma) = (ReconstructionDegradation.luma(images), ReconstructionDegradation.luma(degraded))
    assertClose(degraded - degradedLuma, (images - luma) * degradation.minimumSaturation, atol: 1e-5, "chroma scaled, not turned")
    let mean = luma.mean(dims: [1, 2, 3], keepDim: true)
    assertClose(degradedLuma - mean, (luma - mean) * degradation.minimumContrast, atol: 1e-5, "luma pulled toward its mean")
  }

  func testBlurSmoothsAndNoiseAddsTheDrawnSpread() {
    var blurOnly = ReconstructionDegradation.strongest
    (blurOnly.minimumContrast, blurOnly.minimumSaturation, blurOnly.maximumNoise) = (1, 1, 0)
    let images = midRangeImages()
    let blurred = blurOnly.apply(images, generator: Generator(seed: 0), extreme: true)
    assertClose(blurred, ImageTransform.blur.apply(images, magnitude: blurOnly.blurLevels[0], generator: Generator(seed: 0)), atol: 1e-6)
    var noiseOnly = ReconstructionDegradation.strongest
    (noiseOnly.blurLevels, noiseOnly.minimumContrast, noiseOnly.minimumSaturation) = ([0], 1, 1)
    let flat = Tensor.full([16, 3, 16, 16], 0.5)
    let noisy = noiseOnly.apply(flat, generator: Generator(seed: 0), extreme: true)
    XCTAssertEqual((noisy - flat).standardDeviation().item(), noiseOnly.maximumNoise, accuracy: 0.005)
  }

  func testDrawsFollowTheGeneratorAndOutOfRangeSettingsAreRefused() throws {
    let degradation = ReconstructionDegradation()
    let images = midRangeImages()
    assertClose(degradation.apply(images, generator: Generator(seed: 5)), degradation.apply(images, generator: Generator(seed: 5)), atol: 0)
    XCTAssertGreaterThan((degradation.apply(images, generator: Generator(seed: 5)) - degradation.apply(images, generator: Generator(seed: 6))).abs().max().item(), 1e-3)
    var bad = degradation
    bad.minimumContrast = 1.5
    XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("out of range"), "\($0)") }
  }

  /// A regressor trained with degradations records them and both ceilings; a factors.json from
  /// before degradations existed reads as trained on clean images, with no degraded ceiling.
  func testTheRegressorRecordsItsDegradationsAndBothCeilingsAndOldRecordsReadAsClean() throws {
    let train = try ShapesDataset(split: .train, resolution: 32, count: 256, seed: 1)
    let test = try ShapesDataset(split: .test, resolution: 32, count: 64, seed: 1)
    var options = FactorRegressor.Options()
    (options.trainCount, options.epochs, options.batchSize, options.width, options.heldOutCount) = (256, 1, 64, 0.25, 64)
    let regressor = try FactorRegressor.train(on: train, test: test, options: options)
    XCTAssertEqual(regressor.record.options.degradation, ReconstructionDegradation())
    XCTAssertEqual(Set(regressor.record.degradedCeiling?.keys ?? [:].keys), Set(ShapeFactors.names))
    let encoded = try JSONEncoder().encode(regressor.record)
    let decoded = try JSONDecoder().decode(FactorRegressor.Record.self, from: encoded)
    XCTAssertEqual(decoded.options, regressor.record.options)
    XCTAssertEqual(decoded.degradedCeiling?["size"]?.value, regressor.record.degradedCeiling?["size"]?.value)
    let old = #"{"schemaVersion": 1, "dataset": "shapes", "means": [0], "stds": [1], "options": {"epochs": 20}}"#
    let record = try JSONDecoder().decode(FactorRegressor.Record.self, from: Data(old.utf8))
    XCTAssertNil(record.options.degradation, "an old regressor was trained on clean images")
    XCTAssertNil(record.degradedCeiling)
  }
}
