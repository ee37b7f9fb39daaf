import CTorch

/// A tensor element type; raw values are libtorch's `c10::ScalarType` codes.
public enum DType: Int32, CaseIterable, Sendable {
  case uint8 = 0
  case int32 = 3
  case int64 = 4
  case float16 = 5
  case float32 = 6
  case float64 = 7
  case bool = 11
  case bfloat16 = 15

  var code: Int32 { rawValue }

  /// Bytes per element.
  public var byteCount: Int { Int(ct_element_size(rawValue)) }

  /// Whether the type holds floating-point values (and so can carry gradients).
  public var isFloatingPoint: Bool {
    switch self {
    case .float16, .float32, .float64, .bfloat16: return true
    default: return false
    }
  }

  /// The safetensors spelling of the type ("F32", "I64", …).
  public var safetensorsName: String {
    switch self {
    case .uint8: return "U8"
    case .int32: return "I32"
    case .int64: return "I64"
    case .float16: return "F16"
    case .float32: return "F32"
    case .float64: return "F64"
    case .bool: return "BOOL"
    case .bfloat16: return "BF16"
    }
  }

  /// The type a safetensors header names, or nil for one Afterimage does not handle.
  public init?(safetensorsName name: String) {
    guard let type = DType.allCases.first(where: { $0.safetensorsName == name }) else { return nil }
    self = type
  }
}

/// Where a tensor lives.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
  case cpu
  case cuda(Int)

  var code: Int32 {
    switch self {
    case .cpu: return -1
    case .cuda(let index): return Int32(index)
    }
  }

  init(code: Int32) { self = code < 0 ? .cpu : .cuda(Int(code)) }

  public var description: String {
    switch self {
    case .cpu: return "cpu"
    case .cuda(let index): return "cuda:\(index)"
    }
  }

  /// Throws unless this libtorch build can use the device (a CUDA build with the GPU present).
  public func checkAvailable() throws {
    guard case .cuda(let index) = self else { return }
    guard Torch.cudaIsAvailable else {
      throw TorchError(
        "\(self) requested but this libtorch has no usable CUDA (a CPU build, or no GPU): use cpu, "
          + "or build against a CUDA libtorch with LIBTORCH=/path/to/libtorch")
    }
    guard index < Torch.cudaDeviceCount else {
      throw TorchError("\(self) requested but only \(Torch.cudaDeviceCount) CUDA device(s) are visible")
    }
  }

  /// The device a `--device` value names: "cpu", "cuda", "cuda:N", or "auto" (the first CUDA
  /// device when this libtorch has CUDA and a GPU is visible, else the CPU). Throws, saying what
  /// to do, for a device this build or machine cannot use.
  public static func resolve(_ text: String) throws -> Device {
    if text == "auto" { return Torch.cudaIsAvailable ? .cuda(0) : .cpu }
    guard let device = Device(text) else {
      throw TorchError("'\(text)' is not a device: use cpu, cuda, cuda:N or auto")
    }
    try device.checkAvailable()
    return device
  }

  /// Parses "cpu", "cuda" or "cuda:N".
  public init?(_ text: String) {
    if text == "cpu" { self = .cpu; return }
    if text == "cuda" { self = .cuda(0); return }
    if text.hasPrefix("cuda:"), let index = Int(text.dropFirst(5)), index >= 0 {
      self = .cuda(index)
      return
    }
    return nil
  }
}

/// Swift element types that map to a tensor dtype, for moving data in and out of tensors.
public protocol TensorScalar: Numeric {
  static var dtype: DType { get }
}
extension Float: TensorScalar { public static var dtype: DType { .float32 } }
extension Double: TensorScalar { public static var dtype: DType { .float64 } }
extension Int64: TensorScalar { public static var dtype: DType { .int64 } }
extension Int32: TensorScalar { public static var dtype: DType { .int32 } }
extension UInt8: TensorScalar { public static var dtype: DType { .uint8 } }
