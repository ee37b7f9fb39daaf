import CTorch
import Foundation

/// A TorchScript module saved by PyTorch (`torch.jit.save`), loaded with `torch::jit::load` and
/// called on tensors. Errors from the module (wrong input size, wrong dtype) are thrown, never
/// trapped: the module is the user's, so its failures are input errors.
public final class TorchScriptModule {
  let handle: ct_module
  /// Where the module was loaded from.
  public let path: String

  /// Loads the module at `path` onto `device`.
  public init(contentsOf path: String, device: Device = .cpu) throws {
    Torch.ensureInitialised()
    let url = URL(fileURLWithPath: path)
    guard FileManager.default.isReadableFile(atPath: path) else {
      throw TorchError("cannot read \(path): \(describeReadFailure(url))")
    }
    guard let handle = ct_jit_load(path, device.code) else {
      let error = takeShimError("loading \(path)")
      throw TorchError(
        "\(path) is not a TorchScript module (save one with torch.jit.save(torch.jit.script(model), path) "
          + "or torch.jit.trace): \(error.message.split(separator: "\n").first ?? "")")
    }
    self.handle = handle
    self.path = path
  }

  deinit { ct_jit_free(handle) }

  /// Sets training (`true`) or evaluation mode.
  public func train(_ training: Bool = true) throws {
    if ct_jit_set_training(handle, training) < 0 { throw takeShimError("setting the mode of \(path)") }
  }

  /// The number of scalars in the module's parameters.
  public var parameterCount: Int {
    var count: Int64 = 0
    _ = ct_jit_parameter_count(handle, &count)
    return Int(count)
  }

  /// Runs `forward` on `inputs`; the module must return a single tensor.
  public func callAsFunction(_ inputs: Tensor...) throws -> Tensor {
    try forward(inputs)
  }

  /// Runs `forward` on `inputs`; the module must return a single tensor.
  public func forward(_ inputs: [Tensor]) throws -> Tensor {
    let handles: [ct_tensor?] = inputs.map { $0.handle }
    let result = handles.withUnsafeBufferPointer { ct_jit_forward(handle, $0.baseAddress, Int32($0.count)) }
    guard let result else {
      let error = takeShimError("running \(path)")
      throw TorchError(Self.firstMeaningfulLines(of: error.message))
    }
    return Tensor(handle: result)
  }

  /// TorchScript errors carry the whole interpreter traceback; the first lines say what failed.
  static func firstMeaningfulLines(of message: String) -> String {
    let lines = message.split(separator: "\n", omittingEmptySubsequences: true)
    if let last = lines.last(where: { $0.contains("Error") || $0.contains("error") }) {
      return "\(lines.first ?? ""): \(last.trimmingCharacters(in: .whitespaces))"
    }
    return lines.prefix(3).joined(separator: " ")
  }
}
