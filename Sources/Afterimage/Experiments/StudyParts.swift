import Foundation
import Torch

// The studies beyond the paper (`afterimage study depth|classes|architecture`). Each is an
// experiment over models the command found or trained; the result holds the tables behind its
// figures. A study keeps each classifier's probe results in `parts/NAME/` of its folder and
// reuses them while the classifier, its inverters and the counts are unchanged, so a rerun
// costs only what changed.

/// A classifier a study reads, with the name its tables and figures give it.
public struct StudyClassifier: Codable, Equatable, Sendable {
  public var name: String
  /// Its run directory.
  public var path: String
  /// Inverters of it (run directories), scored where the study scores reconstructions.
  public var inverters: [String]
  public init(name: String, path: String, inverters: [String] = []) {
    (self.name, self.path, self.inverters) = (name, path, inverters)
  }
}

/// Probes each classifier (`InformationExperiment`) into `folder/parts/NAME`, or reads the part
/// back when it answers for the same classifier weights, inverters and counts.
struct StudyParts {
  let folder: URL
  let device: Device
  var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

  func information(_ classifier: StudyClassifier, representations: [Representation]?, settings: InformationExperiment) throws -> InformationResult {
    var experiment = settings
    experiment.classifier = classifier.path
    experiment.representations = representations
    experiment.inverters = classifier.inverters
    let part = folder.appendingPathComponent("parts/\(classifier.name)")
    if let stored = try? StoredExperiment(folder: part), let result = stored.result as? InformationResult,
      try reusable(result, for: experiment)
    {
      log("\(classifier.name): reusing \(part.path)")
      return result
    }
    return try ExperimentRunner(device: device, output: { _ in }).run(experiment, out: part.path)
  }

  /// Whether a stored part answers `experiment`: the classifier's weights, the representations,
  /// the inverters (and their weights' dates) and the counts are the same.
  func reusable(_ result: InformationResult, for experiment: InformationExperiment) throws -> Bool {
    let model = try Classifiers.load(experiment.classifier)
    let digest = try RepresentationCache.weightsDigest(experiment.classifier, config: model.config)
    let wanted = (experiment.representations ?? model.representations).map(\.description)
    let scored = result.layers.compactMap(\.inverter).sorted()
    let partDate = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("parts").path)[.modificationDate] as? Date) ?? nil
    let invertersOlder = experiment.inverters.allSatisfy { path in
      guard let date = (try? FileManager.default.attributesOfItem(atPath: "\(path)/model.safetensors")[.modificationDate] as? Date) ?? nil,
        let partDate else { return false }
      return date <= partDate
    }
    return result.classifierDigest == digest && result.layers.map(\.representation) == wanted && scored == experiment.inverters.sorted()
      && result.count == experiment.count && result.trainCount == experiment.trainCount && invertersOlder
  }
}

/// R² of the visible factors as one table row: a column per factor.
public struct FactorColumns: Codable {
  public var objectHue, objectBrightness, size, centreX, centreY, rotation, backgroundHue, backgroundBrightness: Estimate?
  /// The mean over the visible factors.
  public var mean: Double?

  public init(_ values: [String: Estimate]) {
    (objectHue, objectBrightness, size, centreX, centreY) = (values["object_hue"], values["object_brightness"], values["size"], values["centre_x"], values["centre_y"])
    (rotation, backgroundHue, backgroundBrightness) = (values["rotation"], values["background_hue"], values["background_brightness"])
    let present = FactorResult.visibleFactors.compactMap { values[$0]?.value }
    mean = present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
  }

  enum CodingKeys: String, CodingKey {
    case objectHue = "object_hue", objectBrightness = "object_brightness", size, centreX = "centre_x", centreY = "centre_y", rotation
    case backgroundHue = "background_hue", backgroundBrightness = "background_brightness", mean = "mean_r2"
  }
}
