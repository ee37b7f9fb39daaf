import Foundation

/// What `classifier train` asks for: the data set, the network and the training options.
/// `config(fittedTo:)` turns it into a `ClassifierConfig` for the opened training set, which
/// decides the channels, the classes and the input normalisation. Each property's initial value
/// is the one default of that choice.
public struct ClassifierRecipe: Equatable, Sendable {
  /// As `DatasetSource` names it.
  public var dataset = "shapes"
  public var architecture = ClassifierArchitecture.resnet20
  public var width = ClassifierConfig.defaultWidth
  /// Input resolution: every data set is read at it (Fashion-MNIST's 28×28 is zero-padded to 32).
  public var resolution = 32
  public var training = ClassifierTrainingOptions.default

  public init() {}

  /// Every choice at its default.
  public static let `default` = ClassifierRecipe()

  /// The config of a classifier trained on `train`: its channels, resolution and classes, and
  /// the input normalisation measured on it (`Normalization.measured(on:)`).
  public func config(fittedTo train: Dataset, command: String?) throws -> ClassifierConfig {
    guard architecture.isBuilt else {
      throw RunError("a \(architecture.rawValue) classifier is imported (classifier import), not trained")
    }
    return ClassifierConfig(
      architecture: architecture, width: width, channels: train.channels, resolution: train.resolution, classNames: train.classNames,
      normalization: try .measured(on: train), dataset: dataset, training: training, command: command)
  }
}

extension Normalization {
  /// The input normalisation of a classifier trained on `dataset`: each channel's mean and
  /// standard deviation over up to `maximumSamples` evenly spaced images, the deviation floored
  /// at 1e-3 so that a constant channel (a gray background) is not divided by zero.
  public static func measured(on dataset: Dataset, maximumSamples: Int = 5000) throws -> Normalization {
    let statistics = try DatasetStatistics.measure(dataset, maximumSamples: maximumSamples)
    return Normalization(mean: statistics.channelMeans, std: statistics.channelStds.map { max($0, 1e-3) })
  }

  /// No normalisation: mean 0 and std 1 for each of `channels` channels (an imported model that
  /// normalises inside itself).
  public static func identity(channels: Int) -> Normalization {
    Normalization(mean: Array(repeating: 0, count: channels), std: Array(repeating: 1, count: channels))
  }
}
