import Dispatch
import Foundation
import Torch

/// The nuisance factors one Shapes image was drawn with: everything about the picture except its
/// class. Knowing them turns "what survived in the logits" into a number (factor recovery).
public struct ShapeFactors: Codable, Equatable, Sendable {
  /// Object colour: hue in [0, 1), saturation and brightness (HSV value).
  public var objectHue: Double
  public var objectSaturation: Double
  public var objectBrightness: Double
  /// Glyph radius as a fraction of the image side.
  public var size: Double
  /// The glyph's area centroid, as fractions of the width (x, left to right) and height (y, top down).
  public var centreX: Double
  public var centreY: Double
  /// Counter-clockwise rotation of the glyph, radians in [0, 2π). A glyph with k-fold symmetry
  /// looks the same at rotation r and r + 2π/k, so only rotation modulo 2π/k is visible in the
  /// pixels (and none for a circle); see `ShapesDataset.rotationSymmetry(ofClass:)`.
  public var rotation: Double
  /// Background colour: hue in [0, 1) (saturation fixed at `backgroundSaturation`) and brightness.
  public var backgroundHue: Double
  public var backgroundBrightness: Double
  /// Standard deviation of the multiplicative noise textured onto the object.
  public var textureNoise: Double

  /// The background's fixed saturation.
  public static let backgroundSaturation = 0.35

  /// Factor names, in the order of `values`.
  public static let names = [
    "object_hue", "object_saturation", "object_brightness", "size", "centre_x", "centre_y", "rotation",
    "background_hue", "background_brightness", "texture_noise",
  ]

  /// The ranges factors are drawn from (uniformly). Centres are further kept one glyph radius
  /// (plus 10%) from every edge, so the whole glyph is in the picture.
  public static let ranges: [ClosedRange<Double>] = [
    0...1, 0.6...1, 0.6...1, 0.18...0.34, 0...1, 0...1, 0...(2 * Double.pi), 0...1, 0.05...0.45, 0...0.15,
  ]

  /// The factors as numbers, in the order of `names`.
  public var values: [Double] {
    [objectHue, objectSaturation, objectBrightness, size, centreX, centreY, rotation, backgroundHue,
     backgroundBrightness, textureNoise]
  }

  /// The object's colour before texture noise.
  public var objectColour: RGB { RGB(hue: objectHue, saturation: objectSaturation, value: objectBrightness) }
  /// The background's colour.
  public var backgroundColour: RGB {
    RGB(hue: backgroundHue, saturation: Self.backgroundSaturation, value: backgroundBrightness)
  }
}

/// Shapes: a procedural data set of anti-aliased glyphs on coloured backgrounds, with every
/// nuisance factor recorded. Deterministic: image `i` of a split depends only on the seed, the
/// split and `i`, so nothing is cached; an image is cheaper to draw again than to store.
public final class ShapesDataset: Dataset {
  /// The most classes available (distinct glyphs).
  public static var maximumClassCount: Int { glyphTable.count }
  public static let defaultTrainCount = 50_000
  public static let defaultTestCount = 10_000

  public let split: Split
  public let count: Int
  public let resolution: Int
  public let seed: UInt64
  public let classNames: [String]
  public let channels = 3
  public var name: String { classNames.count == 10 ? "shapes" : "shapes-\(classNames.count)" }
  private let glyphs: [Glyph]

  /// - Parameters:
  ///   - classes: how many glyph classes (10 by default, up to `maximumClassCount`).
  ///   - count: examples in this split (50,000 train / 10,000 test by default).
  public init(split: Split = .train, classes: Int = 10, resolution: Int = 32, count: Int? = nil, seed: UInt64 = 0)
    throws
  {
    guard (2...Self.maximumClassCount).contains(classes) else {
      throw DatasetError("shapes has 2 to \(Self.maximumClassCount) classes; \(classes) were asked for")
    }
    guard (8...1024).contains(resolution) else {
      throw DatasetError("shapes renders 8 to 1024 pixels square; \(resolution) was asked for")
    }
    self.split = split
    self.count = count ?? (split == .train ? Self.defaultTrainCount : Self.defaultTestCount)
    self.resolution = resolution
    self.seed = seed
    glyphs = Array(glyphTable.prefix(classes))
    classNames = glyphs.map(\.name)
  }

  /// k of a glyph's k-fold rotational symmetry (1: none; 0: every angle, e.g. a circle), so
  /// that factor probes compare rotations modulo 2π/k.
  public func rotationSymmetry(ofClass label: Int) -> Int {
    Self.rotationSymmetry[classNames[label]] ?? 1
  }

  static let rotationSymmetry: [String: Int] = [
    "circle": 0, "square": 4, "triangle": 3, "pentagon": 5, "hexagon": 6, "star": 5, "cross": 4, "ring": 0,
    "diamond": 2, "heart": 1, "crescent": 1, "arrow": 1, "l-shape": 1, "t-shape": 1, "semicircle": 1,
    "octagon-frame": 8, "star4": 4, "star8": 8, "rectangle": 2, "ellipse": 2, "h-shape": 2, "u-shape": 1,
    "trapezoid": 1, "right-triangle": 1, "chevron": 1, "kite": 1, "star6": 6, "square-frame": 4,
    "parallelogram": 2, "thin-cross": 4, "z-shape": 2, "e-shape": 1, "hourglass": 2, "house": 1,
    "pie-quarter": 1, "pacman": 1, "droplet": 1, "ring-thin": 0, "two-dots": 2, "theta": 2,
  ]

  /// The random stream of example `index`: train and test draw from disjoint streams.
  private func generator(for index: Int) -> SplitMix64 {
    SplitMix64(seed: seed &+ (split == .train ? 0 : 0x5EED_7E57), index: UInt64(index))
  }

  /// The class and factors of example `index`, without drawing it.
  public func factors(at index: Int) -> (label: Int, factors: ShapeFactors) {
    var rng = generator(for: index)
    let r = ShapeFactors.ranges
    func draw(_ range: ClosedRange<Double>) -> Double { rng.uniform(range.lowerBound, range.upperBound) }
    let size = draw(r[3])
    // Glyphs reach about 1 unit from their centroid: keep a margin of one radius.
    let margin = size * 1.1
    let factors = ShapeFactors(
      objectHue: draw(r[0]), objectSaturation: draw(r[1]), objectBrightness: draw(r[2]), size: size,
      centreX: rng.uniform(margin, 1 - margin), centreY: rng.uniform(margin, 1 - margin), rotation: draw(r[6]),
      backgroundHue: draw(r[7]), backgroundBrightness: draw(r[8]), textureNoise: draw(r[9]))
    // Labels cycle through the classes, so every class has the same number of examples.
    return (index % glyphs.count, factors)
  }

  /// Draws glyph `label` with `factors` into `pixels` (`[3, R, R]`, row-major), texture noise
  /// drawn from `rng`. Coverage of each pixel comes from the signed distance at its centre:
  /// clamp(0.5 − d, 0, 1) with d in pixels, a one-pixel-wide anti-aliased edge.
  func render(
    label: Int, factors: ShapeFactors, rng: inout SplitMix64, into pixels: UnsafeMutableBufferPointer<Float>
  ) {
    let side = resolution
    let plane = side * side
    let background = factors.backgroundColour
    let object = factors.objectColour
    let (bgR, bgG, bgB) = (Float(background.red), Float(background.green), Float(background.blue))
    for i in 0..<plane {
      pixels[i] = bgR
      pixels[plane + i] = bgG
      pixels[2 * plane + i] = bgB
    }
    let distance = glyphs[label].distance
    let radius = factors.size * Double(side)  // pixels per glyph unit
    let centreX = factors.centreX * Double(side)
    let centreY = factors.centreY * Double(side)
    let (cosine, sine) = (cos(factors.rotation), sin(factors.rotation))
    let reach = radius + 2  // every glyph lies within one unit of its centre
    let x0 = max(0, Int(centreX - reach))
    let x1 = min(side - 1, Int(centreX + reach))
    let y0 = max(0, Int(centreY - reach))
    let y1 = min(side - 1, Int(centreY + reach))
    let noiseScale = factors.textureNoise * 3.0.squareRoot()  // uniform noise with that std
    guard x0 <= x1, y0 <= y1 else { return }
    for y in y0...y1 {
      for x in x0...x1 {
        // Pixel centre relative to the glyph centre; image y grows downward, glyph y upward.
        let dx = Double(x) + 0.5 - centreX
        let dy = centreY - (Double(y) + 0.5)
        // Rotate by −θ into the glyph's frame, and scale to glyph units.
        let u = (cosine * dx + sine * dy) / radius
        let v = (-sine * dx + cosine * dy) / radius
        let coverage = min(max(0.5 - distance(Point(u, v)) * radius, 0), 1)
        guard coverage > 0 else { continue }
        let texture = 1 + noiseScale * (2 * rng.uniform() - 1)
        let c = Float(coverage)
        let i = y * side + x
        pixels[i] = (1 - c) * bgR + c * Float(min(1, object.red * texture))
        pixels[plane + i] = (1 - c) * bgG + c * Float(min(1, object.green * texture))
        pixels[2 * plane + i] = (1 - c) * bgB + c * Float(min(1, object.blue * texture))
      }
    }
  }

  public func example(at index: Int) throws -> Example {
    try batchExamples([index]).first!
  }

  public func batch(at indices: [Int]) throws -> Batch {
    let side = resolution
    let perImage = 3 * side * side
    var pixels = [Float](repeating: 0, count: indices.count * perImage)
    var labels = [Int64](repeating: 0, count: indices.count)
    var factors = [ShapeFactors?](repeating: nil, count: indices.count)
    for index in indices where index < 0 || index >= count {
      throw DatasetError("index \(index) is outside \(name) (\(split)), which has \(count) examples")
    }
    // Images are independent: draw them on all cores, each worker a contiguous run of images.
    let workers = min(max(1, ProcessInfo.processInfo.activeProcessorCount), max(1, indices.count))
    pixels.withUnsafeMutableBufferPointer { buffer in
      labels.withUnsafeMutableBufferPointer { labelBuffer in
        factors.withUnsafeMutableBufferPointer { factorBuffer in
          let base = buffer.baseAddress!
          DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = worker * indices.count / workers
            let end = (worker + 1) * indices.count / workers
            for position in start..<end {
              let index = indices[position]
              let (label, drawn) = self.factors(at: index)
              var noise = SplitMix64(seed: seed ^ 0xA5A5_5A5A, index: UInt64(index) &+ (split == .train ? 0 : 1 << 40))
              let slice = UnsafeMutableBufferPointer(start: base + position * perImage, count: perImage)
              render(label: label, factors: drawn, rng: &noise, into: slice)
              labelBuffer[position] = Int64(label)
              factorBuffer[position] = drawn
            }
          }
        }
      }
    }
    return Batch(
      images: Tensor(pixels, shape: [indices.count, 3, side, side]), labels: Tensor(labels),
      factors: factors.map { $0! }, indices: indices)
  }

  private func batchExamples(_ indices: [Int]) throws -> [Example] {
    let batch = try batch(at: indices)
    return (0..<indices.count).map {
      Example(image: batch.images[$0], label: batch.labels[$0].itemInt(), factors: batch.factors?[$0])
    }
  }
}
