import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// PNG and JPEG codecs, grids, colour conversions, Shapes and augmentations.
final class ImagingTests: XCTestCase {
  func testPNGRoundTripsGrayRGBAndRGBAtEightAndSixteenBits() throws {
    let generator = Generator(seed: 1)
    for channels in [1, 2, 3, 4] {
      let image = Tensor.rand([channels, 5, 7], generator: generator)
      let eight = (image * 255).round() / 255
      XCTAssertTrue(try PNG.decode(try PNG.encode(eight)).allClose(eight, atol: 1e-6), "8-bit, \(channels) channels")
      let sixteen = (image * 65535).round() / 65535
      let decoded = try PNG.decode(try PNG.encode(sixteen, bitDepth: 16))
      XCTAssertEqual(decoded.shape, [channels, 5, 7])
      XCTAssertLessThan(maxDifference(decoded, sixteen), 1e-7, "16-bit, \(channels) channels")
    }
  }

  func testPNGFilesOnDiskAndCorruptOnes() throws {
    let directory = try temporaryDirectory()
    let url = directory.appendingPathComponent("image.png")
    let image = Tensor.linspace(0, 1, count: 12).reshaped([1, 3, 4])
    try PNG.write(image, to: url)
    let read = try ImageFile.read(url)
    XCTAssertEqual(read.shape, [1, 3, 4])
    XCTAssertLessThanOrEqual(maxDifference(read, image), 0.5 / 255 + 1e-6)
    let bytes = try Data(contentsOf: url)
    try bytes.prefix(bytes.count - 20).write(to: url)
    XCTAssertThrowsError(try ImageFile.read(url)) { XCTAssertTrue("\($0)".contains("is corrupt"), "\($0)") }
    try Data("hello".utf8).write(to: url)
    XCTAssertThrowsError(try ImageFile.read(url)) { XCTAssertTrue("\($0)".contains("neither PNG nor JPEG"), "\($0)") }
    XCTAssertThrowsError(try ImageFile.read(directory.appendingPathComponent("absent.png"))) {
      XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
    }
  }

  func testJPEGDecodesColourAndGrayFilesWrittenByPIL() throws {
    let directory = try temporaryDirectory()
    try runPython("write_images.py", [directory.path])
    let rgb = try ImageFile.read(directory.appendingPathComponent("rgb.jpg"))
    XCTAssertEqual(rgb.shape, [3, 16, 24])
    // The blue channel was a constant 128 and red grows left to right.
    XCTAssertEqual(rgb[2].mean().item(), 128.0 / 255, accuracy: 0.02)
    XCTAssertLessThan(rgb[0][8][2].item(), rgb[0][8][20].item())
    let gray = try ImageFile.read(directory.appendingPathComponent("gray.jpg"))
    XCTAssertEqual(gray.shape, [1, 16, 16])
    XCTAssertEqual(gray[0][4][10].item(), 160.0 / 255, accuracy: 0.03)
    // CMYK used to be refused as corrupt; it reads as PIL reads it, to a rounding step.
    let cmyk = try ImageFile.read(directory.appendingPathComponent("cmyk.jpg"))
    XCTAssertEqual(cmyk.shape, [3, 16, 24])
    let pil = try Data(contentsOf: directory.appendingPathComponent("cmyk-as-rgb.bin")).map { Float($0) / 255 }
    let ours = cmyk.permuted([1, 2, 0]).contiguous().scalars(as: Float.self)
    XCTAssertEqual(ours.count, pil.count)
    let largest = zip(ours, pil).map { abs($0 - $1) }.max() ?? 1
    XCTAssertLessThanOrEqual(largest, 1.5 / 255, "CMYK → RGB as PIL converts it")
    XCTAssertLessThan(cmyk[1][15][0].item(), cmyk[1][0][0].item() - 0.5, "magenta ink grows downwards, so green falls")
  }

  func testResizeAndCentreCrop() {
    let wide = Tensor.ones([3, 20, 40])
    XCTAssertEqual(ImageFile.resizedAndCentreCropped(wide, to: 10).shape, [3, 10, 10])
    // A left half black, right half white picture: the centre crop keeps the boundary centred.
    let halves = Tensor.cat([Tensor.zeros([1, 10, 20]), Tensor.ones([1, 10, 20])], dim: 2)
    let cropped = ImageFile.resizedAndCentreCropped(halves, to: 10)
    XCTAssertEqual(cropped.mean().item(), 0.5, accuracy: 0.05)
    XCTAssertEqual(ImageFile.withChannels(Tensor.ones([1, 2, 2]), 3).shape, [3, 2, 2])
    XCTAssertEqual(ImageFile.withChannels(Tensor.ones([4, 2, 2]), 3).shape, [3, 2, 2])
    XCTAssertEqual(ImageFile.withChannels(Tensor.ones([3, 2, 2]), 1).mean().item(), 1, accuracy: 1e-6)
  }

  func testGridLayoutPaddingBordersAndScale() {
    let images = Tensor.zeros([5, 1, 4, 4])
    let grid = ImageGrid.make(images, columns: 3, padding: 2, scale: 2, borders: [nil, .red, nil, nil, nil])
    // 2 rows × 3 columns of 8-pixel tiles with 2-pixel gaps: 2 + 3·10 wide, 2 + 2·10 high.
    XCTAssertEqual(grid.shape, [3, 22, 32])
    XCTAssertEqual(grid[0][0][0].item(), 1, "white background")
    XCTAssertEqual(grid[0][5][5].item(), 0, "tile content")
    // Tile 1's frame is red in the gap to its left.
    XCTAssertEqual(grid.select(dim: 1, index: 5).select(dim: 1, index: 11).scalars(as: Float.self), [0.9, 0.1, 0.1])
    XCTAssertEqual(grid.select(dim: 1, index: 5).select(dim: 1, index: 1).scalars(as: Float.self), [1, 1, 1])
  }

  func testHSVConversionsInvertEachOther() {
    for hue in stride(from: 0.0, to: 1.0, by: 0.07) {
      let colour = RGB(hue: hue, saturation: 0.8, value: 0.6)
      let back = colour.hsv
      XCTAssertLessThan(RGB.hueDistance(back.hue, hue), 1e-9)
      XCTAssertEqual(back.saturation, 0.8, accuracy: 1e-9)
      XCTAssertEqual(back.value, 0.6, accuracy: 1e-9)
    }
    XCTAssertEqual(RGB.hueDistance(0.95, 0.05), 0.1, accuracy: 1e-12)
  }

  // MARK: Shapes

  func testShapesAreDeterministic() throws {
    let a = try ShapesDataset(split: .train, count: 64, seed: 7).batch(at: Array(0..<16))
    let b = try ShapesDataset(split: .train, count: 64, seed: 7).batch(at: Array(0..<16))
    XCTAssertEqual(a.images.rawBytes(), b.images.rawBytes(), "same seed, same bytes")
    XCTAssertEqual(a.factors, b.factors)
    let c = try ShapesDataset(split: .train, count: 64, seed: 8).batch(at: Array(0..<16))
    XCTAssertFalse(a.images.equals(c.images))
    let test = try ShapesDataset(split: .test, count: 64, seed: 7).batch(at: Array(0..<16))
    XCTAssertFalse(a.images.equals(test.images), "train and test are different images")
    // Random access: image 5 alone is image 5 of the batch.
    XCTAssertTrue(try ShapesDataset(split: .train, count: 64, seed: 7).example(at: 5).image.equals(a.images[5]))
  }

  /// Where the image differs from the recorded background, weighted by how far toward the
  /// recorded object colour it is: an estimate of the object's coverage made from pixels only.
  func foregroundWeights(_ image: Tensor, _ factors: ShapeFactors) -> Tensor {
    let bg = factors.backgroundColour
    let fg = factors.objectColour
    let bgTensor = Tensor([Float(bg.red), Float(bg.green), Float(bg.blue)], shape: [3, 1, 1])
    let fgTensor = Tensor([Float(fg.red), Float(fg.green), Float(fg.blue)], shape: [3, 1, 1])
    let contrast = (fgTensor - bgTensor).norm().item()
    return ((image - bgTensor).norm(dims: [0]) / contrast).clamped(min: 0, max: 1)  // [H, W]
  }

  func testShapeFactorsAreTrueOfThePixels() throws {
    let dataset = try ShapesDataset(split: .train, classes: 10, resolution: 64, count: 200, seed: 3)
    let batch = try dataset.batch(at: Array(0..<200))
    let side = Double(dataset.resolution)
    let coordinates = Tensor.arange(0, side, dtype: .float32) + 0.5
    var areasByClass: [Int: [(size: Double, area: Double)]] = [:]
    for i in 0..<200 {
      let factors = batch.factors![i]
      let weights = foregroundWeights(batch.images[i], factors)
      let area = weights.sum().item()
      let centreX = (weights * coordinates.view([1, -1])).sum().item() / area / side
      let centreY = (weights * coordinates.view([-1, 1])).sum().item() / area / side
      XCTAssertEqual(centreX, factors.centreX, accuracy: 1.0 / side, "image \(i): centroid x")
      XCTAssertEqual(centreY, factors.centreY, accuracy: 1.0 / side, "image \(i): centroid y")
      // Mean colour of clearly-inside pixels has the recorded hue (the texture is multiplicative).
      let inside = (weights .> 0.95).to(.float32)
      let meanColour = (batch.images[i] * inside).sum(dims: [1, 2]) / inside.sum()
      let rgb = meanColour.scalars(as: Double.self)
      XCTAssertLessThan(RGB.hueDistance(RGB(rgb[0], rgb[1], rgb[2]).hsv.hue, factors.objectHue), 0.02, "image \(i): hue")
      areasByClass[batch.labels[i].itemInt(), default: []].append((factors.size, area))
    }
    // Within a class, the drawn area grows with the recorded size (as its square).
    for (label, samples) in areasByClass {
      let ratios = samples.map { $0.area / ($0.size * $0.size) }
      let mean = ratios.reduce(0, +) / Double(ratios.count)
      for ratio in ratios { XCTAssertEqual(ratio, mean, accuracy: mean * 0.15, "class \(label): area ∝ size²") }
    }
  }

  func testMoreClassesAddDistinctGlyphs() throws {
    let forty = try ShapesDataset(classes: 40, resolution: 32, count: 40)
    XCTAssertEqual(forty.classNames.count, 40)
    XCTAssertEqual(Set(forty.classNames).count, 40)
    XCTAssertEqual(Array(forty.classNames.prefix(10)), try ShapesDataset().classNames)
    let batch = try forty.batch(at: Array(0..<40))
    for i in 0..<40 {
      let weights = foregroundWeights(batch.images[i], batch.factors![i])
      XCTAssertGreaterThan(weights.sum().item(), 10, "\(forty.classNames[i]) draws something")
    }
  }

  // MARK: Augmentation

  func testAugmentationsKeepShapesAndDoWhatTheySay() {
    let generator = Generator(seed: 2)
    let images = Tensor.rand([8, 3, 6, 6], generator: generator)
    let cropped = Augmentation.randomCrop(images, padding: 2, generator: generator)
    XCTAssertEqual(cropped.shape, [8, 3, 6, 6])
    let flipped = Augmentation.randomHorizontalFlip(images, generator: Generator(seed: 3))
    for i in 0..<8 {
      XCTAssertTrue(flipped[i].equals(images[i]) || flipped[i].equals(images[i].flipped([2])))
    }
    let jittered = Augmentation.colourJitter(images, brightness: 0.4, contrast: 0.4, saturation: 0.4, generator: generator)
    XCTAssertGreaterThanOrEqual(jittered.min().item(), 0)
    XCTAssertLessThanOrEqual(jittered.max().item(), 1)
    XCTAssertFalse(jittered.equals(images))
    let same = Augmentation()(images, generator: Generator(seed: 9))
    XCTAssertTrue(same.equals(Augmentation()(images, generator: Generator(seed: 9))), "seeded")
    XCTAssertTrue(Augmentation.none(images, generator: generator).equals(images))
    // A crop with zero offset on both axes shows the zero padding in its first row and column.
    let constant = Tensor.ones([64, 1, 4, 4])
    let crops = Augmentation.randomCrop(constant, padding: 1, generator: generator)
    XCTAssertLessThan(crops.mean().item(), 1, "some crops show padding")
  }

  func testNormalizationInverts() {
    let normalise = Normalization(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
    let images = Tensor.rand([2, 3, 4, 4], generator: Generator(seed: 1))
    let normalised = normalise(images)
    XCTAssertEqual(normalised.select(dim: 1, index: 0).mean().item(), (images.select(dim: 1, index: 0).mean().item() - 0.5) / 0.2, accuracy: 1e-5)
    assertClose(normalise.inverse(normalised), images, atol: 1e-6)
  }

  func testDatasetStatistics() throws {
    let stats = try DatasetStatistics.measure(try ShapesDataset(split: .test, count: 300), maximumSamples: 100)
    XCTAssertEqual(stats.count, 300)
    XCTAssertEqual(stats.sampled, 100)
    XCTAssertEqual(stats.classCounts, Array(repeating: 30, count: 10))
    XCTAssertEqual(stats.channelMeans.count, 3)
    let hue = stats.factorRanges!["object_hue"]!
    XCTAssertGreaterThanOrEqual(hue[0], 0)
    XCTAssertLessThan(hue[1], 1)
  }

  /// A few hundred bytes can claim a picture of billions of pixels; decoding is refused before
  /// any allocation, with the size in the message (a PNG of 30000², a JPEG of 20000²).
  func testImagesClaimingHugeSizesAreRefused() throws {
    let directory = try temporaryDirectory()
    try runPythonCode("""
      import struct, zlib, sys
      from PIL import Image
      def chunk(kind, data): return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
      header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
      png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\\x00" * 64)) + chunk(b"IEND", b"")
      open("\(directory.path)/huge.png", "wb").write(png)
      small = "\(directory.path)/small.jpg"
      Image.new("RGB", (8, 8)).save(small)
      data = bytearray(open(small, "rb").read())
      at = data.index(b"\\xff\\xc0") + 5  # the frame header: height, then width
      data[at:at + 4] = struct.pack(">HH", 20000, 20000)
      open("\(directory.path)/huge.jpg", "wb").write(bytes(data))
      """)
    for (name, size) in [("huge.png", "30000×30000"), ("huge.jpg", "20000×20000")] {
      XCTAssertThrowsError(try ImageFile.read(directory.appendingPathComponent(name))) { error in
        XCTAssertTrue("\(error)".contains("claims \(size) pixels"), "\(error)")
      }
    }
  }
}
