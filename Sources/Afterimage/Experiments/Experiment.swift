import Foundation
import Torch

/// One measurement: its inputs are the conforming type's stored properties (paths, counts,
/// seeds), `run` loads what it needs on a device and returns a typed result with the figures
/// that go beside it. `ExperimentRunner` is the one path that runs any experiment, writes its
/// folder and prints its table; the `analyze` commands and the demo both go through it.
///
/// Adding an experiment (docs/ARCHITECTURE.md, "Adding an experiment"): a file in this folder
/// named after the experiment, holding it and its result type; the result type in
/// `ExperimentCatalog.resultTypes`; and one `analyze` subcommand.
public protocol Experiment {
  associatedtype Result: ExperimentResult
  /// What the numbers are of (the inverter's run directory, or several), for experiment.json.
  var subject: String { get }
  /// Measures, on `device`.
  func run(on device: Device) throws -> ExperimentOutcome<Result>
  /// Whether `run` keeps the reconstructions as arrays (`ExperimentOutcome.arrays`, `--arrays`).
  static var keepsArrays: Bool { get }
}

extension Experiment {
  public static var keepsArrays: Bool { false }
}

/// A result as written to `results.json`: Codable, with units in its field names or docs, and
/// able to present itself (terminal lines, a sentence for the report).
public protocol ExperimentResult: Codable {
  /// The names results of this type are stored under in experiment.json and results.json
  /// (`["reconstruct"]`; the four logit manipulations share one type). `ExperimentCatalog` finds
  /// a folder's type by them.
  static var kinds: [String] { get }
  /// This result's name among `kinds` (the first, unless the type has several).
  var kind: String { get }
  /// The report section's heading, and one sentence on what the experiment measures.
  var title: String { get }
  var measures: String { get }
  /// What the numbers say, in one or two sentences (nil: no headline reading).
  var summary: String? { get }
  /// The terminal table.
  var lines: [String] { get }
  /// What the report's table shows: the result itself, or its list of rows or points.
  var tabulated: any Encodable { get }
  /// Decodes a results.json written before results had a schema version (the result alone,
  /// in the same field names). The default decodes `Self` from the file.
  static func decodeUnversioned(_ data: Data, kind: String) throws -> Self
}

extension ExperimentResult {
  public var kind: String { Self.kinds[0] }
  public var summary: String? { nil }
  public var tabulated: any Encodable { self }
  public static func decodeUnversioned(_ data: Data, kind: String) throws -> Self { try JSONDecoder().decode(Self.self, from: data) }
}

/// What `Experiment.run` returns.
public struct ExperimentOutcome<Result: ExperimentResult> {
  public var result: Result
  public var figures: [Figure]
  /// Each scored image's per-image scores (`scores.csv`), when the experiment scores images one by one.
  public var scores: ScoreTable?
  /// The originals, reconstructions and what goes with them (`--arrays`), when it has them.
  public var arrays: ReconstructionArrays?
  public init(_ result: Result, figures: [Figure] = [], scores: ScoreTable? = nil, arrays: ReconstructionArrays? = nil) {
    self.result = result
    self.figures = figures
    self.scores = scores
    self.arrays = arrays
  }
}

/// A picture an experiment writes beside its results.
public enum Figure {
  /// Tiles `images [N, C, H, W]` in rows of `columns` (a PNG).
  case grid(name: String, images: Tensor, columns: Int, scale: Int)
  /// An SVG line chart.
  case chart(name: String, LineChart)
  /// A file another experiment wrote (a study's part), copied as it is.
  case copy(name: String, from: URL)

  public var name: String {
    switch self {
    case .grid(let name, _, _, _), .chart(let name, _), .copy(let name, _): return name
    }
  }

  /// Rows of images as one grid: row r holds the first `shown` images of `rows[r]`.
  public static func rows(_ rows: [Tensor], shown: Int, scale: Int, name: String = "figure.png") -> Figure {
    let n = min(shown, rows.map { $0.shape[0] }.min() ?? 0)
    return .grid(name: name, images: Tensor.cat(rows.map { $0.narrow(dim: 0, start: 0, length: n) }), columns: max(n, 1), scale: scale)
  }

  func write(in folder: URL) throws {
    let url = folder.appendingPathComponent(name)
    switch self {
    case .grid(_, let images, let columns, let scale):
      try PNG.write(ImageGrid.make(images, columns: columns, padding: 2, scale: scale), to: url)
    case .chart(_, let chart):
      try FileSystem.writeAtomically(Data(chart.svg().utf8), to: url)
    case .copy(_, let source):
      try FileSystem.writeAtomically(try Data(contentsOf: source), to: url)
    }
  }
}

/// `experiment.json`: which experiment wrote a folder and what it ran on.
public struct ExperimentRecord: Codable {
  public var experiment: String
  /// What the numbers are of: an inverter's run directory, several, or a study's classifiers.
  public var subject: String
  public init(experiment: String, subject: String) {
    self.experiment = experiment
    self.subject = subject
  }

  enum CodingKeys: String, CodingKey { case experiment, subject, inverter }

  /// Files written before the field was renamed call the subject `inverter`.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    experiment = try container.decode(String.self, forKey: .experiment)
    if let subject = try container.decodeIfPresent(String.self, forKey: .subject) {
      self.subject = subject
    } else {
      subject = try container.decode(String.self, forKey: .inverter)
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(experiment, forKey: .experiment)
    try container.encode(subject, forKey: .subject)
  }
}

/// `results.json`: the result, its experiment, and the schema version it was written in.
/// Version 1 is this envelope; a file without `schema_version` is a bare result from before.
public struct ResultFile<Result: ExperimentResult>: Codable {
  public static var currentVersion: Int { 1 }
  public var schemaVersion: Int
  public var experiment: String
  public var result: Result

  public init(_ result: Result) {
    schemaVersion = Self.currentVersion
    experiment = result.kind
    self.result = result
  }

  enum CodingKeys: String, CodingKey { case schemaVersion = "schema_version", experiment, result }
}

/// Runs experiments into folders: `figures…`, `results.json`, `experiment.json`, and the table
/// on standard output.
public struct ExperimentRunner {
  public var device: Device
  /// Where the terminal lines go.
  public var output: (String) -> Void
  /// The formats the reconstructions are also written in (`arrays.safetensors`, `arrays.npz`).
  public var arrayFormats: [ArrayFiles.Format] = []

  public init(device: Device, output: @escaping (String) -> Void = { print($0) }) {
    self.device = device
    self.output = output
  }

  /// Runs `experiment`, writes its folder `out`, prints its table; returns its result.
  @discardableResult
  public func run<E: Experiment>(_ experiment: E, out: String) throws -> E.Result {
    guard arrayFormats.isEmpty || E.keepsArrays else {
      throw RunError("this experiment keeps no reconstructions to write as arrays: --arrays goes with analyze reconstruct and analyze factors (and inverter reconstruct)")
    }
    let outcome = try experiment.run(on: device)
    let folder = URL(fileURLWithPath: out)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for figure in outcome.figures { try figure.write(in: folder) }
    try StoredExperiment.write(outcome.result, subject: experiment.subject, in: folder)
    var written = outcome.figures.map(\.name) + ["results.json"]
    if let scores = outcome.scores {
      try scores.write(in: folder)
      written.append("scores.csv")
    }
    if !arrayFormats.isEmpty {
      if let arrays = outcome.arrays { written += try arrays.write(arrayFormats, in: folder).map(\.lastPathComponent) }
    }
    for line in outcome.result.lines { output(line) }
    output("wrote " + written.map { "\(out)/\($0)" }.joined(separator: ", "))
    return outcome.result
  }
}

/// An experiment's folder as read back: its record and its typed result.
public struct StoredExperiment {
  public let folder: URL
  public let record: ExperimentRecord
  public let result: any ExperimentResult

  /// Writes `results.json` (versioned) and `experiment.json` into `folder`.
  static func write<R: ExperimentResult>(_ result: R, subject: String, in folder: URL) throws {
    try JSONFiles.write(ResultFile(result), to: folder.appendingPathComponent("results.json"))
    try JSONFiles.write(ExperimentRecord(experiment: result.kind, subject: subject), to: folder.appendingPathComponent("experiment.json"))
  }

  /// Reads a folder written by `ExperimentRunner` (or by an `analyze` command before results
  /// were versioned). Errors name the file and the field.
  public init(folder: URL) throws {
    let recordURL = folder.appendingPathComponent("experiment.json")
    guard FileManager.default.fileExists(atPath: recordURL.path) else {
      throw RunError("\(folder.path) has no experiment.json: give folders written by `afterimage analyze …`")
    }
    record = try JSONFiles.read(ExperimentRecord.self, from: recordURL)
    guard let type = ExperimentCatalog.resultType(named: record.experiment) else {
      throw RunError("\(recordURL.path) names the experiment '\(record.experiment)', which this version does not know (known: \(ExperimentCatalog.kinds.joined(separator: ", ")))")
    }
    self.folder = folder
    result = try Self.readResult(type, kind: record.experiment, from: folder.appendingPathComponent("results.json"))
  }

  static func readResult<R: ExperimentResult>(_ type: R.Type, kind: String, from url: URL) throws -> R {
    let data = try JSONFiles.data(at: url)
    let versioned = (try? JSONDecoder().decode(SchemaProbe.self, from: data))?.schemaVersion
    return try JSONFiles.decoding(url) {
      guard let version = versioned else { return try R.decodeUnversioned(data, kind: kind) }
      guard version <= ResultFile<R>.currentVersion else {
        throw RunError("\(url.path) was written with results schema \(version), newer than this version's \(ResultFile<R>.currentVersion): update Afterimage")
      }
      return try JSONDecoder().decode(ResultFile<R>.self, from: data).result
    }
  }

  struct SchemaProbe: Decodable {
    var schemaVersion: Int
    enum CodingKeys: String, CodingKey { case schemaVersion = "schema_version" }
  }
}
