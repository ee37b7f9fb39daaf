/// A node of a model: named parameters, named buffers and named child modules, whose dotted
/// paths are PyTorch's `state_dict` keys (`blocks.0.conv1.weight`), so weights move between
/// PyTorch and Afterimage through safetensors files.
///
/// Subclasses register what they own in their initialiser, the way `nn.Module.__init__` does:
///
///     final class Block: Module, Layer {
///       let conv: Conv2d
///       init(channels: Int) {
///         conv = Conv2d(channels, channels, kernelSize: 3, padding: 1)
///         super.init()
///         register(module: conv, as: "conv")
///       }
///       func callAsFunction(_ x: Tensor) -> Tensor { conv(x).relu() }
///     }
open class Module {
  /// Parameters owned directly by this module, in registration order.
  public private(set) var ownParameters: [(name: String, tensor: Tensor)] = []
  /// Buffers (non-trained state such as running statistics) owned directly by this module.
  public private(set) var ownBuffers: [(name: String, tensor: Tensor)] = []
  /// Child modules, in registration order.
  public private(set) var children: [(name: String, module: Module)] = []
  /// Whether the module is in training mode (batch statistics, dropout, power iteration).
  public private(set) var isTraining = true

  public init() {}

  /// Registers `tensor` as a trainable parameter named `name` (it is set to require gradients).
  @discardableResult
  public func register(parameter tensor: Tensor, as name: String) -> Tensor {
    precondition(!name.contains("."), "parameter names may not contain dots: \(name)")
    tensor.requiresGrad = true
    ownParameters.append((name, tensor))
    return tensor
  }

  /// Registers `tensor` as a buffer named `name`: saved and loaded, never trained.
  @discardableResult
  public func register(buffer tensor: Tensor, as name: String) -> Tensor {
    precondition(!name.contains("."), "buffer names may not contain dots: \(name)")
    ownBuffers.append((name, tensor))
    return tensor
  }

  /// Registers `module` as a child named `name`; its entries get the prefix `name.`.
  @discardableResult
  public func register<M: Module>(module: M, as name: String) -> M {
    children.append((name, module))
    module.setTraining(isTraining)
    return module
  }

  /// Every parameter of the tree with its dotted name, parents' first.
  public func namedParameters(prefix: String = "") -> [(name: String, tensor: Tensor)] {
    var result = ownParameters.map { (prefix + $0.name, $0.tensor) }
    for (name, child) in children {
      result += child.namedParameters(prefix: prefix + name + ".")
    }
    return result
  }

  /// Every buffer of the tree with its dotted name.
  public func namedBuffers(prefix: String = "") -> [(name: String, tensor: Tensor)] {
    var result = ownBuffers.map { (prefix + $0.name, $0.tensor) }
    for (name, child) in children {
      result += child.namedBuffers(prefix: prefix + name + ".")
    }
    return result
  }

  /// Every module of the tree (this one first) with its dotted name ("" for this one).
  public func namedModules(prefix: String = "") -> [(name: String, module: Module)] {
    var result: [(name: String, module: Module)] = [(prefix, self)]
    for (name, child) in children {
      let path = prefix.isEmpty ? name : prefix + "." + name
      result += child.namedModules(prefix: path)
    }
    return result
  }

  /// The trainable tensors of the tree.
  public var parameters: [Tensor] { namedParameters().map(\.tensor) }

  /// The number of trainable scalars in the tree.
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

  /// Parameters then buffers, by `state_dict` name: what a weights file holds.
  public func stateDict() -> [(name: String, tensor: Tensor)] {
    // PyTorch interleaves per module (parameters, then buffers, then children); the order does
    // not matter for a keyed file, so parameters come first and buffers after.
    namedParameters() + namedBuffers()
  }

  /// Switches the tree to training mode (or evaluation mode with `false`).
  public func train(_ training: Bool = true) {
    for (_, module) in namedModules() { module.setTraining(training) }
  }

  /// Switches the tree to evaluation mode.
  public func eval() { train(false) }

  private func setTraining(_ training: Bool) { isTraining = training }

  /// Converts every floating-point parameter and buffer to `dtype`, in place (integer buffers
  /// such as `num_batches_tracked` keep theirs), as `module.to(dtype)`.
  public func convert(to dtype: DType) {
    precondition(dtype.isFloatingPoint, "modules convert to floating-point types only")
    withNoGrad {
      for (_, tensor) in stateDict() where tensor.dtype.isFloatingPoint {
        tensor.replaceData(with: tensor.to(dtype))
      }
    }
  }

  /// Moves every parameter and buffer to `device`, in place, as `module.to(device)`.
  public func move(to device: Device) {
    withNoGrad {
      for (_, tensor) in stateDict() where tensor.device != device {
        tensor.replaceData(with: tensor.to(device))
      }
    }
  }

  /// Stores every 4-d parameter and buffer (convolution weights) channels-last, in place, as
  /// `module.to(memory_format=torch.channels_last)`: with channels-last inputs, oneDNN's CPU
  /// convolutions then skip their layout conversions (25–30% off a GAN step, benchmarks/).
  /// Values, names and saved files are unchanged (files are always written in standard order).
  public func convertToChannelsLast() {
    withNoGrad {
      for (_, tensor) in stateDict() where tensor.rank == 4 {
        tensor.replaceData(with: tensor.channelsLast())
      }
    }
  }

  /// Drops every parameter's accumulated gradient.
  public func zeroGrad() {
    for parameter in parameters { parameter.zeroGrad() }
  }
}

/// A module with one tensor in and one tensor out, usable in `Sequential`.
public protocol Layer: Module {
  func callAsFunction(_ input: Tensor) -> Tensor
}

/// Layers applied one after another; children are named "0", "1", … as in `nn.Sequential`.
public final class Sequential: Module, Layer {
  public let layers: [any Layer]

  public init(_ layers: [any Layer]) {
    self.layers = layers
    super.init()
    for (index, layer) in layers.enumerated() { register(module: layer, as: String(index)) }
  }

  public convenience init(_ layers: any Layer...) { self.init(layers) }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    layers.reduce(input) { $1($0) }
  }
}

/// Modules kept in order and named "0", "1", … (PyTorch's `nn.ModuleList`), for blocks whose
/// forward pass needs more than one input.
public final class ModuleList<Element: Module>: Module {
  public let items: [Element]

  public init(_ items: [Element]) {
    self.items = items
    super.init()
    for (index, item) in items.enumerated() { register(module: item, as: String(index)) }
  }

  public subscript(index: Int) -> Element { items[index] }
  public var count: Int { items.count }
}

/// A layer made from a closure, for parameter-free steps inside `Sequential` (activations).
public final class Lambda: Module, Layer {
  let body: (Tensor) -> Tensor
  public init(_ body: @escaping (Tensor) -> Tensor) {
    self.body = body
    super.init()
  }
  public func callAsFunction(_ input: Tensor) -> Tensor { body(input) }
}
