import Foundation
import TestSupport
import XCTest

/// `afterimage explore` as a user starts it, driven by a real browser (Debian's chromium,
/// headless, through Selenium: Tests/browser/explorer_browser.py).
final class ExplorerBrowserTests: XCTestCase {
  var root: URL { parityScripts.deletingLastPathComponent().deletingLastPathComponent() }
  var executable: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("afterimage")
  }

  /// Starts `afterimage explore` on a free port in the repository (its shipped models) and
  /// returns the process and the URL it printed.
  func startExplorer(_ arguments: [String] = []) throws -> (Process, URL) {
    let process = Process()
    process.executableURL = executable
    process.arguments = ["explore", "--port", "0", "--threads", "1"] + arguments
    process.currentDirectoryURL = root
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    // The deadline ends a server that hangs, so the read below cannot block for ever.
    _ = try process.run(deadline: 600)
    addTeardownBlock { if process.isRunning { process.terminate() } }
    var printed = ""
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline, process.isRunning {
      printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
      if let range = printed.range(of: #"http://127\.0\.0\.1:\d+/"#, options: .regularExpression) {
        return (process, URL(string: String(printed[range]))!)
      }
    }
    struct NoURL: Error, CustomStringConvertible { let description: String }
    throw NoURL(description: "afterimage explore printed no URL within 2 minutes:\n\(printed)")
  }

  func testThePageWorksInARealBrowser() throws {
    let (server, url) = try startExplorer()
    let upload = try temporaryDirectory().appendingPathComponent("upload.png")
    try Data(base64Encoded: Self.smallPNG)!.write(to: upload)
    let screenshot = ProcessInfo.processInfo.environment["AFTERIMAGE_EXPLORER_SCREENSHOT"]
    let log = try runPython("../browser/explorer_browser.py", [url.absoluteString, upload.path] + (screenshot.map { [$0] } ?? []))
    print(log)
    for check in ["picking an image inverts it", "dragging a logit slider changes the reconstruction", "the permalink reopens the same view", "an uploaded PNG becomes the original", "the console has no errors"] {
      XCTAssertTrue(log.contains("ok: \(check)"), "\(check):\n\(log)")
    }
    XCTAssertTrue(server.isRunning, "the server is still up")
  }

  func testBadStartsAreRefusedClearly() throws {
    for (arguments, message) in [(["--inverter", "nowhere"], "no inverter at nowhere"), (["--port", "70000"], "--port must be 0 to 65535")] {
      let process = Process()
      process.executableURL = executable
      process.arguments = ["explore"] + arguments
      process.currentDirectoryURL = root
      let pipe = Pipe()
      process.standardOutput = pipe
      process.standardError = pipe
      let deadline = try process.run(deadline: 120)
      let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      try deadline.wait()
      XCTAssertNotEqual(process.terminationStatus, 0)
      XCTAssertTrue(output.contains(message), output)
      XCTAssertFalse(output.contains("Fatal error"), output)
    }
  }

  /// A 2×2 RGB PNG.
  static let smallPNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGM4IScnd0KOAUIBAB3SBBHfPB1bAAAAAElFTkSuQmCC"
}
