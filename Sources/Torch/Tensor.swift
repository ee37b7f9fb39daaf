import CTorch

/// An n-dimensional array on a device, with autograd: a Swift owner of one libtorch tensor.
///
/// Operations return new tensors (as in PyTorch, they may share storage: `view`, `transpose`,
/// `narrow`, `detached`). Methods ending in an underscore-free `…InPlace` name mutate storage
/// and are meant for optimizers and initialisers under `withNoGrad`.
public final class Tensor {
  let handle: ct_tensor

  init(handle: ct_tensor) { self.handle = handle }
  deinit { ct_free(handle) }

  // MARK: creation

  /// A tensor of `shape` filled with zeros.
  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    shaped(shape, "zeros") { ct_zeros($0, $1, dtype.code, device.code) }
  }

  /// A tensor of `shape` filled with ones.
  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    shaped(shape, "ones") { ct_ones($0, $1, dtype.code, device.code) }
  }

  /// A tensor of `shape` with every element `value`.
  public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu)
    -> Tensor
  {
    shaped(shape, "full") { ct_full($0, $1, value, dtype.code, device.code) }
  }

  /// An uninitialised tensor of `shape` (contents are whatever memory held).
  public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    shaped(shape, "empty") { ct_empty($0, $1, dtype.code, device.code) }
  }

  /// Values from `start` up to (not including) `end` in steps of `step`.
  public static func arange(
    _ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .int64, device: Device = .cpu
  ) -> Tensor {
    Torch.ensureInitialised()
    return Tensor(handle: checked(ct_arange(start, end, step, dtype.code, device.code), "arange"))
  }

  /// `count` evenly spaced values from `start` to `end`, both included.
  public static func linspace(
    _ start: Double, _ end: Double, count: Int, dtype: DType = .float32, device: Device = .cpu
  ) -> Tensor {
    Torch.ensureInitialised()
    return Tensor(
      handle: checked(ct_linspace(start, end, Int64(count), dtype.code, device.code), "linspace"))
  }

  /// The `n`×`n` identity matrix.
  public static func eye(_ n: Int, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    Torch.ensureInitialised()
    return Tensor(handle: checked(ct_eye(Int64(n), dtype.code, device.code), "eye"))
  }

  /// Uniform samples in [0, 1); from `generator` when given, else the global generator.
  public static func rand(
    _ shape: [Int], generator: Generator? = nil, dtype: DType = .float32, device: Device = .cpu
  ) -> Tensor {
    shaped(shape, "rand") { ct_rand($0, $1, generator?.handle, dtype.code, device.code) }
  }

  /// Standard normal samples.
  public static func randn(
    _ shape: [Int], generator: Generator? = nil, dtype: DType = .float32, device: Device = .cpu
  ) -> Tensor {
    shaped(shape, "randn") { ct_randn($0, $1, generator?.handle, dtype.code, device.code) }
  }

  /// Integers drawn uniformly from `range` (lower bound included, upper excluded).
  public static func randint(
    _ range: Range<Int>, _ shape: [Int], generator: Generator? = nil, dtype: DType = .int64,
    device: Device = .cpu
  ) -> Tensor {
    shaped(shape, "randint") {
      ct_randint(
        Int64(range.lowerBound), Int64(range.upperBound), $0, $1, generator?.handle, dtype.code,
        device.code)
    }
  }

  /// A random permutation of 0..<n (int64).
  public static func randperm(_ n: Int, generator: Generator? = nil, device: Device = .cpu) -> Tensor {
    Torch.ensureInitialised()
    return Tensor(handle: checked(ct_randperm(Int64(n), generator?.handle, device.code), "randperm"))
  }

  /// A new tensor of `shape` from the shim's `make`, which takes the shape as int64 dimensions
  /// and their count; `name` names the operation if it fails.
  private static func shaped(
    _ shape: [Int], _ name: String, _ make: (UnsafePointer<Int64>?, Int32) -> ct_tensor?
  ) -> Tensor {
    Torch.ensureInitialised()
    return shape.asInt64 { Tensor(handle: checked(make($0, $1), name)) }
  }

  /// A tensor holding a copy of `values` laid out row-major in `shape`.
  public convenience init<Scalar: TensorScalar>(_ values: [Scalar], shape: [Int]) {
    let count = shape.reduce(1, *)
    precondition(
      count == values.count, "Tensor(_:shape:): shape \(shape) needs \(count) values, got \(values.count)")
    Torch.ensureInitialised()
    let handle = values.withUnsafeBytes { bytes in
      shape.asInt64 { dims, ndim in
        checked(ct_from_data(bytes.baseAddress, dims, ndim, Scalar.dtype.code), "from array")
      }
    }
    self.init(handle: handle)
  }

  /// A one-dimensional tensor holding a copy of `values`.
  public convenience init<Scalar: TensorScalar>(_ values: [Scalar]) {
    self.init(values, shape: [values.count])
  }

  /// A tensor of booleans.
  public convenience init(_ values: [Bool], shape: [Int]) {
    let bytes = Tensor(values.map { $0 ? UInt8(1) : 0 }, shape: shape)
    self.init(handle: checked(ct_to(bytes.handle, DType.bool.code, -1), "bool tensor"))
  }

  /// A zero-dimensional tensor holding `value`.
  public convenience init(scalar value: Double, dtype: DType = .float32, device: Device = .cpu) {
    Torch.ensureInitialised()
    self.init(handle: checked(ct_scalar_tensor(value, dtype.code, device.code), "scalar tensor"))
  }

  /// A tensor built from raw little-endian bytes of `dtype` (safetensors' layout).
  public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) {
    Torch.ensureInitialised()
    let handle = shape.asInt64 { dims, ndim in
      checked(ct_from_data(bytes.baseAddress, dims, ndim, dtype.code), "from bytes")
    }
    self.init(handle: handle)
  }

  // MARK: inspection

  /// The size of each dimension.
  public var shape: [Int] {
    let count = Int(ct_ndim(handle))
    var dims = [Int64](repeating: 0, count: count)
    dims.withUnsafeMutableBufferPointer { ct_shape(handle, $0.baseAddress) }
    return dims.map(Int.init)
  }

  /// The number of dimensions.
  public var rank: Int { Int(ct_ndim(handle)) }
  /// Elements between neighbours along `dim` in memory (channels-last: 1 along dimension 1).
  public func stride(dim: Int) -> Int {
    precondition(dim >= 0 && dim < rank, "stride(dim:): dimension \(dim) of a rank-\(rank) tensor")
    return Int(ct_stride(handle, Int64(dim)))
  }
  /// The number of elements.
  public var count: Int { Int(ct_numel(handle)) }
  /// The element type.
  /// A type Afterimage does not model (complex, 8-bit floats) stops the program with its code:
  /// such tensors come only from user files, which `checkSupportedDType` vets first.
  public var dtype: DType {
    let code = ct_dtype(handle)
    guard let type = DType(rawValue: code) else {
      fatalError("libtorch returned a tensor of c10::ScalarType \(code), which Afterimage does not support (supported: \(DType.allCases.map { "\($0)" }.joined(separator: ", ")))")
    }
    return type
  }

  /// Throws when the tensor's element type is one Afterimage does not model; `source` says
  /// where it came from ("running model.pt").
  public func checkSupportedDType(_ source: @autoclosure () -> String) throws {
    let code = ct_dtype(handle)
    guard DType(rawValue: code) != nil else {
      throw TorchError("\(source()) gave a tensor of c10::ScalarType \(code), which Afterimage does not support: return float32 logits (supported: \(DType.allCases.map { "\($0)" }.joined(separator: ", ")))")
    }
  }
  /// The device holding the data.
  public var device: Device { Device(code: ct_device(handle)) }
  /// Whether the elements are laid out row-major without gaps.
  public var isContiguous: Bool { ct_is_contiguous(handle) }

  /// The size of dimension `dim` (negative counts from the end).
  public func size(_ dim: Int) -> Int {
    let dims = shape
    return dims[dim < 0 ? dims.count + dim : dim]
  }

  /// The single value of a one-element tensor, as a Double.
  public func item() -> Double {
    ct_clear_error()  // the slot then speaks of this call only, not of an earlier failure
    let value = ct_item_double(handle)
    if ct_last_error() != nil { reportShimFailure("item") }
    return value
  }

  /// The single value of a one-element tensor, as an Int.
  public func itemInt() -> Int {
    ct_clear_error()
    let value = ct_item_int(handle)
    if ct_last_error() != nil { reportShimFailure("itemInt") }
    return Int(value)
  }

  /// The elements in row-major order, converted to `Scalar`.
  public func scalars<Scalar: TensorScalar>(as type: Scalar.Type = Scalar.self) -> [Scalar] {
    let n = count
    var out = [Scalar](repeating: 0, count: n)
    out.withUnsafeMutableBytes { buffer in
      checked(status: ct_copy_data(handle, buffer.baseAddress, Int64(n), Scalar.dtype.code), "scalars")
    }
    return out
  }

  /// The elements as raw bytes of the tensor's own dtype, row-major (safetensors' layout).
  public func rawBytes() -> [UInt8] {
    let n = count
    var out = [UInt8](repeating: 0, count: n * dtype.byteCount)
    out.withUnsafeMutableBytes { buffer in
      checked(status: ct_copy_data(handle, buffer.baseAddress, Int64(n), dtype.code), "rawBytes")
    }
    return out
  }

  // MARK: conversion

  /// A copy (or the same data when nothing changes) with element type `dtype`.
  public func to(_ dtype: DType) -> Tensor {
    Tensor(handle: checked(ct_to(handle, dtype.code, device.code), "to(\(dtype))"))
  }

  /// The tensor on `device`, converted to `dtype` when given.
  public func to(_ device: Device, dtype: DType? = nil) -> Tensor {
    Tensor(handle: checked(ct_to(handle, (dtype ?? self.dtype).code, device.code), "to(\(device))"))
  }

  /// The tensor with row-major contiguous storage.
  public func contiguous() -> Tensor { Tensor(handle: checked(ct_contiguous(handle), "contiguous")) }

  /// The tensor in channels-last (NHWC) memory layout, same logical shape: strided as
  /// channels-last even where one channel or a 1×1 kernel makes the layouts coincide, so that the
  /// convolutions computed from it choose channels-last too (the data is copied where the strides
  /// change; gradients flow through it).
  public func channelsLast() -> Tensor {
    Tensor(handle: checked(ct_channels_last(handle), "channelsLast"))
  }

  /// A copy with its own storage (gradients flow through it).
  public func clone() -> Tensor { Tensor(handle: checked(ct_clone(handle), "clone")) }

  /// The same data, cut from the autograd graph.
  public func detached() -> Tensor { Tensor(handle: checked(ct_detach(handle), "detach")) }

  /// A second Swift owner of the same libtorch tensor (same storage, same autograd identity).
  func alias() -> Tensor { Tensor(handle: checked(ct_shallow_copy(handle), "alias")) }
}

extension Tensor: CustomStringConvertible {
  public var description: String {
    guard let text = ct_to_string(handle) else { return "Tensor(\(shape), \(dtype))" }
    defer { ct_free_string(text) }
    return String(cString: text)
  }
}

extension Array where Element == Int {
  /// Calls `body` with the values as a C array of int64 and its length.
  @inline(__always)
  func asInt64<Result>(_ body: (UnsafePointer<Int64>?, Int32) -> Result) -> Result {
    let wide = self.map(Int64.init)
    return wide.withUnsafeBufferPointer { body($0.baseAddress, Int32($0.count)) }
  }
}
