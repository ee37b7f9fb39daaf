import Afterimage
import Foundation
import XCTest

final class EnvironmentTests: XCTestCase {
  func testDebianPackageVersionsAreReadFromTheStatusFile() throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("status-\(UUID().uuidString)")
    try """
      Package: dataset-fashion-mnist
      Status: install ok installed
      Version: 0.0~git20200523.55506a9-1

      Package: removed-thing
      Status: deinstall ok config-files
      Version: 1.0
      """.write(to: url, atomically: true, encoding: .utf8)
    XCTAssertEqual(
      Environment.debianPackageVersion("dataset-fashion-mnist", statusFile: url.path), "0.0~git20200523.55506a9-1")
    XCTAssertNil(Environment.debianPackageVersion("removed-thing", statusFile: url.path))
    XCTAssertNil(Environment.debianPackageVersion("absent", statusFile: url.path))
  }

  func testSelfCheckLearnsItsSyntheticTask() {
    let result = SelfCheck.run(steps: 40, seed: 1)
    XCTAssertLessThan(result.finalLoss, result.initialLoss)
    XCTAssertGreaterThan(result.accuracy, 0.75, "chance is 0.5")
  }
}
