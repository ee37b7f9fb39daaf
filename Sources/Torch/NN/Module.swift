/// A node of a model: named parameters, named buffers and named child modules, whose dotted
/// paths are PyTorch's `state_dict` keys (`blocks.0.conv1.weight`), so weights move between
/// PyTorch and Afterimage through safetensors files.
///
/// Subclasses declare what they own with property wrappers (ModuleState.swift) and set it
/// before `super.init()`, which finds the wrappers by reflection; a stored tensor or module
/// without one stops the program there, so nothing can be left out of `namedParameters()`:
///
///     final class Block: Module, Layer {
///       @Child var conv: Conv2d          // conv.weight, conv.bias
///       @Child var norm: BatchNorm2d     // bn.weight, …, bn.running_mean, …
///       @Parameter var gain: Tensor      // gain
///       init(channels: Int) {
///         conv = Conv2d(channels, channels, kernelSize: 3, padding: 1)
///         _norm = Child(wrappedValue: BatchNorm2d(channels), "bn")  // a name of its own
///         gain = Tensor.ones([channels, 1, 1])
///         super.init()
///       }
///       func callAsFunction(_ x: Tensor) -> Tensor { norm(conv(x)).relu() * gain }
///     }
///
/// Entries are listed in declaration order, a module's own parameters (or buffers) before its
/// children's, as PyTorch's `named_parameters` does.
open class Module {
  /// The wrappers of this module's stored properties with their names, in declaration order.
  private var slots: [(name: String, slot: StateSlot)] = []
  /// Whether the module is in training mode (batch statistics, dropout, power iteration).
  public private(set) var isTraining = true

  public init() {
    let declared = DeclaredState(of: self)
    precondition(declared.undeclared.isEmpty, undeclaredMessage(self, declared.undeclared))
    slots = declared.slots
    var names = Set<String>()
    let repeated = ownEntries.map(\.name).filter { !names.insert($0).inserted }
    precondition(repeated.isEmpty, "\(type(of: self)) declares \(repeated.joined(separator: ", ")) twice")
  }

  /// The stored properties of `subject` (a module or any other object) that hold a tensor or a
  /// module without a wrapper: what `Module.init` refuses.
  public static func undeclaredState(of subject: AnyObject) -> [String] {
    DeclaredState(of: subject).undeclared
  }

  /// What this module's wrappers hold now, in declaration order.
  private var ownEntries: [StateEntry] { slots.flatMap { $0.slot.entries(named: $0.name) } }

  /// Parameters owned directly by this module, in declaration order.
  public var ownParameters: [(name: String, tensor: Tensor)] {
    ownEntries.compactMap { entry in
      guard case let .parameter(name, tensor) = entry else { return nil }
      return (name, tensor)
    }
  }
  /// Buffers (non-trained state such as running statistics) owned directly by this module.
  public var ownBuffers: [(name: String, tensor: Tensor)] {
    ownEntries.compactMap { entry in
      guard case let .buffer(name, tensor) = entry else { return nil }
      return (name, tensor)
    }
  }
  /// Child modules, in declaration order.
  public var children: [(name: String, module: Module)] {
    ownEntries.compactMap { entry in
      guard case let .child(name, module) = entry else { return nil }
      return (name, module)
    }
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
  @Children public private(set) var layers: [any Layer]

  public init(_ layers: [any Layer]) {
    self.layers = layers
    super.init()
  }

  public convenience init(_ layers: any Layer...) { self.init(layers) }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    layers.reduce(input) { $1($0) }
  }
}

/// Modules kept in order and named "0", "1", … (PyTorch's `nn.ModuleList`), for blocks whose
/// forward pass needs more than one input.
public final class ModuleList<Element: Module>: Module, Sequence {
  @Children public private(set) var items: [Element]

  public init(_ items: [Element]) {
    self.items = items
    super.init()
  }

  public subscript(index: Int) -> Element { items[index] }
  public var count: Int { items.count }
  public func makeIterator() -> IndexingIterator<[Element]> { items.makeIterator() }
}

/// Modules named by key, in the order given (PyTorch's `nn.ModuleDict`), for layers that only
/// some positions have: BigGAN's self-attention after one block is `attention.2`.
public final class ModuleDict<Element: Module>: Module {
  public let keys: [String]
  @Children public private(set) var values: [Element]

  public init(_ entries: [(key: String, value: Element)]) {
    let keys = entries.map(\.key)
    precondition(Set(keys).count == keys.count, "ModuleDict keys repeat: \(keys)")
    self.keys = keys
    _values = Children(wrappedValue: entries.map(\.value), named: { keys[$0] })
    super.init()
  }

  public subscript(key: String) -> Element? { keys.firstIndex(of: key).map { values[$0] } }
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
