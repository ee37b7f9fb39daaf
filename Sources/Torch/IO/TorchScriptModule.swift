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
    handle = try loadUserFile(path, { ct_jit_load(path, device.code) }) { Self.explainLoadFailure(path: path, libtorchMessage: $0) }
    self.path = path
  }

  /// Turns libtorch's reason for refusing a file into a message that says what the file is and
  /// what to do. libtorch's own reason is always kept.
  static func explainLoadFailure(path: String, libtorchMessage: String) -> String {
    let lines = libtorchMessage.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    var reason = lines.first { !$0.hasPrefix("Exception raised from") } ?? "unknown libtorch failure"
    // "[enforce fail at inline_container.cc:230] . Attempted to read …": the part after the tag,
    // and its first sentence (libtorch goes on with generic advice).
    if reason.hasPrefix("[enforce fail"), let end = reason.range(of: "] . ") { reason = String(reason[end.upperBound...]) }
    if let stop = reason.range(of: ". ") { reason = String(reason[..<stop.lowerBound]) + "." }
    let linked = "libtorch \(Torch.version), the one Afterimage is built on"
    let rebuild = "build Afterimage against a newer libtorch (scripts/setup with AFTERIMAGE_TORCH, or LIBTORCH=/path/to/libtorch)"
    // caffe2/serialize/inline_container.cc: "Attempted to read a PyTorch file with version X, but
    // the maximum supported version for reading is Y."
    if let written = firstNumber(after: "file with version ", in: libtorchMessage) {
      let readable = firstNumber(after: "supported version for reading is ", in: libtorchMessage).map { " reads formats up to \($0)" } ?? ""
      return "\(path) was saved in TorchScript file format \(written), by a PyTorch newer than \(linked) (which\(readable)). "
        + "Save it again with PyTorch \(Torch.version) (torch.jit.save), or \(rebuild). libtorch said: \(reason)"
    }
    // torch/csrc/jit/frontend/ir_emitter.cpp: "Unknown builtin op: aten::scaled_dot_product_attention."
    if let range = libtorchMessage.range(of: "Unknown builtin op: ") {
      let op = libtorchMessage[range.upperBound...].prefix { !$0.isWhitespace && $0 != "." }
      return "\(path) calls the operator \(op), which \(linked) does not have: the model was saved by a newer PyTorch. "
        + "Export it with PyTorch \(Torch.version), or \(rebuild). libtorch said: \(reason)"
    }
    if libtorchMessage.contains("PytorchStreamReader") || libtorchMessage.contains("constants.pkl") || libtorchMessage.contains("archive") {
      return "\(path) is not a TorchScript archive (save one with torch.jit.save(torch.jit.script(model), path) "
        + "or torch.jit.trace; a torch.save pickle or a state_dict is not one). libtorch said: \(reason)"
    }
    return "\(path) could not be loaded as TorchScript by \(linked): \(firstMeaningfulLines(of: libtorchMessage))"
  }

  private static func firstNumber(after marker: String, in text: String) -> Int? {
    guard let range = text.range(of: marker) else { return nil }
    return Int(text[range.upperBound...].prefix { $0.isNumber })
  }

  /// The submodules whose outputs `forward(_:returning:)` can return, by dotted name as in
  /// PyTorch's `named_modules()` ("features.3"), in the order `forward` calls them. Only calls
  /// made outside `if` branches and loops are visible; a frozen module (torch.jit.freeze) has none.
  public lazy var submoduleNames: [String] = {
    guard let text = ct_jit_submodule_calls(handle) else {
      ct_clear_error()
      return []
    }
    defer { ct_free_string(text) }
    return String(cString: text).split(separator: "\n").map(String.init)
  }()

  /// Runs `forward` and returns its output and the outputs of the named submodules (see
  /// `submoduleNames`), computed in the same pass and differentiable like the output.
  public func forward(_ inputs: [Tensor], returning requested: [String]) throws -> (output: Tensor, features: [String: Tensor]) {
    var names: [String] = []
    for name in requested where !names.contains(name) { names.append(name) }
    let unknown = names.filter { !submoduleNames.contains($0) }
    guard unknown.isEmpty else {
      throw TorchError("\(path) calls no submodule named \(unknown.joined(separator: ", ")) from forward; it calls \(submoduleNames.joined(separator: ", "))")
    }
    let handles: [ct_tensor?] = inputs.map { $0.handle }
    var outputs = [ct_tensor?](repeating: nil, count: names.count + 1)
    let status = withCStrings(names) { cNames in
      handles.withUnsafeBufferPointer { inputBuffer in
        outputs.withUnsafeMutableBufferPointer { out in
          ct_jit_forward_with_features(handle, inputBuffer.baseAddress, Int32(inputBuffer.count), cNames, Int32(names.count), out.baseAddress)
        }
      }
    }
    guard status == 0 else {
      let error = takeShimError("running \(path)")
      throw TorchError(Self.firstMeaningfulLines(of: error.message))
    }
    let tensors = outputs.map { Tensor(handle: $0!) }
    for tensor in tensors { try tensor.checkSupportedDType("running \(path)") }
    return (tensors[0], Dictionary(uniqueKeysWithValues: zip(names, tensors.dropFirst())))
  }

  deinit { ct_jit_free(handle) }

  /// Moves the module's parameters and buffers to `device`, as `module.to(device)`.
  public func move(to device: Device) throws {
    try device.checkAvailable()
    if ct_jit_to(handle, device.code) < 0 { throw takeShimError("moving \(path) to \(device)") }
  }

  /// Turns gradients off for every parameter (a frozen network that gradients only pass through).
  public func freezeParameters() throws {
    if ct_jit_freeze_parameters(handle) < 0 { throw takeShimError("freezing \(path)") }
  }

  /// Sets training (`true`) or evaluation mode.
  public func train(_ training: Bool = true) throws {
    if ct_jit_set_training(handle, training) < 0 { throw takeShimError("setting the mode of \(path)") }
  }

  /// The number of scalars in the module's parameters.
  public var parameterCount: Int {
    var count: Int64 = 0
    checked(status: ct_jit_parameter_count(handle, &count), "counting a TorchScript module's parameters")
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
    let output = Tensor(handle: result)
    try output.checkSupportedDType("running \(path)")
    return output
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

/// Loads a file a user supplied with `load` (a shim call), after checking it can be read; on
/// failure throws `explain(libtorch's message)`.
func loadUserFile<Handle>(_ path: String, _ load: () -> Handle?, explain: (String) -> String) throws -> Handle {
  Torch.ensureInitialised()
  guard FileManager.default.isReadableFile(atPath: path) else {
    throw TorchError("cannot read \(path): \(describeReadFailure(URL(fileURLWithPath: path)))")
  }
  guard let handle = load() else {
    let reason = ct_last_error().map { String(cString: $0) } ?? "unknown libtorch failure"
    ct_clear_error()
    throw TorchError(explain(reason))
  }
  return handle
}

/// Calls `body` with the strings as a C array of NUL-terminated strings, valid during the call.
func withCStrings<Result>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> Result) -> Result {
  let copies = strings.map { strdup($0) }
  defer { copies.forEach { free($0) } }
  let pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
  return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
