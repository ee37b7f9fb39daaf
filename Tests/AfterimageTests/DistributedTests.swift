import Foundation
import TestSupport
import XCTest

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
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
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
}
