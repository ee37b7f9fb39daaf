import CTorch

extension Tensor {
  /// Whether autograd records operations on this tensor (settable on leaves).
  public var requiresGrad: Bool {
    get { ct_requires_grad(handle) }
    set { checked(status: ct_set_requires_grad(handle, newValue), "requires_grad_") }
  }

  /// Marks the tensor as requiring gradients and returns it, for chaining.
  @discardableResult
  public func requiringGrad(_ requires: Bool = true) -> Tensor {
    requiresGrad = requires
    return self
  }

  /// The gradient accumulated by `backward`, or nil when there is none yet.
  public var grad: Tensor? {
    get {
      ct_clear_error()  // nil is also "no gradient yet": only this call's failure counts
      let result = ct_grad(handle)
      if result == nil, ct_last_error() != nil { reportShimFailure("grad") }
      return result.map { Tensor(handle: $0) }
    }
    set { checked(status: ct_set_grad(handle, newValue?.handle), "set grad") }
  }

  /// Drops the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
  public func zeroGrad() { checked(status: ct_zero_grad(handle), "zero_grad") }

  /// Back-propagates from this tensor into the `grad` of every leaf that requires one.
  ///
  /// - Parameters:
  ///   - gradient: d(objective)/d(self); may be omitted for a one-element tensor.
  ///   - retainGraph: keep the graph for a second backward pass.
  ///   - createGraph: record the backward pass itself, for higher-order gradients.
  public func backward(gradient: Tensor? = nil, retainGraph: Bool = false, createGraph: Bool = false) {
    checked(
      status: ct_backward(handle, gradient?.handle, retainGraph, createGraph), "backward")
  }
}

/// Gradients with respect to arbitrary inputs (`torch.autograd.grad`).
public enum Autograd {
  /// d(sum of `outputs`, weighted by `gradOutputs`)/d(each of `inputs`), without touching any
  /// `.grad`. With `createGraph` the results are differentiable themselves (gradient penalties,
  /// double backward). An input that does not affect the outputs gets zeros when
  /// `allowUnused`, and is an error otherwise.
  public static func gradients(
    of outputs: [Tensor], withRespectTo inputs: [Tensor], gradOutputs: [Tensor]? = nil,
    retainGraph: Bool = false, createGraph: Bool = false, allowUnused: Bool = false
  ) -> [Tensor] {
    let outputHandles: [ct_tensor?] = outputs.map { $0.handle }
    let inputHandles: [ct_tensor?] = inputs.map { $0.handle }
    let seedHandles: [ct_tensor?]? = gradOutputs?.map { $0.handle }
    var results = [ct_tensor?](repeating: nil, count: inputs.count)
    let status = results.withUnsafeMutableBufferPointer { out in
      outputHandles.withUnsafeBufferPointer { outs in
        inputHandles.withUnsafeBufferPointer { ins in
          withOptionalPointer(seedHandles) { seeds in
            ct_autograd_grad(
              outs.baseAddress, Int32(outs.count), seeds, ins.baseAddress, Int32(ins.count),
              retainGraph, createGraph, allowUnused, out.baseAddress)
          }
        }
      }
    }
    if status < 0 {
      reportShimFailure("autograd.grad")
      return inputs.map { Tensor.zeros($0.shape, dtype: $0.dtype) }
    }
    return zip(results, inputs).map { handle, input in
      handle.map { Tensor(handle: $0) } ?? Tensor.zeros(input.shape, dtype: input.dtype, device: input.device)
    }
  }

  /// The gradient of one scalar `output` with respect to one `input`.
  public static func gradient(
    of output: Tensor, withRespectTo input: Tensor, retainGraph: Bool = false,
    createGraph: Bool = false
  ) -> Tensor {
    gradients(of: [output], withRespectTo: [input], retainGraph: retainGraph, createGraph: createGraph)[0]
  }

  private static func withOptionalPointer<R>(
    _ array: [ct_tensor?]?, _ body: (UnsafePointer<ct_tensor?>?) -> R
  ) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
  }
}

/// Whether operations are being recorded for autograd on this thread.
public var isGradEnabled: Bool { ct_is_grad_enabled() }

/// Runs `body` without recording operations for autograd (inference, optimizer updates, EMA).
public func withNoGrad<Result>(_ body: () throws -> Result) rethrows -> Result {
  try withGradEnabled(false, body)
}

/// Runs `body` with autograd recording switched on or off, restoring the previous mode after.
public func withGradEnabled<Result>(_ enabled: Bool, _ body: () throws -> Result) rethrows -> Result {
  let previous = ct_is_grad_enabled()
  ct_set_grad_enabled(enabled)
  defer { ct_set_grad_enabled(previous) }
  return try body()
}
