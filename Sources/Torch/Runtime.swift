import CTorch
import Foundation

/// An error raised by libtorch (through the shim) or by the Torch layer's own checks.
public struct TorchError: Error, CustomStringConvertible, Equatable {
  /// What went wrong, in libtorch's words where libtorch raised it.
  public let message: String

  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Process-wide libtorch settings: threads, seeds, versions.
public enum Torch {
  /// The libtorch version the program runs against, e.g. "1.13.1".
  public static var version: String { String(cString: ct_version()) }

  /// libtorch's build configuration (compiler, BLAS, oneDNN, OpenMP, CUDA), as `torch.__config__.show()`.
  public static var buildConfiguration: String {
    guard let text = ct_build_config() else { return "" }
    defer { ct_free_string(text) }
    return String(cString: text)
  }

  /// The number of threads libtorch's intra-op pool uses.
  public static var threadCount: Int {
    get { ensureInitialised(); return Int(ct_get_num_threads()) }
    set { ensureInitialised(); ct_set_num_threads(Int32(max(1, newValue))) }
  }

  /// Makes libtorch's operations on the calling thread run on that thread alone, for helper
  /// threads (a data loader's) that work beside the main one. Each thread that starts a parallel
  /// region gets its own OpenMP team; once the process holds more OpenMP threads than cores,
  /// libgomp stops spinning between regions and puts its threads to sleep, and every region then
  /// pays a wake-up (measured: a 32×32 inverter step took 298 ms instead of 257 ms).
  public static func useOneThreadOnThisThread() {
    ensureInitialised()
    ct_use_one_thread_here()
  }

  /// Seeds libtorch's global generator (used by dropout and by creation calls given no generator).
  public static func manualSeed(_ seed: UInt64) {
    ensureInitialised()
    ct_manual_seed(seed)
  }

  /// Allows or forbids TensorFloat-32 (10-bit mantissa) in CUDA matrix products and
  /// convolutions: fast on tensor cores, but not float32 arithmetic. No effect on the CPU.
  public static func allowTF32(_ allowed: Bool) { ct_set_allow_tf32(allowed) }

  /// Waits until the GPU has finished its queued work (nothing to wait for on the CPU).
  public static func synchronize() { ct_cuda_synchronize() }

  /// What the linked libtorch was built with, read from its build configuration.
  public struct BuildInfo: Equatable, Sendable {
    /// e.g. "Intel(R) oneAPI Math Kernel Library Version 2024.2", or the BLAS named in BLAS_INFO.
    public var blas: String?
    /// oneDNN (MKL-DNN) version, e.g. "v3.12.0".
    public var oneDNN: String?
    /// The CUDA runtime it was built for, e.g. "13.0", or nil for a CPU-only build.
    public var cuda: String?
    public var cuDNN: String?
    public var cpuCapability: String?
  }

  /// The BLAS, oneDNN, CUDA and CPU kernels of the linked libtorch (`torch.__config__.show()`).
  public static var buildInfo: BuildInfo { parseBuildConfiguration(buildConfiguration) }

  /// Parses the text of `torch.__config__.show()`.
  public static func parseBuildConfiguration(_ text: String) -> BuildInfo {
    var info = BuildInfo()
    func after(_ marker: String, in line: Substring) -> String? {
      guard let range = line.range(of: marker) else { return nil }
      return line[range.upperBound...].trimmingCharacters(in: .whitespaces)
    }
    var blasInfo: String?
    var usesCUDA = false
    for line in text.split(separator: "\n") {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.contains("Math Kernel Library Version") {
        info.blas = trimmed.replacingOccurrences(of: "- ", with: "").components(separatedBy: "-Product").first
      }
      if let version = after("MKL-DNN ", in: line) ?? after("oneDNN ", in: line) {
        info.oneDNN = version.split(separator: " ").first.map(String.init)
      }
      if let version = after("CUDA Runtime ", in: line) { info.cuda = version }
      if let version = after("CuDNN ", in: line) { info.cuDNN = version }
      if let capability = after("CPU capability usage: ", in: line) { info.cpuCapability = capability }
      for setting in line.split(separator: ",") {
        let pair = setting.trimmingCharacters(in: .whitespaces)
        if let range = pair.range(of: "BLAS_INFO=") { blasInfo = String(pair[range.upperBound...]) }
        if pair == "USE_CUDA=ON" || pair == "USE_CUDA=1" { usesCUDA = true }
      }
    }
    if info.blas == nil { info.blas = blasInfo }
    if info.cuda == nil && usesCUDA { info.cuda = "yes (version not stated)" }
    return info
  }

  /// Whether a CUDA device can be used by this libtorch build.
  public static var cudaIsAvailable: Bool { ct_cuda_is_available() }
  /// The number of CUDA devices visible (0 without CUDA).
  public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }

  /// The BLAS library mapped into this process (e.g. `/usr/lib/…/libopenblas.so.0`), if any.
  public static var loadedBLAS: String? {
    ensureInitialised()
    guard let path = ct_loaded_blas() else { return nil }
    defer { free(path) }
    return String(cString: path)
  }

  /// The folder of the libtorch libraries this process runs on (read from /proc/self/maps).
  public static var libraryFolder: String? {
    ensureInitialised()
    // Read through a file handle: String(contentsOfFile:) stops after the first page of /proc files.
    guard let file = FileHandle(forReadingAtPath: "/proc/self/maps"), let bytes = try? file.readToEnd() else { return nil }
    for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
      guard let slash = line.firstIndex(of: "/") else { continue }
      let path = String(line[slash...])
      if path.hasSuffix("/libtorch_cpu.so") { return (path as NSString).deletingLastPathComponent }
    }
    return nil
  }

  /// Whether OpenBLAS was found and limited to one thread at start-up.
  public private(set) static var blasLimitedToOneThread = false

  nonisolated(unsafe) private static var initialised = false
  private static let initialisationLock = NSLock()

  /// Applies the start-up settings once per process: malloc thresholds, OpenBLAS limited to one
  /// thread, and libtorch's pool sized to every core (or `AFTERIMAGE_THREADS`).
  public static func ensureInitialised() {
    initialisationLock.lock()
    defer { initialisationLock.unlock() }
    guard !initialised else { return }
    initialised = true
    ct_tune_allocator()
    blasLimitedToOneThread = ct_limit_blas_threads() == 1
    let environment = ProcessInfo.processInfo.environment
    let threads = environment["AFTERIMAGE_THREADS"].flatMap(Int.init)
      ?? ProcessInfo.processInfo.activeProcessorCount
    ct_set_num_threads(Int32(max(1, threads)))
  }
}

// MARK: - Mixed precision

/// Mixed precision: run the ops that autocast lists (convolutions, matrix products) in a lower
/// precision while weights, reductions and losses stay in float32.
public enum Precision: String, Codable, CaseIterable, Sendable {
  /// Everything in float32 (the default; the only mode whose numbers tests pin down).
  case float32
  /// bfloat16 autocast: fast on CUDA (tensor cores); on the CPU only where it has AMX/AVX-512 BF16.
  case bf16

  /// Runs `body` with autocast on for `device` when the precision asks for it.
  public func run<Result>(on device: Device, _ body: () throws -> Result) rethrows -> Result {
    guard self == .bf16 else { return try body() }
    let code = device.code
    let (wasEnabled, previousType) = (ct_autocast_enabled(code), ct_autocast_dtype(code))
    ct_set_autocast(code, DType.bfloat16.code, true)
    defer { ct_set_autocast(code, previousType, wasEnabled) }
    return try body()
  }
}

// MARK: - Errors from the shim

/// The thread's error-catching scopes (see `catchingTorchErrors`): depth and first error.
private final class ErrorScope {
  var depth = 0
  var firstError: TorchError?
}

private let errorScopeKey = "afterimage.torch.error-scope"

private func currentErrorScope() -> ErrorScope {
  let dictionary = Thread.current.threadDictionary
  if let scope = dictionary[errorScopeKey] as? ErrorScope { return scope }
  let scope = ErrorScope()
  dictionary[errorScopeKey] = scope
  return scope
}

/// Runs `body`, turning any libtorch error raised inside it into a thrown `TorchError`
/// instead of a trap. Use it around work whose failure a user can cause: running a model they
/// supplied, shapes read from their files.
///
/// Inside the scope a failing operation returns a placeholder, an empty tensor of rank 8
/// (`failurePlaceholderShape`), and later operations go on; the first error is thrown when the
/// scope ends, so results computed after it are discarded. Reading the placeholder's shape never
/// traps (any dimension up to the eighth is 0), but Swift code that indexes values it read from
/// tensors must first call `throwIfTorchFailed()`: an empty array indexed by a count from
/// elsewhere would trap where the error should have been thrown.
public func catchingTorchErrors<Result>(_ body: () throws -> Result) throws -> Result {
  let scope = currentErrorScope()
  scope.depth += 1
  let outer = scope.firstError
  if scope.depth == 1 { scope.firstError = nil }
  defer { scope.depth -= 1 }
  let result = try body()
  if let error = scope.firstError {
    if scope.depth == 1 { scope.firstError = nil } else { scope.firstError = outer ?? error }
    throw error
  }
  return result
}

/// Throws now the first libtorch error raised so far in the enclosing `catchingTorchErrors`
/// scope (which then ends with it); does nothing outside a scope or when nothing failed. Call it
/// before reading tensor values into Swift arrays that are indexed by sizes known elsewhere.
public func throwIfTorchFailed() throws {
  let scope = currentErrorScope()
  if scope.depth > 0, let error = scope.firstError { throw error }
}

/// The shape of the tensor a failed operation returns inside a `catchingTorchErrors` scope: no
/// elements, and enough dimensions that `shape[i]` does not trap for any tensor Afterimage reads.
public let failurePlaceholderShape = [Int](repeating: 0, count: 8)

/// Reads and clears the shim's thread-local error message.
@inline(never)
func takeShimError(_ context: @autoclosure () -> String) -> TorchError {
  let message = ct_last_error().map { String(cString: $0) } ?? "unknown libtorch failure"
  ct_clear_error()
  return TorchError("\(context()): \(message)")
}

/// Handles a failed shim call: throws inside `catchingTorchErrors` scopes' bookkeeping, traps
/// outside them (a programmer error, e.g. mismatched shapes inside model code).
@inline(never)
func reportShimFailure(_ context: @autoclosure () -> String) {
  let error = takeShimError(context())
  let scope = currentErrorScope()
  guard scope.depth > 0 else { fatalError("libtorch: \(error.message)") }
  if scope.firstError == nil { scope.firstError = error }
}

/// Unwraps a tensor handle returned by the shim.
@inline(__always)
func checked(_ handle: ct_tensor?, _ context: @autoclosure () -> String = "operation")
  -> ct_tensor
{
  if let handle { return handle }
  reportShimFailure(context())
  // Inside a catching scope: go on with the placeholder; the error is thrown at scope end.
  var zeros = failurePlaceholderShape.map(Int64.init)
  return ct_zeros(&zeros, Int32(zeros.count), DType.float32.code, -1)!
}

/// Checks a status returned by the shim (0 on success).
@inline(__always)
func checked(status: Int32, _ context: @autoclosure () -> String = "operation") {
  if status < 0 { reportShimFailure(context()) }
}
