import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// IDX, Fashion-MNIST, CIFAR, image folders and the data loader.
final class DataTests: XCTestCase {
  /// An IDX file of unsigned bytes with the given dimensions and values.
  func idx(_ dimensions: [Int], _ values: [UInt8]) -> Data {
    var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return Data(bytes + values)
  }

  func gzip(_ data: Data, in directory: URL, name: String) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try data.write(to: url)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-f", url.path]
    try process.run(deadline: 60).wait()
    return directory.appendingPathComponent(name + ".gz")
  }

  func testIDXParsesHandMadeBytes() throws {
    let parsed = try IDX.parse(idx([2, 3, 2], Array(0..<12)))
    XCTAssertEqual(parsed.dimensions, [2, 3, 2])
    XCTAssertEqual(Array(parsed.values), Array(0..<12))
    XCTAssertThrowsError(try IDX.parse(idx([2, 3, 2], Array(0..<11)))) {
      XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
    }
    XCTAssertThrowsError(try IDX.parse(Data([1, 2, 8, 1]))) { XCTAssertTrue("\($0)".contains("not an IDX"), "\($0)") }
    var wrongType = idx([1], [0])
    wrongType[2] = 0x0D
    XCTAssertThrowsError(try IDX.parse(wrongType)) { XCTAssertTrue("\($0)".contains("0x0d"), "\($0)") }
  }

  func testFashionMNISTFolderOfHandMadeGzippedFiles() throws {
    let directory = try temporaryDirectory()
    _ = try gzip(idx([3, 2, 2], Array(0..<12)), in: directory, name: "t10k-images-idx3-ubyte")
    _ = try gzip(idx([3], [4, 0, 9]), in: directory, name: "t10k-labels-idx1-ubyte")
    let dataset = try FashionMNIST.load(split: .test, directory: directory.path)
    XCTAssertEqual(dataset.count, 3)
    XCTAssertEqual(dataset.labels.scalars(as: Int64.self), [4, 0, 9])
    XCTAssertEqual(try dataset.example(at: 1).image.shape, [1, 2, 2])
    XCTAssertEqual(try dataset.example(at: 1).image.scalars(as: Float.self), [4, 5, 6, 7].map { Float($0) / 255 })
    XCTAssertThrowsError(try FashionMNIST.load(split: .train, directory: directory.path)) {
      XCTAssertTrue("\($0)".contains("dataset-fashion-mnist"), "\($0)")
    }
    // A truncated gzip stream is reported as such.
    let images = directory.appendingPathComponent("t10k-images-idx3-ubyte.gz")
    let compressed = try Data(contentsOf: images)
    try compressed.prefix(compressed.count / 2).write(to: images)
    XCTAssertThrowsError(try FashionMNIST.load(split: .test, directory: directory.path)) {
      XCTAssertTrue("\($0)".contains("truncated") || "\($0)".contains("gzip"), "\($0)")
    }
  }

  func testRealFashionMNISTMatchesTorchvision() throws {
    let directory = FashionMNIST.defaultDirectory
    guard FileManager.default.fileExists(atPath: directory) else {
      XCTFail("Fashion-MNIST is not installed: run scripts/setup (dataset-fashion-mnist)")
      return
    }
    let referenceURL = try temporaryDirectory().appendingPathComponent("fashion.safetensors")
    try runPython("fashion_mnist_reference.py", [directory, referenceURL.path])
    let reference = try Safetensors.read(referenceURL)
    for split in Split.allCases {
      let dataset = try FashionMNIST.load(split: split)
      XCTAssertEqual(dataset.count, split == .train ? 60_000 : 10_000)
      XCTAssertEqual(dataset.count, try reference.tensor("\(split).count").itemInt())
      XCTAssertEqual(dataset.classNames.count, 10)
      let labels = try reference.tensor("\(split).labels")
      XCTAssertTrue(dataset.labels.narrow(dim: 0, start: 0, length: 16).equals(labels), "\(split) labels")
      XCTAssertTrue(dataset.pixels.narrow(dim: 0, start: 0, length: 4).equals(try reference.tensor("\(split).images")))
    }
    XCTAssertEqual(
      try FashionMNIST.load(split: .train).labels.narrow(dim: 0, start: 0, length: 8).scalars(as: Int64.self),
      [9, 0, 0, 3, 0, 2, 7, 2], "Ankle boot, T-shirt, T-shirt, Dress, …")
    let padded = try DatasetSource("fashion-mnist").open(split: .test, resolution: 32).dataset
    XCTAssertEqual(try padded.example(at: 0).image.shape, [1, 32, 32])
    XCTAssertEqual(try padded.example(at: 0).image.narrow(dim: 1, start: 0, length: 2).sum().item(), 0, "zero padding")
  }

  func testCIFARBinaryWrittenByTheTest() throws {
    let directory = try temporaryDirectory()
    var records = Data()
    for (label, fill) in [(3, 10), (7, 200)] as [(UInt8, UInt8)] {
      records.append(label)
      // Red plane `fill`, green plane 0, blue plane 255.
      records.append(Data(repeating: fill, count: 1024) + Data(repeating: 0, count: 1024) + Data(repeating: 255, count: 1024))
    }
    try records.write(to: directory.appendingPathComponent("test_batch.bin"))
    let dataset = try CIFAR.load(.cifar10, split: .test, directory: directory.path)
    XCTAssertEqual(dataset.count, 2)
    XCTAssertEqual(dataset.classNames[3], "cat")
    XCTAssertEqual(dataset.labels.scalars(as: Int64.self), [3, 7])
    let image = try dataset.example(at: 1).image  // [3, 32, 32]
    XCTAssertEqual((image.mean(dims: [1, 2]) * 255).round().scalars(as: Float.self), [200, 0, 255])

    // CIFAR-100 has two label bytes (coarse, fine); the fine one is the label.
    var hundred = Data([5, 42])
    hundred.append(Data(repeating: 1, count: 3072))
    try hundred.write(to: directory.appendingPathComponent("test.bin"))
    let fine = try CIFAR.load(.cifar100, split: .test, directory: directory.path)
    XCTAssertEqual(fine.labels.scalars(as: Int64.self), [42])

    try records.prefix(4000).write(to: directory.appendingPathComponent("test_batch.bin"))
    XCTAssertThrowsError(try CIFAR.load(.cifar10, split: .test, directory: directory.path)) {
      XCTAssertTrue("\($0)".contains("whole number"), "\($0)")
    }
    XCTAssertThrowsError(try CIFAR.load(.cifar10, split: .train, directory: directory.path)) {
      XCTAssertTrue("\($0)".contains("data_batch_1.bin"), "\($0)")
    }
  }

  func testImageFolderReadsPNGAndJPEGAndReportsCorruptFiles() throws {
    let root = try temporaryDirectory()
    let cats = root.appendingPathComponent("cat")
    let dogs = root.appendingPathComponent("dog")
    for folder in [cats, dogs] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
    // Ten files per class so the automatic split holds one out for testing.
    for i in 0..<9 {
      try PNG.write(Tensor.full([3, 40, 20], 0.25 + 0.05 * Double(i)), to: cats.appendingPathComponent("c\(i).png"))
    }
    try PNG.write(Tensor.full([4, 8, 8], 0.5), to: cats.appendingPathComponent("c9-rgba.png"))
    for i in 0..<8 {
      try PNG.write(Tensor.full([1, 16, 16], 0.75), to: dogs.appendingPathComponent("d\(i).png"), bitDepth: i % 2 == 0 ? 8 : 16)
    }
    try runPython("write_images.py", [dogs.path])  // rgb.jpg, gray.jpg (and cmyk.jpg, which this test does not count)
    try FileManager.default.removeItem(at: dogs.appendingPathComponent("cmyk.jpg"))
    try Data("definitely not a png".utf8).write(to: dogs.appendingPathComponent("broken.png"))

    let (train, report) = try ImageFolder.load(path: root.path, split: .train, resolution: 8)
    XCTAssertEqual(train.classNames, ["cat", "dog"])
    XCTAssertEqual(train.channels, 3)
    XCTAssertEqual(train.resolution, 8)
    XCTAssertEqual(train.count, 9 + 9, "9 of 10 cats; of 11 dog files one is held out and one is corrupt")
    XCTAssertEqual(report.skipped.count, 1)
    XCTAssertTrue(report.summary!.contains("broken.png"), report.summary!)
    let (test, _) = try ImageFolder.load(path: root.path, split: .test, resolution: 8)
    XCTAssertEqual(test.count, 2)
    // A gray PNG becomes three equal channels with its value.
    let dogIndex = Int(train.labels.scalars(as: Int64.self).firstIndex(of: 1)!)
    let dog = try train.example(at: dogIndex).image
    XCTAssertEqual(dog.mean().item(), 0.75, accuracy: 0.01)

    XCTAssertThrowsError(try ImageFolder.load(path: root.path, split: .train, resolution: 8, strict: true)) {
      XCTAssertTrue("\($0)".contains("broken.png"), "\($0)")
    }
  }

  func testAFolderWithoutClassSubfoldersIsAnError() throws {
    let root = try temporaryDirectory()
    try PNG.write(Tensor.zeros([3, 4, 4]), to: root.appendingPathComponent("a.png"))
    XCTAssertThrowsError(try ImageFolder.load(path: root.path, split: .train, resolution: 4)) {
      let text = "\($0)"
      XCTAssertTrue(text.contains("no class sub-folders"), text)
      XCTAssertTrue(text.contains("1 image files directly"), text)
    }
    XCTAssertThrowsError(try ImageFolder.load(path: "/nonexistent/images", split: .train, resolution: 4)) {
      XCTAssertTrue("\($0)".contains("no such folder"), "\($0)")
    }
  }

  func testExplicitTrainAndTestFoldersAreUsed() throws {
    let root = try temporaryDirectory()
    for (split, count) in [("train", 3), ("val", 2)] {
      for label in ["a", "b"] {
        let folder = root.appendingPathComponent(split).appendingPathComponent(label)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for i in 0..<count { try PNG.write(Tensor.zeros([1, 4, 4]), to: folder.appendingPathComponent("\(i).png")) }
      }
    }
    XCTAssertEqual(try ImageFolder.load(path: root.path, split: .train, resolution: 4).dataset.count, 6)
    let test = try ImageFolder.load(path: root.path, split: .test, resolution: 4).dataset
    XCTAssertEqual(test.count, 4)
    XCTAssertEqual(test.channels, 1)
  }

  func testDatasetNamesParseAndBadNamesSayWhatIsAccepted() throws {
    XCTAssertNoThrow(try DatasetSource("shapes:classes=20,seed=3"))
    XCTAssertThrowsError(try DatasetSource("imagenet")) { XCTAssertTrue("\($0)".contains("fashion-mnist"), "\($0)") }
    XCTAssertThrowsError(try DatasetSource("shapes:colour=red")) { XCTAssertTrue("\($0)".contains("classes=N"), "\($0)") }
    XCTAssertThrowsError(try DatasetSource("cifar10")) { XCTAssertTrue("\($0)".contains("cifar10:PATH"), "\($0)") }
    let shapes = try DatasetSource("shapes:classes=20,train=100").open(split: .train).dataset
    XCTAssertEqual(shapes.classCount, 20)
    XCTAssertEqual(shapes.count, 100)
    XCTAssertThrowsError(try ShapesDataset(classes: 99)) { XCTAssertTrue("\($0)".contains("2 to 40"), "\($0)") }
  }

  func testLoaderCoversEachExampleOncePerEpochInASeededOrder() throws {
    let dataset = try ShapesDataset(split: .test, resolution: 8, count: 103)
    let loader = DataLoader(dataset, batchSize: 10, shuffle: true, seed: 5)
    XCTAssertEqual(loader.batchCount, 11)
    var seen: [Int] = []
    for batch in loader.epoch(0) {
      XCTAssertEqual(batch.images.shape[1...], [3, 8, 8])
      XCTAssertEqual(batch.labels.scalars(as: Int64.self), batch.indices.map { Int64($0 % 10) })
      seen += batch.indices
    }
    XCTAssertEqual(seen.sorted(), Array(0..<103))
    XCTAssertNotEqual(seen, Array(0..<103), "shuffled")
    XCTAssertEqual(loader.order(epoch: 0), seen, "the same seed gives the same order")
    XCTAssertNotEqual(loader.order(epoch: 1), seen, "each epoch has its own order")
    let dropping = DataLoader(dataset, batchSize: 10, dropLast: true)
    XCTAssertEqual(Array(dropping.epoch(0)).count, 10)
    // A prefetched batch holds exactly what a direct read gives.
    let first = Array(loader.epoch(3))[0]
    XCTAssertTrue(first.images.equals(try dataset.batch(at: first.indices).images))
  }
}
