import Foundation
import Torch

/// The inputs most experiments share: an inverter, the first `count` images of its data set's
/// test split, and the independent evaluation classifier that judges the reconstructions.
public struct HeldOutImages {
  /// The inverter's run directory.
  public var inverter: String
  /// The evaluation classifier (nil: the shipped one, `models/eval/<data set>`).
  public var evaluation: String?
  public var count: Int
  /// Images per row of the figure.
  public var shown: Int
  /// The generator noise's seed.
  public var seed: UInt64
  /// Go on when the classifier's weights or the data set's images are not those the inverter was
  /// trained on (`analyze … --allow-mismatch`).
  public var allowMismatch: Bool

  public init(inverter: String, evaluation: String? = nil, count: Int = 64, shown: Int = 8, seed: UInt64 = 0, allowMismatch: Bool = false) {
    self.inverter = inverter
    self.evaluation = evaluation
    self.count = count
    self.shown = shown
    self.seed = seed
    self.allowMismatch = allowMismatch
  }

  /// The defaults the command line shows.
  public static let defaults = HeldOutImages(inverter: "")

  /// What `load` opens.
  public struct Loaded {
    public let inverter: Inverter
    public let images: Tensor  // [N, C, R, R] on the inverter's device
    public let labels: Tensor  // [N] int64
    public let evaluation: any ImageClassifier
    /// Pixels per image pixel in figures (small images are enlarged to about 64 px).
    public var figureScale: Int { ImageGrid.scale(forResolution: inverter.config.resolution) }
  }

  public func load(on device: Device) throws -> Loaded {
    let model = try Inverter.load(inverter, allowMismatch: allowMismatch, device: device)
    let data = try DatasetSource(model.config.dataset).open(split: .test, resolution: model.config.resolution).dataset
    try model.checkOwnData(data, split: .test, allowMismatch: allowMismatch)
    // The experiments reconstruct every image several times over (noise samples, sweeps) and
    // compare them in pairs.
    try ResourceLimits.checkScoring(
      count: min(count, data.count), channels: data.channels, side: data.resolution, copies: 16, pairwise: 1, fix: "use fewer held-out images with --count")
    let batch = try data.batch(at: Array(0..<min(count, data.count)))
    return Loaded(
      inverter: model, images: batch.images.to(device), labels: batch.labels.to(device),
      evaluation: try EvaluationClassifier.load(evaluation, dataset: model.config.dataset, device: device))
  }
}

/// An experiment on one inverter's held-out images; its subject is that inverter.
public protocol HeldOutExperiment: Experiment {
  var images: HeldOutImages { get }
}

extension HeldOutExperiment {
  public var subject: String { images.inverter }
}

/// The independent classifier that judges reconstructions.
public enum EvaluationClassifier {
  /// The shipped one for `dataset` (`models/eval/<data set>`, without any `:options`), when it is there.
  public static func shipped(for dataset: String) -> String? {
    let base = dataset.split(separator: ":").first.map(String.init) ?? dataset
    let path = ModelID.evaluation(dataset: base).path(in: ShippedModels.folder)
    return FileManager.default.fileExists(atPath: path) ? path : nil
  }

  /// `path`, or the shipped one for `dataset`.
  public static func load(_ path: String?, dataset: String, device: Device) throws -> any ImageClassifier {
    guard let path = path ?? shipped(for: dataset) else {
      throw RunError("no evaluation classifier for \(dataset): pass --evaluation DIR (train one with `afterimage classifier train --arch evalnet`)")
    }
    return try Classifiers.load(path, device: device)
  }
}

extension ImageGrid {
  /// How large a tile is shown: about 64 px in an experiment's figure (many rows side by side),
  /// about 96 px in a picture a command writes on its own (`inverter reconstruct`, `data preview`).
  public enum TileSide: Int { case figure = 64, picture = 96 }

  /// The whole-pixel scale that shows an image of `resolution` at about `side` (at least 1).
  public static func scale(forResolution resolution: Int, _ side: TileSide = .figure) -> Int { max(1, side.rawValue / max(resolution, 1)) }
}
