import Foundation
import TestSupport
import XCTest

@testable import Afterimage
@testable import Torch

/// The c10d layer: processes started by the launcher (or torchrun-style, from the environment)
/// form a Gloo group on loopback and get the right collective results, and a rank that cannot
/// reach the others says so within its timeout.
final class DistributedTests: XCTestCase {
  /// A port for one test's rendezvous (tests may run while another job holds 29500).
  func freePort() -> Int { Int.random(in: 20_000...40_000) }

  func testTwoProcessesAllReduceBroadcastAndMeetAtABarrier() throws {
    let root = try temporaryDirectory()
    let (status, output) = try runAfterimage(
      ["distributed", "check", "--nproc-per-node", "2", "--master-port", "\(freePort())", "--elements", "1000", "--distributed-timeout", "60"], in: root)
    XCTAssertEqual(status, 0, output)
    for check in ["all-reduce (sum)", "all-reduce (mean)", "broadcast from rank 0", "barrier"] {
      XCTAssertTrue(output.contains("ok   \(check)"), "\(check) on both ranks:\n\(output)")
    }
    XCTAssertTrue(output.contains("launched rank 0 of 2") && output.contains("launched rank 1 of 2"), output)
  }

  func testARankWithoutItsPeersGivesUpWithItsRankAndTheTimeout() throws {
    let process = afterimageProcess(["distributed", "check", "--distributed-timeout", "3"], in: try temporaryDirectory())
    process.environment = (process.environment ?? [:]).merging(
      ["WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(freePort())"]) { $1 }
    let pipe = Pipe()
    process.standardError = pipe
    process.standardOutput = pipe
    let start = Date()
    let deadline = try process.run(deadline: 120)
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    try deadline.wait()
    XCTAssertNotEqual(process.terminationStatus, 0)
    XCTAssertTrue(output.contains("rank 0 of 2 could not join the job") && output.contains("within 3 s"), output)
    XCTAssertLessThan(Date().timeIntervalSince(start), 60, "it gave up instead of hanging")
  }

  func testTheTorchrunVariablesAreReadOrRefusedByName() throws {
    XCTAssertNil(try Rendezvous.fromEnvironment([:]), "no WORLD_SIZE: a single process")
    let job = try XCTUnwrap(try Rendezvous.fromEnvironment(
      ["WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29400"]))
    XCTAssertEqual(job, Rendezvous(rank: 3, worldSize: 4, localRank: 1, masterAddress: "node0", masterPort: 29400))
    XCTAssertEqual(try Rendezvous.fromEnvironment(job.environment), job, "what the launcher sets reads back")
    for (environment, named) in [
      (["WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"], "RANK is not set"),
      (["WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"], "RANK=2"),
      (["WORLD_SIZE": "two", "RANK": "0", "MASTER_ADDR": "a", "MASTER_PORT": "1"], "WORLD_SIZE=two"),
      (["WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "1"], "MASTER_ADDR is not set"),
      (["WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "a", "MASTER_PORT": "99999"], "MASTER_PORT=99999"),
    ] {
      XCTAssertThrowsError(try Rendezvous.fromEnvironment(environment)) { XCTAssertTrue("\($0)".contains(named), "\($0)") }
    }
  }

  // MARK: data-parallel training

  static let tinyClassifier = [
    "classifier", "train", "--dataset", "shapes:train=64,test=32", "--arch", "evalnet", "--width", "0.25", "--epochs", "1",
    "--batch-size", "32", "--warmup-steps", "1",
  ]

  func inverterTraining(steps: Int, out: String) -> [String] {
    ["inverter", "train", "--classifier", "c", "--out", out, "--steps", "\(steps)", "--batch-size", "8", "--ch", "4", "--noise-size", "16",
     "--no-attention", "--train-count", "32", "--checkpoint-every", "5", "--sample-every", "1000", "--distributed-timeout", "60"]
  }

  /// The largest difference between two runs' checkpoints over their floating-point tensors.
  func largestDifference(_ a: URL, _ b: URL) throws -> (value: Double, name: String) {
    let (x, y) = (try Safetensors.read(a.appendingPathComponent("checkpoint.safetensors")), try Safetensors.read(b.appendingPathComponent("checkpoint.safetensors")))
    var worst = (value: 0.0, name: "")
    for (name, tensor) in x.tensors where tensor.dtype.isFloatingPoint && tensor.count > 0 {
      let other = try y.tensor(name)
      let difference = (tensor.to(.float64) - other.to(.float64)).abs().max().item()
      if difference > worst.value { worst = (difference, name) }
    }
    return worst
  }

  /// The last metrics line's values.
  func lastMetrics(_ run: URL) throws -> [String: Double] {
    let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    let line = try XCTUnwrap(text.split(separator: "\n").last)
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
  }

  /// Compares every logged value but the wall-clock throughput, which no two runs share.
  func assertClose(_ a: [String: Double], _ b: [String: Double], relative: Double, _ what: String) {
    XCTAssertEqual(Set(a.keys), Set(b.keys), what)
    for (key, value) in a where key != "images_per_second" {
      let other = b[key] ?? .nan
      XCTAssertLessThanOrEqual(abs(value - other), relative * max(abs(value), abs(other), 1e-3), "\(what): \(key) \(value) against \(other)")
    }
  }

  /// Two processes with 4 images each take the steps one process takes with 8, when its batch
  /// norm keeps the same per-rank statistics (--batch-norm-groups 2) and it has one thread like
  /// each rank (libtorch's kernels sum in another order with two).
  func testTwoProcessesTrainTheInverterAsOneProcessWithTheWholeBatch() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try runAfterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let parallel = try runAfterimage(inverterTraining(steps: 5, out: "parallel") + ["--nproc-per-node", "2", "--master-port", "\(freePort())"], in: root)
    XCTAssertEqual(parallel.status, 0, parallel.output)
    XCTAssertTrue(parallel.output.contains("data-parallel: 2 processes, 4 images each per step"), parallel.output)
    XCTAssertEqual(try runAfterimage(inverterTraining(steps: 5, out: "single") + ["--batch-norm-groups", "2", "--threads", "1"], in: root).status, 0)
    XCTAssertEqual(try runAfterimage(inverterTraining(steps: 5, out: "whole-batch") + ["--threads", "1"], in: root).status, 0)
    let (p, s, w) = (root.appendingPathComponent("parallel"), root.appendingPathComponent("single"), root.appendingPathComponent("whole-batch"))
    assertClose(try lastMetrics(p), try lastMetrics(s), relative: 1e-4, "losses and gradient norms at step 5")
    // Adam divides by the gradients' spread, so a parameter whose gradient is near zero moves a
    // whole step on float noise; the weights are compared against the control: one process with
    // whole-batch statistics, another trajectory.
    let (same, control) = (try largestDifference(p, s), try largestDifference(s, w))
    XCTAssertLessThan(same.value, control.value / 10, "G, D, their optimisers and the EMA after 5 steps: \(same) against the control's \(control)")
  }

  func testTwoProcessesTrainTheClassifierAsOneProcessWithTheWholeBatch() throws {
    let root = try temporaryDirectory()
    // Augmented, adversarially trained (PGD with a random start), batch norm: every draw counts.
    let train = ["classifier", "train", "--dataset", "shapes:train=48,test=16", "--arch", "resnet20", "--width", "0.25", "--epochs", "1",
                 "--batch-size", "16", "--warmup-steps", "1", "--adversarial", "linf:8/255", "--attack-steps", "2", "--final-attack-count", "4",
                 "--distributed-timeout", "60"]
    let parallel = try runAfterimage(train + ["--out", "parallel", "--nproc-per-node", "2", "--master-port", "\(freePort())"], in: root)
    XCTAssertEqual(parallel.status, 0, parallel.output)
    XCTAssertEqual(try runAfterimage(train + ["--out", "single", "--batch-norm-groups", "2", "--threads", "1"], in: root).status, 0)
    XCTAssertEqual(try runAfterimage(train + ["--out", "whole-batch", "--threads", "1"], in: root).status, 0)
    let (p, s, w) = (root.appendingPathComponent("parallel"), root.appendingPathComponent("single"), root.appendingPathComponent("whole-batch"))
    let losses = { (run: URL) -> [String: Double] in
      let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.split(separator: "\n")[0].utf8)) as? [String: Double])
    }
    assertClose(try losses(p), try losses(s), relative: 1e-4, "loss and accuracy at step 3")
    // PGD steps by the gradient's sign, which turns float noise into whole steps on a few pixels.
    let (same, control) = (try largestDifference(p, s), try largestDifference(s, w))
    XCTAssertLessThan(same.value, control.value / 10, "weights, momentum and running statistics after 3 steps: \(same) against the control's \(control)")
    XCTAssertTrue(FileManager.default.fileExists(atPath: p.appendingPathComponent("results.json").path), "rank 0 evaluated and wrote the results")
  }

  /// Starts `arguments` with its output in a file and a deadline of 10 minutes; returns the
  /// process's deadline and the file.
  func start(_ arguments: [String], in root: URL, log name: String) throws -> (Deadline, URL) {
    let log = root.appendingPathComponent(name)
    FileManager.default.createFile(atPath: log.path, contents: nil)
    let process = afterimageProcess(arguments, in: root)
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    return (try process.run(deadline: 600), log)
  }

  /// Waits (up to `seconds`) for `condition`.
  func wait(seconds: Double, for condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if condition() { return true }
      usleep(50_000)
    }
    return condition()
  }

  func checkpointStep(_ run: URL) -> Int {
    (try? RunDirectory(url: run).readCheckpoint(kind: "inverter").step) ?? 0
  }

  func testARankThatDiesTakesTheJobDownWithAClearError() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try runAfterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let run = root.appendingPathComponent("i")
    let (job, log) = try start(inverterTraining(steps: 2000, out: "i") + ["--nproc-per-node", "2", "--master-port", "\(freePort())"], in: root, log: "log")
    let launcher = job.process
    XCTAssertTrue(wait(seconds: 120) { checkpointStep(run) >= 5 }, "training got under way")
    let text = try String(contentsOf: log, encoding: .utf8)
    let pid = try XCTUnwrap(text.components(separatedBy: "launched rank 1 of 2 as process ").dropFirst().first?.prefix { $0.isNumber })
    let killed = Date()
    kill(try XCTUnwrap(Int32(pid)), SIGKILL)
    XCTAssertTrue(wait(seconds: 60) { !launcher.isRunning }, "the job stopped instead of hanging")
    XCTAssertLessThan(Date().timeIntervalSince(killed), 60)
    try job.wait()
    XCTAssertNotEqual(launcher.terminationStatus, 0)
    let output = try String(contentsOf: log, encoding: .utf8)
    XCTAssertTrue(output.contains("the job stopped: rank 1 was killed by signal 9"), output)
    XCTAssertFalse(output.contains("Fatal error"), output)
    XCTAssertNoThrow(try RunDirectory(url: run).readCheckpoint(kind: "inverter"), "the last checkpoint is whole")
  }

  func testAnInterruptedTwoProcessRunResumesToTheEndOfAnUninterruptedOne() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try runAfterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let run = root.appendingPathComponent("i")
    let training = inverterTraining(steps: 40, out: "i")
    let (job, log) = try start(training + ["--nproc-per-node", "2", "--master-port", "\(freePort())"], in: root, log: "first")
    let launcher = job.process
    XCTAssertTrue(wait(seconds: 120) { checkpointStep(run) >= 10 || !launcher.isRunning })
    kill(launcher.processIdentifier, SIGINT)  // to the launcher alone: it passes it on to every rank
    try job.wait()
    let stoppedAt = checkpointStep(run)
    if stoppedAt < 40 {
      XCTAssertEqual(launcher.terminationStatus, 130, "interrupted: a checkpoint and status 130\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }
    let resumed = try runAfterimage(training + ["--resume", "--nproc-per-node", "2", "--master-port", "\(freePort())"], in: root)
    XCTAssertEqual(resumed.status, 0, resumed.output)
    XCTAssertEqual(try RunDirectory(url: run).readJSON(InverterConfig.self, from: run.appendingPathComponent("config.json")).training.steps, 40)
    XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").count, 4, "steps 10 to 40 logged once each")
    XCTAssertEqual(try runAfterimage(inverterTraining(steps: 40, out: "reference") + ["--batch-norm-groups", "2", "--threads", "1"], in: root).status, 0)
    assertClose(try lastMetrics(run), try lastMetrics(root.appendingPathComponent("reference")), relative: 2e-3, "step 40 after a stop at \(stoppedAt)")
  }

  /// Ranks started torchrun-style with another seed (or, alike, another copy of the checkpoint)
  /// would train replicas that disagree: both refuse before the first step.
  func testRanksThatDoNotStartFromTheSameWeightsRefuseToTrain() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try runAfterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let port = freePort()
    var outputs: [(Deadline, Pipe)] = []
    for rank in 0..<2 {
      let process = afterimageProcess(inverterTraining(steps: 5, out: "i\(rank)") + ["--seed", "\(rank)", "--distributed-timeout", "30"], in: root)
      process.environment = (process.environment ?? [:]).merging(
        ["WORLD_SIZE": "2", "RANK": "\(rank)", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"]) { $1 }
      let pipe = Pipe()
      process.standardOutput = pipe
      process.standardError = pipe
      outputs.append((try process.run(deadline: 300), pipe))
    }
    for (deadline, pipe) in outputs {
      let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      try deadline.wait()
      XCTAssertNotEqual(deadline.process.terminationStatus, 0)
      XCTAssertTrue(output.contains("the ranks do not start from the same step and weights"), output)
    }
  }
}
