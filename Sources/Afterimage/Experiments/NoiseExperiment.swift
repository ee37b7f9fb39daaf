import Foundation
import Torch

/// `analyze noise`: the logits held fixed, the generator's noise resampled.
public struct NoiseExperiment: HeldOutExperiment {
  public var images: HeldOutImages
  /// Reconstructions per image (at least 2).
  public var samples: Int

  /// Noise samples per image by default.
  public static let defaultSamples = 4

  public init(images: HeldOutImages, samples: Int = defaultSamples) {
    self.images = images
    self.samples = samples
  }

  public func run(on device: Device) throws -> ExperimentOutcome<NoiseResult> {
    let held = try images.load(on: device)
    let count = max(2, samples)
    let (diversity, rows, perImage) = try LogitExperiments.noise(images: held.images, inverter: held.inverter, evaluation: held.evaluation, samples: count)
    var scores = ScoreTable()
    scores.add("noise_diversity", perImage)
    return ExperimentOutcome(
      NoiseResult(noiseDiversity: diversity, samples: count), figures: [.rows([held.images] + rows, shown: images.shown, scale: held.figureScale)],
      scores: scores)
  }
}

public struct NoiseResult: ExperimentResult {
  /// Mean pairwise perceptual distance between reconstructions of the same logits.
  public var noiseDiversity: Double
  /// Noise samples per image.
  public var samples: Int

  enum CodingKeys: String, CodingKey { case noiseDiversity = "noise_diversity", samples }


  public static let kinds = ["noise"]
  public var title: String { "Noise resampling" }
  public var measures: String {
    "The logits are held fixed and the generator's noise is resampled; the distance between the resulting pictures is what the logits leave undetermined."
  }
  public var summary: String? { String(format: "Reconstructions of the same logits differ by a mean perceptual distance of %.3f.", noiseDiversity) }
  public var lines: [String] {
    [String(format: "noise diversity (mean pairwise perceptual distance of reconstructions of the same logits): %.4f", noiseDiversity),
     "(figure rows: originals, then one row per noise sample)"]
  }
}

// In an extension, so the memberwise initialiser stays.
extension NoiseResult {
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    noiseDiversity = try container.decode(Double.self, forKey: .noiseDiversity)
    // Written as a number with a fraction before versioning.
    samples = Int(try container.decode(Double.self, forKey: .samples))
  }
}
