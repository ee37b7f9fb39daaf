import Foundation
import Torch

/// `study depth`: for each classifier, the probes at every depth (stem, each stage, the pooled
/// features, the logits) and the inverters of some depths, scored against the regressor's ceiling.
public struct DepthStudy: Experiment {
  public var classifiers: [StudyClassifier]
  public var folder: String
  public var settings = InformationExperiment(classifier: "")

  public init(classifiers: [StudyClassifier], folder: String) {
    (self.classifiers, self.folder) = (classifiers, folder)
  }

  public var subject: String { classifiers.map(\.path).joined(separator: " ") }

  public func run(on device: Device) throws -> ExperimentOutcome<DepthStudyResult> {
    let parts = StudyParts(folder: URL(fileURLWithPath: folder), device: device)
    var results: [DepthStudyResult.Entry] = []
    var figures: [Figure] = []
    for classifier in classifiers {
      let information = try parts.information(classifier, representations: nil, settings: settings)
      results.append(.init(name: classifier.name, information: information))
      figures.append(.chart(name: "curve-\(classifier.name).svg", information.depthChart(title: "\(classifier.name): what each depth holds")))
      // The part's grid: originals, then a row per inverted depth.
      let grid = URL(fileURLWithPath: folder).appendingPathComponent("parts/\(classifier.name)/figure.png")
      if FileManager.default.fileExists(atPath: grid.path) {
        figures.append(.copy(name: "figure-\(classifier.name).png", from: grid))
      }
    }
    return ExperimentOutcome(DepthStudyResult(entries: results), figures: figures)
  }
}

public struct DepthStudyResult: ExperimentResult {
  public struct Entry: Codable {
    public var name: String
    public var information: InformationResult
  }
  public var entries: [Entry]

  public static let kinds = ["depth-study"]
  public var title: String { "Information across depth (Shapes)" }
  public var measures: String {
    "Each Shapes classifier's representations, from the stem to the logits, probed for the nuisance factors (MLP-probe R², 1: all there, 0: nothing; feature maps average-pooled to at most 4×4 cells). The figures: R² per factor against depth, and originals above reconstructions from the inverted depths (the pooled features, then the logits)."
  }

  public var summary: String? {
    entries.map { entry in "\(entry.name): \(entry.information.summary ?? "")" }.joined(separator: " ")
  }

  public var lines: [String] { entries.flatMap { [""] + $0.information.lines } }

  public struct Row: Codable {
    public var name: String
    public var representation: String
    public var size: Int
    public var probe: FactorColumns
    public var reconstructions: FactorColumns?
  }

  /// One row per classifier and depth: the MLP probe's R² per factor (and the reconstructions'
  /// where that depth was inverted).
  public var tabulated: any Encodable {
    entries.flatMap { entry in
      entry.information.layers.map { layer in
        FlatRow(name: entry.name, representation: layer.representation, size: layer.size, what: "MLP probe", values: FactorColumns(layer.mlp))
      } + entry.information.layers.filter { $0.reconstructions != nil }.map { layer in
        FlatRow(name: entry.name, representation: layer.representation, size: layer.size, what: "from reconstructions", values: FactorColumns(layer.reconstructions!))
      }
    }
  }
}

/// A table row: who, which representation, how it was read, and R² per factor.
public struct FlatRow: Encodable {
  public var name: String
  public var representation: String
  public var size: Int?
  public var what: String
  public var values: FactorColumns

  enum CodingKeys: String, CodingKey { case name, representation, size, what = "read_by" }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(name, forKey: .name)
    try c.encode(representation, forKey: .representation)
    try c.encodeIfPresent(size, forKey: .size)
    try c.encode(what, forKey: .what)
    try values.encode(to: encoder)
  }
}
