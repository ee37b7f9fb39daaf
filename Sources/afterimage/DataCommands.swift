import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage data …`: look at a data set before training on it.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data", abstract: "Inspect data sets: counts, classes, statistics, preview grids.",
    subcommands: [DataInfo.self, DataPreview.self])
}

/// Options shared by the data commands.
struct DatasetOptions: ParsableArguments {
  @Option(help: ArgumentHelp("The data set: \(DatasetSource.help).", valueName: "name"))
  var dataset = "shapes"

  @Option(help: "Which split: train or test.")
  var split = Split.train

  @Option(help: "Image side in pixels (default: the data set's own; Fashion-MNIST is zero-padded to it).")
  var resolution: Int?

  @Flag(help: "Fail on an unreadable image instead of skipping it (image folders).")
  var strict = false

  /// Opens the data set, printing notes (skipped files) to standard error.
  func open() throws -> Dataset {
    let source = try DatasetSource(dataset)
    let (dataset, notes) = try source.open(split: split, resolution: resolution, strict: strict)
    for note in notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
    return dataset
  }
}

struct DataInfo: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Counts, classes, resolution, channel means and stds (and Shapes' factor ranges).")

  @OptionGroup var options: DatasetOptions

  @Option(help: "Images read for the pixel statistics.")
  var samples = 10_000

  @Option(help: "Also write the numbers as JSON to this file.")
  var json: String?

  func validate() throws { try require(samples >= 1, "--samples must be at least 1") }

  func run() throws {
    let dataset = try options.open()
    let start = Date()
    let stats = try DatasetStatistics.measure(dataset, maximumSamples: samples)
    let elapsed = Date().timeIntervalSince(start)
    print("\(stats.name) (\(options.split)): \(stats.count) images, \(stats.channels)×\(stats.resolution)×\(stats.resolution), \(stats.classes.count) classes")
    let perClass = zip(stats.classes, stats.classCounts).map { "\($0) \($1)" }.joined(separator: ", ")
    print("classes: \(perClass)")
    let means = stats.channelMeans.map { String(format: "%.4f", $0) }.joined(separator: ", ")
    let stds = stats.channelStds.map { String(format: "%.4f", $0) }.joined(separator: ", ")
    print("pixel values in [0, 1], over \(stats.sampled) images: mean [\(means)], std [\(stds)]")
    if let ranges = stats.factorRanges {
      print("factors (observed min … max; drawn uniformly from the stated ranges):")
      for (name, range) in zip(ShapeFactors.names, ShapeFactors.ranges) {
        let seen = ranges[name] ?? []
        let label = name.padding(toLength: 22, withPad: " ", startingAt: 0)
        print(label + String(format: "%8.3f … %-8.3f  range %.3f … %.3f", seen[0], seen[1], range.lowerBound, range.upperBound))
      }
    }
    print(String(format: "(measured in %.2f s)", elapsed))
    try writeJSON(stats, ifAsked: json)
  }
}

struct DataPreview: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "preview", abstract: "Write a grid of images from a data set as a PNG.")

  @OptionGroup var options: DatasetOptions

  @Option(help: "How many images.")
  var count = 64

  @Option(help: "Images per row (default: a square grid).")
  var columns: Int?

  @Option(help: "Pixel magnification, so small images can be seen (default: tiles at least 96 px).")
  var scale: Int?

  @Option(help: "Seed for choosing which images (0 takes them in order).")
  var seed: UInt64 = 0

  @Option(help: "The PNG file to write.")
  var out = "preview.png"

  func validate() throws {
    try require(count >= 1, "--count must be at least 1")
    try require(columns.map { $0 >= 1 } ?? true, "--columns must be at least 1")
    try require(scale.map { (1...32).contains($0) } ?? true, "--scale must be 1 to 32")
  }

  func run() throws {
    let dataset = try options.open()
    let shown = min(count, dataset.count)
    var indices = Array(0..<dataset.count)
    if seed != 0 {
      var rng = SplitMix64(seed: seed)
      indices.shuffle(using: &rng)
    }
    let magnification = scale ?? ImageGrid.scale(forResolution: dataset.resolution, .picture)
    let perRow = max(1, min(columns ?? Int(Double(shown).squareRoot().rounded(.up)), shown))
    try ResourceLimits.checkGrid(count: shown, columns: perRow, side: dataset.resolution, scale: magnification, fix: "show fewer images with --count, or a smaller --scale")
    let batch = try dataset.batch(at: Array(indices.prefix(shown)))
    let grid = ImageGrid.make(batch.images, columns: columns, padding: 2, scale: magnification)
    try PNG.write(grid, to: URL(fileURLWithPath: out))
    let labels = batch.labels.scalars(as: Int64.self).prefix(min(shown, 8)).map { dataset.classNames[Int($0)] }
    print("wrote \(out): \(shown) images of \(dataset.name) (\(options.split)), \(grid.shape[2])×\(grid.shape[1]) pixels")
    print("first labels: \(labels.joined(separator: ", "))\(shown > 8 ? ", …" : "")")
  }
}
