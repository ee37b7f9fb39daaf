import Foundation
import Torch

/// A training run's folder (docs/ARCHITECTURE.md describes the files):
///
///     config.json              everything needed to rebuild the model, and the command that made it
///     model.safetensors        the weights, with the config in the file's metadata too
///     checkpoint.safetensors   weights + optimizer state + step + RNG state, written atomically
///     metrics.jsonl            one JSON object per logged step
///     samples/                 PNG grids
///     events.out.tfevents.afterimage   the same metrics, grids, command and config for TensorBoard
public struct RunDirectory {
  public let url: URL
  /// Whether training writes the TensorBoard log beside metrics.jsonl (`--no-tensorboard`: no).
  public var writesTensorBoard = true

  public init(_ path: String) { url = URL(fileURLWithPath: path) }
  public init(url: URL) { self.url = url }

  public var configURL: URL { url.appendingPathComponent("config.json") }
  public var modelURL: URL { url.appendingPathComponent("model.safetensors") }
  public var checkpointURL: URL { url.appendingPathComponent("checkpoint.safetensors") }
  public var metricsURL: URL { url.appendingPathComponent("metrics.jsonl") }
  public var resultsURL: URL { url.appendingPathComponent("results.json") }
  public var samplesURL: URL { url.appendingPathComponent("samples") }
  /// The TensorBoard log (`TensorBoardLog`).
  public var tensorBoard: TensorBoardLog { TensorBoardLog(folder: url) }
  /// The run directory of the model kept at `step` (`snapshots/step-000500`), for learning curves.
  public func snapshot(atStep step: Int) -> RunDirectory {
    RunDirectory(url: url.appendingPathComponent("snapshots").appendingPathComponent(String(format: "step-%06d", step)))
  }

  /// Creates the folder (and `samples/`).
  public func create() throws {
    do {
      try FileManager.default.createDirectory(at: samplesURL, withIntermediateDirectories: true)
    } catch {
      throw RunError("cannot create the run folder \(samplesURL.path): \(FileErrors.describe(error))")
    }
  }

  public var exists: Bool { FileManager.default.fileExists(atPath: configURL.path) }

  /// The files of a run this folder already holds (config.json, the weights, the checkpoint,
  /// metrics, results), by name.
  public var existingRunFiles: [String] {
    [configURL, modelURL, checkpointURL, metricsURL, resultsURL].filter { FileManager.default.fileExists(atPath: $0.path) }.map(\.lastPathComponent)
  }

  /// Makes sure a new run may be written here. A path that is a file is refused; a folder that
  /// holds a run is refused unless `replacing`, and with it the old run's files and samples are
  /// removed first, so nothing of the old run mixes with the new one.
  public func prepareNewRun(replacing: Bool) throws {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue {
      throw RunError("\(url.path) is a file, not a folder: choose another --out")
    }
    let found = existingRunFiles
    guard !found.isEmpty else { return }
    guard replacing else {
      let resume = hasCheckpoint ? "pass --resume to continue it, " : ""
      throw RunError("\(url.path) already holds a run (\(found.joined(separator: ", "))): \(resume)pass --force to replace it, or choose another --out")
    }
    for name in found { try FileSystem.remove(url.appendingPathComponent(name)) }
    try FileSystem.remove(samplesURL)
    try FileSystem.remove(tensorBoard.url)
  }
  public var hasCheckpoint: Bool { FileManager.default.fileExists(atPath: checkpointURL.path) }

  /// Writes `value` as pretty, key-sorted JSON, atomically (`JSONFiles.write`).
  public func writeJSON<T: Encodable>(_ value: T, to url: URL) throws { try JSONFiles.write(value, to: url) }

  /// Reads JSON of type `T`, with an error that names the file and the field (`JSONFiles.read`).
  public func readJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T { try JSONFiles.read(type, from: url) }

  /// Reads `checkpoint.safetensors`, checking that it is a `kind` checkpoint ("classifier",
  /// "inverter"); returns the file and the step it was saved at.
  public func readCheckpoint(kind: String) throws -> (file: Safetensors.File, step: Int) {
    let file = try Safetensors.read(checkpointURL)
    guard file.metadata["format"] == "afterimage-\(kind)-checkpoint", let step = file.metadata["step"].flatMap(Int.init) else {
      throw RunError("\(checkpointURL.path) is not \(kind == "inverter" ? "an" : "a") \(kind) checkpoint")
    }
    return (file, step)
  }

  /// Appends one JSON object as a line of metrics.jsonl, and its values as scalars of `step` to
  /// the TensorBoard log.
  public func appendMetrics(_ values: [String: Double], step: Int, extra: [String: String] = [:]) throws {
    if writesTensorBoard { try tensorBoard.appendScalars(values, step: step) }
    var object: [String: Any] = values.filter { $0.value.isFinite }
    object["step"] = step
    for (key, value) in extra { object[key] = value }
    try FileSystem.append(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) + Data("\n".utf8), to: metricsURL)
  }

  /// Writes a sample grid `[C, H, W]` in [0, 1] to `samples/step-NNNNNN.png`, and the same
  /// PNG as the image `samples` of `step` to the TensorBoard log.
  public func writeSampleGrid(_ grid: Tensor, step: Int) throws {
    let png = try PNG.encode(grid)
    try FileSystem.writeAtomically(png, to: samplesURL.appendingPathComponent(String(format: "step-%06d.png", step)))
    if writesTensorBoard {
      try tensorBoard.appendImage(tag: "samples", png: png, width: grid.shape[2], height: grid.shape[1], channels: grid.shape[0], step: step)
    }
  }

  /// What a diverged run keeps, in a sentence that is true: the checkpoint's step, or that
  /// none was written yet.
  public func whatIsKept(kind: String) -> String {
    guard hasCheckpoint, let step = try? readCheckpoint(kind: kind).step else {
      return "no checkpoint was written yet, so nothing is kept: lower the learning rate and start again"
    }
    return "the checkpoint of step \(step) is kept: lower the learning rate and --resume, or start again with --force"
  }

  /// Opens the run for training: creates the folder; on `resume` restores the checkpoint
  /// (`restore` returns the step it was saved at) and drops the metrics and TensorBoard events
  /// logged after it, else starts them afresh (the TensorBoard log with the command and config
  /// as text); writes config.json; installs the Ctrl-C handler. Returns the step resumed at
  /// (nil for a fresh run).
  /// `writer`: false for the ranks of a data-parallel job other than rank 0, which only restore
  /// the checkpoint and leave the folder to rank 0.
  public func beginTraining<Config: Encodable>(config: Config, resume: Bool, writer: Bool = true, restore: () throws -> Int) throws -> Int? {
    if writer { try create() }
    var resumedAt: Int?
    if resume {
      let step = try restore()
      if writer {
        try truncateMetrics(after: step)
        try tensorBoard.truncate(after: step)
      }
      resumedAt = step
    } else if writer {
      try? FileManager.default.removeItem(at: metricsURL)
    }
    if writer { try writeJSON(config, to: configURL) }
    if writer && writesTensorBoard && (resumedAt == nil || !FileManager.default.fileExists(atPath: tensorBoard.url.path)) {
      let data = try Data(contentsOf: configURL)
      let command = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["command"] as? String
      try tensorBoard.start(command: command, config: String(decoding: data, as: UTF8.self))
    }
    Interruption.install()
    return resumedAt
  }

  /// Writes `checkpoint.safetensors` atomically: every part of `parts` under its prefix, with
  /// the step, the config (one line of JSON) and the kind ("classifier", "inverter") in the metadata.
  public func writeCheckpoint(kind: String, step: Int, config: String, parts: [CheckpointPart]) throws {
    let tensors = parts.flatMap { part in part.tensors().map { (name: part.prefix + $0.name, tensor: $0.tensor) } }
    try Safetensors.write(
      tensors, metadata: ["step": String(step), "config": config, "format": "afterimage-\(kind)-checkpoint"], to: checkpointURL)
  }

  /// Restores `parts` from what `writeCheckpoint` wrote; returns the step it was saved at.
  /// A checkpoint that does not fit (another architecture, a missing generator state) is a
  /// `RunError` naming the file.
  public func restoreCheckpoint(kind: String, parts: [CheckpointPart]) throws -> Int {
    let (file, step) = try readCheckpoint(kind: kind)
    do {
      for part in parts { try part.restore(file.section(part.prefix)) }
    } catch let error as TorchError {
      throw RunError("\(checkpointURL.path) does not fit this \(kind) run: \(error.message)")
    }
    return step
  }

  /// Drops metrics lines logged after `step` (a resumed run replays those steps).
  public func truncateMetrics(after step: Int) throws {
    guard let text = try? String(contentsOf: metricsURL, encoding: .utf8) else { return }
    let kept = text.split(separator: "\n").filter { line in
      guard let data = line.data(using: .utf8),
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
        let logged = object["step"] as? Int
      else { return true }
      return logged <= step
    }
    try FileSystem.writeAtomically(Data((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8), to: metricsURL)
  }
}

/// One piece of a trainer's state in its checkpoint, under a name prefix: a module's state dict,
/// an optimizer's moments, or a random generator's state (one tensor, named by the prefix alone).
public enum CheckpointPart {
  case module(String, Module)
  case optimizer(String, any Optimizer)
  case generator(String, Generator)

  var prefix: String {
    switch self {
    case .module(let prefix, _), .optimizer(let prefix, _), .generator(let prefix, _): return prefix
    }
  }

  func tensors() -> [(name: String, tensor: Tensor)] {
    switch self {
    case .module(_, let module): return module.stateDict()
    case .optimizer(_, let optimizer): return optimizer.stateTensors()
    case .generator(_, let generator): return [("", generator.state)]
    }
  }

  func restore(_ tensors: [String: Tensor]) throws {
    switch self {
    case .module(_, let module): try module.loadStateDict(tensors)
    case .optimizer(_, let optimizer): try optimizer.loadState(tensors)
    case .generator(let name, let generator):
      guard let state = tensors[""] else { throw TorchError("it lacks the generator state \(name)") }
      try generator.restore(state)
    }
  }
}

/// A problem with a run directory or a training option that the user can fix.
public struct RunError: Error, CustomStringConvertible {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The command line a run records instead of the process's own, when one command runs another
/// in-process (`afterimage models train` running `afterimage classifier train …`).
nonisolated(unsafe) public var recordedCommandLine: [String]?

/// The command line that started this process, quoted so it can be pasted back into a shell.
public func reproducibleCommandLine() -> String {
  (recordedCommandLine ?? CommandLine.arguments).enumerated().map { index, argument in
    let shown = index == 0 ? "afterimage" : argument
    let plain = shown.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,+".contains($0) }
    return plain ? shown : "'" + shown.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }.joined(separator: " ")
}
