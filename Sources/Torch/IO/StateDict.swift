import Foundation

extension Module {
  /// Copies `tensors` into the module's parameters and buffers by state-dict name.
  ///
  /// Throws, changing nothing, when the names or shapes do not match: it lists the missing
  /// keys, the unexpected keys (when `strict`), and each shape or dtype mismatch.
  public func loadStateDict(_ tensors: [String: Tensor], strict: Bool = true) throws {
    let own = stateDict()
    let ownNames = Set(own.map(\.name))
    var problems: [String] = []
    let missing = own.map(\.name).filter { tensors[$0] == nil }
    if !missing.isEmpty {
      problems.append("missing keys: \(summarise(missing))")
    }
    if strict {
      let unexpected = tensors.keys.filter { !ownNames.contains($0) }.sorted()
      if !unexpected.isEmpty { problems.append("unexpected keys: \(summarise(unexpected))") }
    }
    for (name, target) in own {
      guard let source = tensors[name] else { continue }
      if source.shape != target.shape {
        problems.append("'\(name)' has shape \(source.shape) in the file, the model expects \(target.shape)")
      } else if source.dtype != target.dtype {
        problems.append("'\(name)' has dtype \(source.dtype) in the file, the model expects \(target.dtype)")
      }
    }
    guard problems.isEmpty else {
      throw TorchError("the weights do not fit this model: " + problems.joined(separator: "; "))
    }
    let broken = nonFiniteNames(own.map { ($0.name, tensors[$0.name]!) })
    guard broken.isEmpty else {
      throw TorchError("the weights hold NaN or infinite values (\(summarise(broken))): the run that wrote them diverged; retrain it")
    }
    withNoGrad {
      for (name, target) in own { target.copy(from: tensors[name]!) }
    }
  }

  /// Loads weights from a safetensors file (see `loadStateDict`).
  public func loadWeights(from url: URL, strict: Bool = true) throws {
    let file = try Safetensors.read(url)
    do {
      try loadStateDict(file.dictionary, strict: strict)
    } catch let error as TorchError {
      throw TorchError("\(url.path): \(error.message)")
    }
  }

  /// Saves the state dict to a safetensors file (atomically) with optional metadata. Weights
  /// holding NaN or infinite values are refused: a diverged model is never saved as good.
  public func saveWeights(to url: URL, metadata: [String: String] = [:]) throws {
    let broken = nonFiniteNames(stateDict())
    guard broken.isEmpty else {
      throw TorchError("not writing \(url.path): \(summarise(broken)) hold NaN or infinite values (training diverged)")
    }
    try Safetensors.write(stateDict(), metadata: metadata, to: url)
  }
}

private func summarise(_ names: [String], limit: Int = 8) -> String {
  let shown = names.prefix(limit).joined(separator: ", ")
  return names.count > limit ? "\(shown), … (\(names.count) in all)" : shown
}

/// The names of the floating-point tensors that hold a NaN or an infinity.
func nonFiniteNames(_ tensors: [(name: String, tensor: Tensor)]) -> [String] {
  withNoGrad {
    tensors.filter { $0.tensor.dtype.isFloatingPoint && $0.tensor.count > 0 && (.!$0.tensor.isFinite()).to(.float32).sum().item() > 0 }.map(\.name)
  }
}
