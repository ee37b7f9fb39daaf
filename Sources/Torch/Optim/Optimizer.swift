import CTorch
import Foundation

/// A first-order optimizer over named parameters. Its state (moments, step count) is a flat list
/// of named tensors, saved in checkpoints next to the weights.
public protocol Optimizer: AnyObject {
  /// The parameters being optimised, by state-dict name.
  var parameters: [(name: String, tensor: Tensor)] { get }
  /// The learning rate used by the next `step()`; schedules set it before each step.
  var learningRate: Double { get set }
  /// The number of steps taken.
  var stepCount: Int { get }
  /// Applies one update from the parameters' accumulated `.grad` (parameters without a
  /// gradient are left alone).
  func step()
  /// The optimizer's state as named tensors (`exp_avg.<param>`, …, and `step`).
  func stateTensors() -> [(name: String, tensor: Tensor)]
  /// Restores state saved by `stateTensors()`; throws when a tensor is missing or mis-shaped.
  func loadState(_ tensors: [String: Tensor]) throws
}

extension Optimizer {
  /// Drops every parameter's gradient.
  public func zeroGrad() {
    for (_, parameter) in parameters { parameter.zeroGrad() }
  }
}

/// Per-parameter state tensors keyed by a prefix and the parameter's name.
final class SlotStore {
  private(set) var slots: [String: Tensor] = [:]
  let prefixes: [String]

  init(prefixes: [String]) { self.prefixes = prefixes }

  /// The slot `prefix.name`, created as zeros shaped like `like` on first use.
  func slot(_ prefix: String, _ name: String, like: Tensor) -> Tensor {
    let key = "\(prefix).\(name)"
    if let existing = slots[key] { return existing }
    let fresh = Tensor.zeros(like.shape, dtype: like.dtype, device: like.device)
    slots[key] = fresh
    return fresh
  }

  func has(_ prefix: String, _ name: String) -> Bool { slots["\(prefix).\(name)"] != nil }

  func namedTensors(step: Int) -> [(name: String, tensor: Tensor)] {
    slots.keys.sorted().map { ($0, slots[$0]!) } + [("step", Tensor([Int64(step)]))]
  }

  /// Loads the slots for `parameters` from `tensors`; returns the saved step count. Every entry
  /// must be `step` or `<prefix>.<parameter>` for this optimizer's prefixes and parameters, so
  /// another optimizer's state (or another model's) is refused instead of half-loaded.
  func load(_ tensors: [String: Tensor], parameters: [(name: String, tensor: Tensor)]) throws -> Int {
    guard let step = tensors["step"] else {
      throw TorchError("optimizer state has no 'step' entry: the file is not an optimizer state")
    }
    let shapes = Dictionary(parameters.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    var loaded: [String: Tensor] = [:]
    for (key, saved) in tensors where key != "step" {
      guard let prefix = prefixes.first(where: { key.hasPrefix($0 + ".") }),
        let parameter = shapes[String(key.dropFirst(prefix.count + 1))]
      else {
        throw TorchError("optimizer state has an entry '\(key)' that fits none of this optimizer's \(prefixes.joined(separator: "/")) slots for these parameters")
      }
      guard saved.shape == parameter.shape else {
        throw TorchError("optimizer state '\(key)' has shape \(saved.shape), the parameter has \(parameter.shape)")
      }
      loaded[key] = saved.to(parameter.device, dtype: parameter.dtype).clone()
    }
    slots = loaded
    return step.itemInt()
  }
}

/// The parameters that have a gradient, with it; and whether libtorch's fused multi-tensor
/// kernels take them all in one call (one device, float32 or float64).
private func parametersWithGradients(_ parameters: [(name: String, tensor: Tensor)]) -> (
  updates: [(name: String, parameter: Tensor, grad: Tensor)], fusable: Bool
) {
  var updates: [(name: String, parameter: Tensor, grad: Tensor)] = []
  for (name, parameter) in parameters {
    if let grad = parameter.grad { updates.append((name, parameter, grad)) }
  }
  guard let first = updates.first else { return ([], false) }
  let (device, dtype) = (first.parameter.device, first.parameter.dtype)
  func matches(_ tensor: Tensor) -> Bool { tensor.device == device && tensor.dtype == dtype }
  let fusable = (dtype == .float32 || dtype == .float64) && updates.allSatisfy { matches($0.parameter) && matches($0.grad) }
  return (updates, fusable)
}

/// The C handles of each list of tensors, as arrays that live for the duration of `body`.
private func withHandleArrays<R>(_ lists: [[Tensor]], _ body: ([UnsafePointer<ct_tensor?>?]) -> R) -> R {
  func nest(_ index: Int, _ pointers: [UnsafePointer<ct_tensor?>?]) -> R {
    guard index < lists.count else { return body(pointers) }
    let handles: [ct_tensor?] = lists[index].map { $0.handle }
    return handles.withUnsafeBufferPointer { nest(index + 1, pointers + [$0.baseAddress]) }
  }
  return nest(0, [])
}

/// Adam (Kingma & Ba) with PyTorch's update order; `decoupledWeightDecay` makes it AdamW.
public final class Adam: Optimizer {
  public let parameters: [(name: String, tensor: Tensor)]
  public var learningRate: Double
  public let beta1: Double
  public let beta2: Double
  public let eps: Double
  public let weightDecay: Double
  public let decoupledWeightDecay: Bool
  public private(set) var stepCount = 0
  /// Whether `step()` updates every parameter in one call of libtorch's fused kernel
  /// (`_fused_adam_`, what `torch.optim.Adam(fused=True)` runs) rather than six aten calls per
  /// parameter: the same formulas, equal up to float rounding (OptimizerTests compares them).
  /// Parameters of mixed devices or dtypes, or not float32/float64, take the per-tensor path.
  public var fused = true
  private let state = SlotStore(prefixes: ["exp_avg", "exp_avg_sq"])

  public init(
    _ parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3, beta1: Double = 0.9,
    beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0, decoupledWeightDecay: Bool = false
  ) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.weightDecay = weightDecay
    self.decoupledWeightDecay = decoupledWeightDecay
  }

  public func step() {
    stepCount += 1
    let biasCorrection1 = 1 - Foundation.pow(beta1, Double(stepCount))
    let biasCorrection2Root = Foundation.sqrt(1 - Foundation.pow(beta2, Double(stepCount)))
    let stepSize = learningRate / biasCorrection1
    let (updates, fusable) = parametersWithGradients(parameters)
    if fused && fusable {
      let expAvgs = updates.map { state.slot("exp_avg", $0.name, like: $0.parameter) }
      let expAvgSqs = updates.map { state.slot("exp_avg_sq", $0.name, like: $0.parameter) }
      withHandleArrays([updates.map(\.parameter), updates.map(\.grad), expAvgs, expAvgSqs]) { lists in
        checked(
          status: withNoGrad {
            ct_fused_adam(
              lists[0], lists[1], lists[2], lists[3], Int32(updates.count), Int64(stepCount), learningRate, beta1, beta2,
              weightDecay, eps, decoupledWeightDecay)
          }, "fused Adam step")
      }
      return
    }
    withNoGrad {
      for (name, parameter, var grad) in updates {
        if weightDecay != 0 {
          if decoupledWeightDecay {
            parameter.multiplyInPlace(1 - learningRate * weightDecay)
          } else {
            grad = grad + parameter * weightDecay
          }
        }
        let expAvg = state.slot("exp_avg", name, like: parameter)
        let expAvgSq = state.slot("exp_avg_sq", name, like: parameter)
        expAvg.lerpInPlace(toward: grad, weight: 1 - beta1)
        expAvgSq.multiplyInPlace(beta2)
        expAvgSq.addProductInPlace(grad, grad, value: 1 - beta2)
        let denominator = expAvgSq.sqrt() / biasCorrection2Root
        denominator.addInPlace(eps)
        parameter.addQuotientInPlace(expAvg, denominator, value: -stepSize)
      }
    }
  }

  public func stateTensors() -> [(name: String, tensor: Tensor)] { state.namedTensors(step: stepCount) }

  public func loadState(_ tensors: [String: Tensor]) throws {
    stepCount = try state.load(tensors, parameters: parameters)
  }
}

/// AdamW: Adam with weight decay applied to the weights directly (Loshchilov & Hutter).
public func AdamW(
  _ parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3, beta1: Double = 0.9,
  beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 1e-2
) -> Adam {
  Adam(
    parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps,
    weightDecay: weightDecay, decoupledWeightDecay: true)
}

/// Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay,
/// following `torch.optim.SGD`.
public final class SGD: Optimizer {
  public let parameters: [(name: String, tensor: Tensor)]
  public var learningRate: Double
  public let momentum: Double
  public let dampening: Double
  public let weightDecay: Double
  public let nesterov: Bool
  public private(set) var stepCount = 0
  /// Whether `step()` updates every parameter in one call of libtorch's fused kernel
  /// (`_fused_sgd_`, what `torch.optim.SGD(fused=True)` runs); as `Adam.fused`.
  public var fused = true
  private let state = SlotStore(prefixes: ["momentum_buffer"])

  public init(
    _ parameters: [(name: String, tensor: Tensor)], learningRate: Double, momentum: Double = 0,
    dampening: Double = 0, weightDecay: Double = 0, nesterov: Bool = false
  ) {
    precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and no dampening")
    self.parameters = parameters
    self.learningRate = learningRate
    self.momentum = momentum
    self.dampening = dampening
    self.weightDecay = weightDecay
    self.nesterov = nesterov
  }

  public func step() {
    stepCount += 1
    let (updates, fusable) = parametersWithGradients(parameters)
    // The kernel's first step stores each gradient as its buffer, so it takes all the buffers
    // new or none (a parameter that first gets a gradient later takes the per-tensor path).
    let fresh = updates.filter { !state.has("momentum_buffer", $0.name) }.count
    if fused && fusable && (fresh == 0 || fresh == updates.count || momentum == 0) {
      let buffers = momentum == 0 ? [] : updates.map { state.slot("momentum_buffer", $0.name, like: $0.parameter) }
      withHandleArrays([updates.map(\.parameter), updates.map(\.grad), buffers]) { lists in
        checked(
          status: withNoGrad {
            ct_fused_sgd(
              lists[0], lists[1], lists[2], Int32(updates.count), weightDecay, momentum, learningRate, dampening, nesterov,
              fresh > 0)
          }, "fused SGD step")
      }
      return
    }
    withNoGrad {
      for (name, parameter, var direction) in updates {
        if weightDecay != 0 { direction = direction + parameter * weightDecay }
        if momentum != 0 {
          let buffer: Tensor
          if state.has("momentum_buffer", name) {
            buffer = state.slot("momentum_buffer", name, like: parameter)
            buffer.multiplyInPlace(momentum)
            buffer.addInPlace(direction, alpha: 1 - dampening)
          } else {
            // The first step stores the gradient itself, as PyTorch does.
            buffer = state.slot("momentum_buffer", name, like: parameter)
            buffer.copy(from: direction)
          }
          direction = nesterov ? direction + buffer * momentum : buffer
        }
        parameter.addInPlace(direction, alpha: -learningRate)
      }
    }
  }

  public func stateTensors() -> [(name: String, tensor: Tensor)] { state.namedTensors(step: stepCount) }

  public func loadState(_ tensors: [String: Tensor]) throws {
    stepCount = try state.load(tensors, parameters: parameters)
  }
}
