import Foundation
import Torch
import XCTest

/// Shared by the test targets: temporary folders, the Python reference, closeness checks and
/// finite-difference gradient checks.

/// The folder holding the Python reference scripts (`Tests/parity`).
public let parityScripts = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("parity")

extension XCTestCase {
  /// A fresh temporary folder for one test, removed when the test ends (set
  /// AFTERIMAGE_KEEP_TEST_FILES=1 to keep it for a look).
  public func temporaryDirectory(_ name: String = #function) throws -> URL {
    let clean = name.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory
      .appendingPathComponent("afterimage-tests-\(clean)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    if ProcessInfo.processInfo.environment["AFTERIMAGE_KEEP_TEST_FILES"] == nil {
      addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    }
    return url
  }
}

/// The project's Python (.venv, made by scripts/setup): its torch is the libtorch the Swift side
/// links, so references are computed by the same kernels. AFTERIMAGE_PYTHON overrides it.
public let pythonInterpreter: String = ProcessInfo.processInfo.environment["AFTERIMAGE_PYTHON"]
  ?? parityScripts.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".venv/bin/python").path

/// Runs a reference script with the project's Python and returns its standard output; fails
/// the test with the script's stderr when it fails.
@discardableResult
public func runPython(_ script: String, _ arguments: [String]) throws -> String {
  try runInterpreter([parityScripts.appendingPathComponent(script).path] + arguments, describing: script)
}

/// Runs `code` (`python -c`) with the project's Python and returns its standard output;
/// `environment` is added to this process's.
public func runPythonCode(_ code: String, environment added: [String: String] = [:]) throws -> String {
  try runInterpreter(["-c", code], describing: "-c \(code)", environment: added)
}

private func runInterpreter(_ arguments: [String], describing what: String, environment added: [String: String] = [:]) throws -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: pythonInterpreter)
  process.arguments = arguments
  var environment = ProcessInfo.processInfo.environment.merging(added) { $1 }
  environment["OMP_NUM_THREADS"] = "1"
  environment["OPENBLAS_NUM_THREADS"] = "1"
  process.environment = environment
  let output = Pipe()
  let errors = Pipe()
  process.standardOutput = output
  process.standardError = errors
  let deadline = try process.run(deadline: 600)
  // Drained on another thread: a child that fills one pipe while we block on the other would hang.
  let errData = Drain(errors)
  let outData = output.fileHandleForReading.readDataToEndOfFile()
  try deadline.wait()
  guard process.terminationStatus == 0 else {
    throw TorchError(
      "\(pythonInterpreter) \(what) failed (\(process.terminationStatus)); is the project's Python "
        + "environment set up (scripts/setup)?\n\(String(decoding: errData.data, as: UTF8.self))")
  }
  return String(decoding: outData, as: UTF8.self)
}

/// The largest absolute elementwise difference between two tensors of the same shape.
public func maxDifference(_ a: Tensor, _ b: Tensor) -> Double {
  XCTAssertEqual(a.shape, b.shape)
  return (a.to(.float64) - b.to(.float64)).abs().max().item()
}

public func assertClose(
  _ a: Tensor, _ b: Tensor, atol: Double = 1e-5, _ message: String = "", file: StaticString = #filePath,
  line: UInt = #line
) {
  guard a.shape == b.shape else {
    XCTFail("shapes differ: \(a.shape) vs \(b.shape) \(message)", file: file, line: line)
    return
  }
  let difference = maxDifference(a, b)
  XCTAssertLessThanOrEqual(difference, atol, "max |a - b| = \(difference) \(message)", file: file, line: line)
}

public func assertClose(
  _ a: [Double], _ b: [Double], atol: Double, file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertEqual(a.count, b.count, file: file, line: line)
  for (x, y) in zip(a, b) {
    XCTAssertEqual(x, y, accuracy: atol, file: file, line: line)
  }
}

/// Checks autograd's gradients of `objective` against central finite differences, in float64.
///
/// `objective` must return a scalar computed from `inputs` (leaves requiring gradients, float64).
/// Up to `samplesPerInput` elements of each input are perturbed by ±`eps`.
public func assertGradientsMatchFiniteDifferences(
  _ inputs: [Tensor], eps: Double = 1e-6, tolerance: Double = 1e-6, samplesPerInput: Int = 12,
  file: StaticString = #filePath, line: UInt = #line, _ objective: () -> Tensor
) {
  for input in inputs {
    XCTAssertEqual(input.dtype, .float64, "gradient checks run in float64", file: file, line: line)
    input.requiresGrad = true
  }
  let analytic = Autograd.gradients(of: [objective()], withRespectTo: inputs, allowUnused: true)
  for (inputIndex, input) in inputs.enumerated() {
    let original = input.scalars(as: Double.self)
    let expected = analytic[inputIndex].scalars(as: Double.self)
    let stride = Swift.max(1, original.count / samplesPerInput)
    for element in Swift.stride(from: 0, to: original.count, by: stride) {
      func value(at shifted: Double) -> Double {
        var perturbed = original
        perturbed[element] = shifted
        withNoGrad { input.copy(from: Tensor(perturbed, shape: input.shape)) }
        return withNoGrad { objective().item() }
      }
      let numeric = (value(at: original[element] + eps) - value(at: original[element] - eps)) / (2 * eps)
      withNoGrad { input.copy(from: Tensor(original, shape: input.shape)) }
      let scale = Swift.max(1, Swift.abs(numeric))
      XCTAssertEqual(
        expected[element], numeric, accuracy: tolerance * scale,
        "input \(inputIndex) element \(element): autograd \(expected[element]) vs finite difference \(numeric)",
        file: file, line: line)
    }
  }
}

/// A fixed random projection turning any output into a scalar, so one gradient check covers the
/// whole Jacobian in a random direction.
public func randomProjection(of output: Tensor, seed: UInt64 = 7) -> Tensor {
  let weights = Tensor.randn(output.shape, generator: Generator(seed: seed), dtype: .float64)
  return (output * weights).sum()
}

/// The `afterimage` executable built beside the test bundle.
public var afterimageExecutable: URL {
  URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("afterimage")
}

/// Runs `afterimage arguments…` in `directory` with its logit cache there: the exit status and
/// all its output (standard output and error together). `environment` is added to this
/// process's. Past `deadline` seconds it is killed and the call throws, naming the command.
public func runAfterimage(
  _ arguments: [String], in directory: URL, environment added: [String: String] = [:], deadline seconds: Double = 600
) throws -> (status: Int32, output: String) {
  let process = afterimageProcess(arguments, in: directory)
  process.environment = process.environment?.merging(added) { $1 }
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = pipe
  let deadline = try process.run(deadline: seconds)
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  try deadline.wait()
  return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// An `afterimage arguments…` process in `directory` with its logit cache there, not started;
/// its output goes nowhere unless the caller sets it.
public func afterimageProcess(_ arguments: [String], in directory: URL) -> Process {
  let process = Process()
  process.executableURL = afterimageExecutable
  process.arguments = arguments
  process.currentDirectoryURL = directory
  process.environment = ProcessInfo.processInfo.environment.merging(["AFTERIMAGE_CACHE": directory.appendingPathComponent("cache").path]) { $1 }
  process.standardOutput = FileHandle.nullDevice
  process.standardError = FileHandle.nullDevice
  return process
}

// MARK: - Deadlines for subprocesses

/// A subprocess that outlived the deadline a test gave it.
public struct DeadlineExpired: Error, CustomStringConvertible {
  public let command: String
  public let seconds: Double
  public var description: String {
    "the command did not end within \(Int(seconds)) s and was killed (SIGTERM, a second SIGTERM, then SIGKILL): \(command)"
  }
}

/// The deadline of a subprocess a test started: no test may hang on a child. Once `seconds`
/// have passed, the process (and its process group, when it leads one) gets SIGTERM; 5 s later
/// a second SIGTERM, which ends a training run at once; 5 s later SIGKILL. `wait()` then throws
/// `DeadlineExpired`, naming the command.
public final class Deadline: @unchecked Sendable {
  public let process: Process
  public let seconds: Double
  private let lock = NSLock()
  private var expired = false
  private var finished = false

  init(_ process: Process, seconds: Double) {
    self.process = process
    self.seconds = seconds
    schedule(after: seconds, [SIGTERM, SIGTERM, SIGKILL])
  }

  private func schedule(after delay: Double, _ signals: [Int32]) {
    guard let signal = signals.first else { return }
    DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
      lock.lock()
      defer { lock.unlock() }
      guard !finished, process.isRunning else { return }
      expired = true
      let pid = process.processIdentifier
      if getpgid(pid) == pid { kill(-pid, signal) } else { kill(pid, signal) }
      schedule(after: 5, Array(signals.dropFirst()))
    }
  }

  /// Waits for the process to end; throws `DeadlineExpired` when the deadline ended it.
  public func wait() throws {
    process.waitUntilExit()
    lock.lock()
    finished = true
    let killed = expired
    lock.unlock()
    if killed { throw DeadlineExpired(command: process.commandLine, seconds: seconds) }
  }
}

extension Process {
  /// Starts the process with a deadline of `seconds` (see `Deadline`).
  public func run(deadline seconds: Double) throws -> Deadline {
    try run()
    return Deadline(self, seconds: seconds)
  }

  /// The command as a shell line: the executable and its arguments.
  public var commandLine: String {
    ([executableURL?.path ?? "?"] + (arguments ?? [])).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
  }
}

/// Reads a pipe to its end on another thread; `data` waits for the end.
public final class Drain: @unchecked Sendable {
  private var bytes = Data()
  private let done = DispatchSemaphore(value: 0)

  public init(_ pipe: Pipe) {
    let handle = pipe.fileHandleForReading
    DispatchQueue.global().async { [self] in
      bytes = handle.readDataToEndOfFile()
      done.signal()
    }
  }

  public var data: Data {
    done.wait()
    done.signal()
    return bytes
  }
}
