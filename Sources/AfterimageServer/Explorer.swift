import Afterimage
import Foundation
import Torch

/// What the explorer computes, without the web: images of the inverters' test sets and uploads,
/// their logits, edits of those logits, and reconstructions. Not thread-safe: the server calls it
/// from its one `TorchWorker` thread.
public final class Explorer {
  /// One inverter the explorer was started with, and what its page column needs.
  public struct Column {
    public let name: String
    public let inverter: Inverter
    /// The independent classifier whose verdict goes under each reconstruction, if any.
    public let evaluation: (any ImageClassifier)?

    public init(name: String, inverter: Inverter, evaluation: (any ImageClassifier)?) {
      self.name = name
      self.inverter = inverter
      self.evaluation = evaluation
    }
  }

  /// How an inverter is described to the page.
  public struct ColumnInfo: Codable, Sendable {
    public var name: String
    public var dataset: String
    public var classNames: [String]
    public var resolution: Int
    public var channels: Int
    public var evaluation: Bool
  }

  /// A picture the page can ask about: `t<index>` (the shared test set) or `u<n>` (an upload).
  public typealias ImageID = String

  /// One row of the test-set strip.
  public struct ImageInfo: Codable, Sendable {
    public var image: ImageID
    public var label: Int?
    public var labelName: String?
    /// The first column's classifier's top-1 class.
    public var predicted: Int
    public var predictedName: String
  }

  /// The logits of an image (transformed and interpolated as asked), for each column.
  public struct LogitsInfo: Codable, Sendable {
    public var logits: [[Double]]
    public var softmax: [[Double]]
    public var predicted: [Int]
  }

  /// A logit edit, as the page sends it. Every field but `image` is optional.
  public struct Edit: Codable, Sendable {
    public var image: ImageID
    /// A second image and how far to walk toward its logits (α in [0, 1]).
    public var second: ImageID?
    public var alpha: Double?
    /// A transformation of the image before the classifier, and its magnitude.
    public var transform: String?
    public var magnitude: Double?
    /// Per-class offsets added to the logits (the sliders' distance from where they started).
    public var delta: [Double]?
    /// Add a constant to every logit; multiply every logit (temperature); add Gaussian noise of
    /// this many standard deviations of the logits; keep the k largest.
    public var shift: Double?
    public var scale: Double?
    public var noise: Double?
    public var topK: Int?
    /// Reconstructions with fresh noise (1 to 8), and the noise seed.
    public var samples: Int?
    public var seed: UInt64?

    public init(image: ImageID) { self.image = image }
  }

  /// The reconstructions of one column for one edit.
  public struct Reconstruction {
    /// `[3, H, W]` in [0, 1]: the samples side by side, each scaled up for the screen.
    public var picture: Tensor
    /// The edited logits `[K]` that were inverted.
    public var logits: [Double]
    /// The evaluation classifier's class name for each sample (empty without one).
    public var verdicts: [String]
  }

  /// An error in a request: the page shows the message; the server answers 400 or 404.
  public struct RequestError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case badRequest, notFound, tooLarge }
    public let kind: Kind
    public let message: String
    public var description: String { message }
    init(_ kind: Kind, _ message: String) {
      self.kind = kind
      self.message = message
    }
  }

  public let columns: [Column]
  /// The test set of the first inverter's data set: every column must share its input shape.
  let testSet: Dataset
  var uploads: [Tensor] = []
  /// Uploads are kept in memory, the oldest dropped past this many.
  let uploadLimit = 64
  var uploadOffset = 0
  /// Logit spread per column (the standard deviation of a test batch's logits), the unit of the
  /// noise edit as in `afterimage analyze logit-noise`.
  var spreads: [Double] = []
  let displayScale: Int

  /// - Parameters:
  ///   - columns: the inverters, in the order the page shows them.
  ///   - testSet: the images the page browses (the first inverter's test split).
  public init(columns: [Column], testSet: Dataset) throws {
    guard let first = columns.first else { throw RunError("the explorer needs at least one inverter") }
    for column in columns {
      // The page edits logits (one slider per class); a feature-map inverter has no class per value.
      guard column.inverter.config.representation == .logits else {
        throw RunError("\(column.name) inverts \(column.inverter.config.representation), and the explorer edits logits: explore logit inverters, or study feature inverters with `afterimage analyze reconstruct` and `afterimage study depth`")
      }
      let config = column.inverter.classifier.config
      guard config.channels == testSet.channels, config.resolution == testSet.resolution else {
        throw RunError("\(column.name) takes \(config.channels)×\(config.resolution)² images; \(first.name)'s data set has \(testSet.channels)×\(testSet.resolution)²: explore inverters of one input shape together")
      }
    }
    self.columns = columns
    self.testSet = testSet
    displayScale = max(1, 128 / testSet.resolution)
    let probe = try testSet.batch(at: Array(0..<min(256, testSet.count))).images
    spreads = try columns.map { column in
      try withNoGrad { max(try column.inverter.classifier.logits(probe).standardDeviation().item(), 1e-6) }
    }
  }

  public var info: [ColumnInfo] {
    columns.map {
      ColumnInfo(
        name: $0.name, dataset: $0.inverter.config.dataset, classNames: $0.inverter.classifier.config.classNames,
        resolution: testSet.resolution, channels: testSet.channels, evaluation: $0.evaluation != nil)
    }
  }

  public var testCount: Int { testSet.count }

  // MARK: images

  /// A page of the test set with the first column's predictions.
  public func images(page: Int, perPage: Int) throws -> [ImageInfo] {
    guard page >= 0, (1...200).contains(perPage) else { throw RequestError(.badRequest, "page must be ≥ 0 and per-page 1 to 200") }
    let start = page * perPage
    guard start < testSet.count else { return [] }
    let batch = try testSet.batch(at: Array(start..<min(start + perPage, testSet.count)))
    let predicted = try withNoGrad { try columns[0].inverter.classifier.logits(batch.images).argmax(dim: 1) }.scalars(as: Int64.self)
    let labels = batch.labels.scalars(as: Int64.self)
    try throwIfTorchFailed()  // before indexing what was read (see catchingTorchErrors)
    let names = columns[0].inverter.classifier.config.classNames
    return zip(batch.indices, zip(labels, predicted)).map { index, pair in
      ImageInfo(
        image: "t\(index)", label: Int(pair.0), labelName: testSet.classNames[Int(pair.0)], predicted: Int(pair.1),
        predictedName: names[Int(pair.1)])
    }
  }

  /// The image `[C, H, W]` in [0, 1] that `id` names.
  public func image(_ id: ImageID) throws -> Tensor {
    let number = Int(id.dropFirst())
    switch (id.first, number) {
    case ("t", let index?) where index >= 0 && index < testSet.count:
      return try testSet.example(at: index).image
    case ("u", let index?) where index >= uploadOffset && index < uploadOffset + uploads.count:
      return uploads[index - uploadOffset]
    default:
      throw RequestError(.notFound, "no image '\(id)': test images are t0…t\(testSet.count - 1), uploads u<n> as the upload returned them")
    }
  }

  /// The image scaled up for the screen, as RGB `[3, H·s, W·s]`.
  public func picture(_ id: ImageID) throws -> Tensor {
    ImageGrid.make(try image(id).unsqueezed(0), columns: 1, padding: 0, scale: displayScale)
  }

  /// Keeps an uploaded PNG or JPEG, converted and resized the way the data set's images are.
  public func upload(_ data: Data) throws -> ImageID {
    let decoded: Tensor
    do {
      decoded = try ImageFile.decode(data, name: "the upload")
    } catch let error as ImageError {
      throw RequestError(.badRequest, error.message)
    }
    let image = ImageFile.modelInput(decoded, channels: testSet.channels, resolution: testSet.resolution)
    uploads.append(image)
    if uploads.count > uploadLimit {
      uploads.removeFirst()
      uploadOffset += 1
    }
    return "u\(uploadOffset + uploads.count - 1)"
  }

  // MARK: logits and reconstructions

  /// The logits that the classifiers of `chosen` columns give the (transformed, interpolated) image.
  func baseLogits(_ edit: Edit, columns chosen: [Column]) throws -> [Tensor] {
    var image = try image(edit.image).unsqueezed(0)  // [1, C, H, W]
    if let name = edit.transform {
      guard let transform = ImageTransform(rawValue: name) else {
        throw RequestError(.badRequest, "unknown transform '\(name)': one of \(ImageTransform.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      let magnitude = try finite(edit.magnitude ?? transform.defaultMagnitudes[0], "magnitude")
      image = transform.apply(image, magnitude: magnitude, generator: Generator(seed: edit.seed ?? 0))
    }
    var logits = try chosen.map { column in try withNoGrad { try column.inverter.classifier.logits(image) } }
    if let second = edit.second {
      let alpha = try finite(edit.alpha ?? 0, "alpha")
      guard (0...1).contains(alpha) else { throw RequestError(.badRequest, "alpha must be in [0, 1], got \(alpha)") }
      let other = try self.image(second).unsqueezed(0)
      logits = try zip(chosen, logits).map { column, mine in
        let theirs = try withNoGrad { try column.inverter.classifier.logits(other) }
        return mine * (1 - alpha) + theirs * alpha
      }
    }
    return logits
  }

  /// The logits of each column for `edit`'s image (before the logit edits), with softmax.
  public func logits(_ edit: Edit) throws -> LogitsInfo {
    let logits = try baseLogits(edit, columns: columns)
    try throwIfTorchFailed()
    return LogitsInfo(
      logits: logits.map { $0.squeezed(0).scalars(as: Double.self) },
      softmax: logits.map { $0.softmax(dim: 1).squeezed(0).scalars(as: Double.self) },
      predicted: logits.map { Int($0.argmax(dim: 1).item()) })
  }

  /// Column `index`'s reconstructions of `edit`.
  public func reconstruct(_ edit: Edit, column index: Int) throws -> Reconstruction {
    guard columns.indices.contains(index) else {
      throw RequestError(.notFound, "no inverter \(index): the explorer runs \(columns.count) (0…\(columns.count - 1))")
    }
    let column = columns[index]
    let classes = column.inverter.config.representationSize
    let samples = edit.samples ?? 1
    guard (1...8).contains(samples) else { throw RequestError(.badRequest, "samples must be 1 to 8, got \(samples)") }
    var logits = try baseLogits(edit, columns: [column])[0]  // [1, K]
    if let delta = edit.delta {
      guard delta.count == classes else {
        throw RequestError(.badRequest, "delta has \(delta.count) values; \(column.name) has \(classes) logits")
      }
      for value in delta { _ = try finite(value, "delta") }
      logits = logits + Tensor(delta.map(Float.init), shape: [1, classes]).to(logits.device)
    }
    let generator = Generator(seed: edit.seed ?? 0)
    let spread = spreads[index]
    if let shift = edit.shift { logits = LogitManipulation.shift.apply(logits, magnitude: try finite(shift, "shift"), spread: spread, generator: generator) }
    if let scale = edit.scale { logits = LogitManipulation.scale.apply(logits, magnitude: try finite(scale, "scale"), spread: spread, generator: generator) }
    if let noise = edit.noise {
      guard try finite(noise, "noise") >= 0 else { throw RequestError(.badRequest, "noise must not be negative") }
      logits = LogitManipulation.noise.apply(logits, magnitude: noise, spread: spread, generator: generator)
    }
    if let k = edit.topK {
      guard (1...classes).contains(k) else { throw RequestError(.badRequest, "topK must be 1 to \(classes), got \(k)") }
      logits = LogitManipulation.topk.apply(logits, magnitude: Double(k), spread: spread, generator: generator)
    }
    let largest = logits.abs().max().item()
    guard largest <= 1e4 else {
      throw RequestError(.badRequest, "the edited logits reach \(largest); keep them within ±10000 (the inverter saw logits of about ±\(Int(spread * 4)))")
    }
    let batch = logits.expanded([samples, classes]).contiguous()
    let images = column.inverter.reconstruct(representation: batch, noise: column.inverter.noise(count: samples, seed: edit.seed ?? 0))
    try throwIfTorchFailed()
    var verdicts: [String] = []
    if let evaluation = column.evaluation {
      let predicted = try withNoGrad { try evaluation.logits(images).argmax(dim: 1) }.scalars(as: Int64.self)
      try throwIfTorchFailed()
      verdicts = predicted.map { evaluation.config.classNames[Int($0)] }
    }
    let picture = ImageGrid.make(images, columns: samples, padding: 2, scale: displayScale)
    return Reconstruction(picture: picture, logits: logits.squeezed(0).scalars(as: Double.self), verdicts: verdicts)
  }

  private func finite(_ value: Double, _ name: String) throws -> Double {
    guard value.isFinite else { throw RequestError(.badRequest, "\(name) must be a finite number") }
    return value
  }
}
