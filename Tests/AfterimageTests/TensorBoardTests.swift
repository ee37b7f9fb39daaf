@testable import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// The TensorBoard log's framing, checked against known values and against TensorBoard's own
/// readers (Tests/parity/read_tensorboard.py).
final class TensorBoardTests: XCTestCase {
  func testCRC32CAndItsMaskMatchTheStandard() {
    // The check value of CRC-32C (RFC 3720, B.4) and TFRecord's mask of it.
    XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
    let crc: UInt32 = 0xE306_9283
    XCTAssertEqual(CRC32C.masked(Array("123456789".utf8)), ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
  }

  func testRecordsRoundTripAndADamagedTailIsLeftOut() {
    let payloads = [Data("first".utf8), Data(), Data(repeating: 7, count: 300)]
    let file = payloads.reduce(into: Data()) { $0 += TensorBoardLog.frame($1) }
    XCTAssertEqual(TensorBoardLog.records(in: file).payloads, payloads)
    XCTAssertFalse(TensorBoardLog.records(in: file).damagedTail)
    for cut in [1, 11, 13, 200] {
      let (kept, damaged) = TensorBoardLog.records(in: file.prefix(file.count - cut))
      XCTAssertEqual(kept, Array(payloads.prefix(2)), "cut \(cut) bytes: the whole records before it are kept")
      XCTAssertTrue(damaged)
    }
    var flipped = file
    flipped[flipped.count - 10] ^= 0xFF
    XCTAssertEqual(TensorBoardLog.records(in: flipped).payloads.count, 2, "a payload whose CRC fails ends the log")
  }

  func testEventsCarryTheirStep() {
    for step in [0, 1, 127, 128, 1_000_000] {
      let event = TensorBoardLog.summaryEvent(step: step, wallTime: 1.5) { $0.message(1) { $0.string(1, "x"); $0.float(2, 3) } }
      XCTAssertEqual(TensorBoardLog.step(ofEvent: event), step)
    }
  }

  /// A file cut in the middle of its last record, as `kill -9` mid-write leaves it: TensorBoard's
  /// loader yields every whole record before the cut, and a resume truncates the tail away.
  func testACutFileReadsUpToItsLastWholeRecordInTensorBoard() throws {
    let folder = try temporaryDirectory()
    let log = TensorBoardLog(folder: folder)
    try log.start(command: "afterimage test", config: "{}", wallTime: 10)
    for step in 1...5 { try log.appendScalars(["loss": Double(step)], step: step, wallTime: 10 + Double(step)) }
    let whole = try Data(contentsOf: log.url)
    try whole.prefix(whole.count - 9).write(to: log.url)
    let read = try JSONSerialization.jsonObject(with: Data(runPython("read_tensorboard.py", ["--file", log.url.path]).utf8)) as! [String: Any]
    XCTAssertEqual(read["steps"] as? [Int], [0, 0, 0, 1, 2, 3, 4], "version, command, config, then steps 1–4; step 5 was cut")
    try log.truncate(after: 3)
    let kept = TensorBoardLog.records(in: try Data(contentsOf: log.url))
    XCTAssertFalse(kept.damagedTail)
    XCTAssertEqual(kept.payloads.map(TensorBoardLog.step(ofEvent:)), [0, 0, 0, 1, 2, 3])
  }
}

extension InverterTests {
  /// What TensorBoard reads from a tiny inverter's run: every scalar of metrics.jsonl at its
  /// step (as float32), the sample grids as the PNGs in samples/, the command and config as
  /// text; a stopped and resumed run reads as one run, no step twice; `--no-tensorboard`'s
  /// setting writes no log.
  func testTensorBoardReadsTheRunAsMetricsJSONLAndTheGridsSayIt() throws {
    let root = try temporaryDirectory()
    let classifierPath = try tinyClassifier(in: root)
    var run = RunDirectory(url: root.appendingPathComponent("inverter"))
    // A run killed at step 22, after logging step 20, whose last checkpoint is of step 16: it
    // resumes at 16 and logs step 20 again, which TensorBoard must not see twice.
    try tinyTrainer(run, classifierPath: classifierPath, steps: 30, sampleEvery: 10).fit(resume: false, stopAfter: 16)
    let checkpoint16 = try Data(contentsOf: run.checkpointURL)
    try tinyTrainer(run, classifierPath: classifierPath, steps: 30, sampleEvery: 10).fit(resume: true, stopAfter: 22)
    try checkpoint16.write(to: run.checkpointURL)
    try tinyTrainer(run, classifierPath: classifierPath, steps: 30, sampleEvery: 10).fit(resume: true)
    let read = try JSONSerialization.jsonObject(with: Data(runPython("read_tensorboard.py", [run.url.path]).utf8)) as! [String: Any]
    let scalars = try XCTUnwrap(read["scalars"] as? [String: [[Double]]])
    let lines = try String(contentsOf: run.metricsURL, encoding: .utf8).split(separator: "\n").map {
      try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    var expected: [String: [[Double]]] = [:]
    for line in lines {
      let step = try XCTUnwrap(line["step"] as? Int)
      for (key, value) in line where key != "step" {
        expected[key, default: []].append([Double(step), Double(Float(try XCTUnwrap(value as? Double)))])
      }
    }
    XCTAssertEqual(Set(scalars.keys), Set(expected.keys))
    XCTAssertTrue(expected.keys.contains("images_per_second") && expected.keys.contains("G_loss_pixel"))
    // TensorBoard keeps float32; compared as float32 (the JSON between loses the last bit of a double).
    func asFloats(_ rows: [[Double]]?) -> [[Float]]? { rows?.map { $0.map(Float.init) } }
    for (tag, rows) in expected { XCTAssertEqual(asFloats(scalars[tag]), asFloats(rows), tag) }
    XCTAssertEqual(scalars["D_loss_real"]?.map { Int($0[0]) }, [10, 20, 30], "one run: each step once")
    let images = try XCTUnwrap((read["images"] as? [String: [[Any]]])?["samples"])
    XCTAssertEqual(images.map { $0[0] as? Int }, [10, 20, 30])
    for row in images {
      let step = try XCTUnwrap(row[0] as? Int)
      let png = try Data(contentsOf: run.samplesURL.appendingPathComponent(String(format: "step-%06d.png", step)))
      XCTAssertEqual(row[3] as? String, try sha256(png), "the grid of step \(step) is the PNG in samples/")
      let grid = try PNG.decode(png)
      XCTAssertEqual(row[4] as? [Int], [grid.shape[1], grid.shape[2], grid.shape[0]])
    }
    let text = try XCTUnwrap(read["text"] as? [String: [[Any]]])
    XCTAssertTrue((text["config"]?.first?[1] as? String)?.contains("\"preset\"") ?? false)
    // Without the log: nothing is written.
    run = RunDirectory(url: root.appendingPathComponent("quiet"))
    run.writesTensorBoard = false
    try tinyTrainer(run, classifierPath: classifierPath, steps: 2).fit(resume: false)
    XCTAssertFalse(FileManager.default.fileExists(atPath: run.tensorBoard.url.path))
    // …and `afterimage tensorboard` writes it afterwards from the run's files.
    let exported = try TensorBoardLog.export(run)
    XCTAssertEqual(exported.scalars, 1)
    XCTAssertEqual(exported.images, 1)
    let late = try JSONSerialization.jsonObject(with: Data(runPython("read_tensorboard.py", [run.url.path]).utf8)) as! [String: Any]
    let lateScalars = try XCTUnwrap(late["scalars"] as? [String: [[Double]]])
    let line = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: run.metricsURL)) as? [String: Any])
    XCTAssertEqual(Set(lateScalars.keys), Set(line.keys).subtracting(["step"]))
    XCTAssertEqual(lateScalars["G_loss_pixel"]?.first.map { Float($0[1]) }, Float(try XCTUnwrap(line["G_loss_pixel"] as? Double)))
    XCTAssertEqual(((late["images"] as? [String: [[Any]]])?["samples"]?.first?[0] as? Int), 2)
    XCTAssertThrowsError(try TensorBoardLog.export(RunDirectory(url: root))) { XCTAssertTrue("\($0)".contains("no config.json"), "\($0)") }
  }

  func sha256(_ data: Data) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("afterimage-sha-\(UUID().uuidString)")
    try data.write(to: path)
    defer { try? FileManager.default.removeItem(at: path) }
    return try runPythonCode("import hashlib; print(hashlib.sha256(open('\(path.path)', 'rb').read()).hexdigest())")
      .trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
