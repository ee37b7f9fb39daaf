@testable import Afterimage
import Foundation
import Torch
import XCTest

final class ShapesSymmetryTests: XCTestCase {
  /// Draws class `label` with fixed factors at `rotation`, without texture noise.
  static func draw(_ dataset: ShapesDataset, label: Int, rotation: Double) -> [Float] {
    let factors = ShapeFactors(
      objectHue: 0.3, objectSaturation: 0.8, objectBrightness: 0.9, size: 0.3, centreX: 0.5, centreY: 0.5,
      rotation: rotation, backgroundHue: 0.6, backgroundBrightness: 0.2, textureNoise: 0)
    var pixels = [Float](repeating: 0, count: 3 * dataset.resolution * dataset.resolution)
    var rng = SplitMix64(seed: 0)
    pixels.withUnsafeMutableBufferPointer { dataset.render(label: label, factors: factors, rng: &rng, into: $0) }
    return pixels
  }

  func testRecordedRotationalSymmetryIsTrueOfThePixels() throws {
    let dataset = try ShapesDataset(classes: 40, resolution: 48, count: 40)
    for label in 0..<40 {
      let k = dataset.rotationSymmetry(ofClass: label)
      let base = Self.draw(dataset, label: label, rotation: 0.3)
      // Mean absolute pixel difference between the glyph at 0.3 rad and at 0.3 + angle.
      let difference: (Double) -> Float = { angle in
        zip(base, Self.draw(dataset, label: label, rotation: 0.3 + angle)).map { abs($0 - $1) }.reduce(0, +) / Float(base.count)
      }
      let name = dataset.classNames[label]
      if k == 0 {
        XCTAssertLessThan(difference(1.0), 0.002, "\(name) looks the same at every angle")
      } else if k > 1 {
        XCTAssertLessThan(difference(2 * Double.pi / Double(k)), 0.002, "\(name) has \(k)-fold symmetry")
      }
      if k != 0 {
        // A quarter of the symmetry period changes the picture.
        let period = 2 * Double.pi / Double(max(k, 1))
        XCTAssertGreaterThan(difference(period / 4), 0.005, "\(name) is not symmetric under a quarter period")
      }
    }
  }
}
