import CTorch
import Foundation

/// A model compiled ahead of time by PyTorch 2.x: `torch.export.export` then
/// `torch._inductor.aoti_compile_and_package`, saved as a `.pt2` package and run through
/// libtorch's AOTInductor package loader. The second way in for models TorchScript cannot hold
/// (data-dependent Python, new operators). The compiled kernels compute outputs only: no autograd
/// runs through them, and the input shape is the one exported (dynamic dimensions excepted).
public final class CompiledPackage {
  let handle: ct_package
  /// Where the package was loaded from.
  public let path: String

  /// Loads the package at `path` for `device` (a package compiled for CPU runs on the CPU only).
  public init(contentsOf path: String, device: Device = .cpu) throws {
    handle = try loadUserFile(path, { ct_package_load(path, device.code) }) { reason in
      let first = reason.split(separator: "\n").first { !$0.hasPrefix("Exception raised from") }.map(String.init) ?? reason
      return "\(path) could not be loaded as an AOTInductor package (.pt2) by libtorch \(Torch.version): \(first). "
        + "Make one with torch._inductor.aoti_compile_and_package(torch.export.export(model, (example,))) "
        + "using PyTorch \(Torch.version); a package from another PyTorch version needs that libtorch"
    }
    self.path = path
  }

  deinit { ct_package_free(handle) }

  /// The package's metadata (AOTInductor writes the device and the PyTorch version there, among others).
  public var metadata: [String: String] {
    guard let text = ct_package_metadata(handle) else {
      ct_clear_error()
      return [:]
    }
    defer { ct_free_string(text) }
    var entries: [String: String] = [:]
    for line in String(cString: text).split(separator: "\n") {
      guard let equals = line.firstIndex(of: "=") else { continue }
      entries[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return entries
  }

  /// The device the package's kernels were compiled for (its `AOTI_DEVICE_KEY`): libtorch runs a
  /// package there whatever device it is loaded for.
  public var compiledDevice: Device {
    let key = metadata["AOTI_DEVICE_KEY"] ?? "cpu"
    return key.hasPrefix("cuda") ? .cuda(0) : .cpu
  }

  /// Runs the compiled model on `inputs` and returns its outputs (flattened, in order).
  public func run(_ inputs: [Tensor]) throws -> [Tensor] {
    let handles: [ct_tensor?] = inputs.map { $0.handle }
    var outputs = [ct_tensor?](repeating: nil, count: 16)
    let count = handles.withUnsafeBufferPointer { inputBuffer in
      outputs.withUnsafeMutableBufferPointer { out in
        ct_package_run(handle, inputBuffer.baseAddress, Int32(inputBuffer.count), out.baseAddress, Int32(out.count))
      }
    }
    guard count >= 0 else {
      let error = takeShimError("running \(path)")
      throw TorchError(error.message.split(separator: "\n").prefix(2).joined(separator: " "))
    }
    let tensors = outputs.prefix(min(Int(count), outputs.count)).map { Tensor(handle: $0!) }
    for tensor in tensors { try tensor.checkSupportedDType("running \(path)") }
    return tensors
  }

  /// Runs the model and returns its single output.
  public func callAsFunction(_ inputs: Tensor...) throws -> Tensor {
    let outputs = try run(inputs)
    guard outputs.count == 1 else {
      throw TorchError("\(path) returned \(outputs.count) outputs; a classifier must return its logits alone")
    }
    return outputs[0]
  }
}
