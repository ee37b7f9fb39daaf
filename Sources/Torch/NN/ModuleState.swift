// The property wrappers that declare what a module owns, and the reflection that finds them.
//
// A module keeps its state in stored properties marked `@Parameter`, `@Buffer`, `@Child`,
// `@Children` or `@Part`. `Module.init` walks the object's stored properties with `Mirror` once
// and keeps the wrappers in declaration order; `namedParameters()`, `stateDict()` and the rest
// read the tensors and modules from them on each call. A stored property that holds a tensor or
// a module without a wrapper stops the program in `Module.init` (`Module.undeclaredState(of:)`
// lists them), so a parameter cannot silently go missing from the optimizer or the checkpoint.
//
// An entry is named after its property (`weight`), or, where PyTorch's name is not a Swift
// property name or depends on the arguments, by the name given where the value is made:
//
//     _runningMean = Buffer(wrappedValue: Tensor.zeros([channels]), "running_mean")
//
// The wrappers are classes, so a later assignment to a wrapped property (`projection = nil`)
// changes what the module reports without another walk.

/// What a wrapper holds now: a named parameter, buffer or child module of its host.
enum StateEntry {
  case parameter(String, Tensor)
  case buffer(String, Tensor)
  case child(String, Module)

  var name: String {
    switch self {
    case let .parameter(name, _), let .buffer(name, _), let .child(name, _): return name
    }
  }
}

/// A property wrapper holding state, as `Module` finds it by reflection.
protocol StateSlot: AnyObject {
  /// The name given where the value was made; nil for the property's own.
  var explicitName: String? { get }
  /// The entries held now; `name` is the explicit name or the property's.
  func entries(named name: String) -> [StateEntry]
}

/// A trained tensor of its module (`Tensor`, or `Tensor?` for one a layer may lack), made to
/// require gradients: in `namedParameters()` and the state dict under its property's name, or
/// under `name`.
public typealias Parameter<Value> = NamedState<Value, ParameterState>

/// A tensor of its module that is saved and loaded but not trained (running statistics, power
/// iteration vectors): `Tensor` or `Tensor?`, named like a `Parameter`.
public typealias Buffer<Value> = NamedState<Value, BufferState>

/// A child module (a `Module` subclass, or an optional one for a part some instances lack):
/// its entries get the prefix `name.`, its property's name unless given.
public typealias Child<Value> = NamedState<Value, ChildState>

/// The kinds of state that `NamedState` holds, one marker type each, so that `@Parameter`,
/// `@Buffer` and `@Child` are distinct wrapper types.
public enum StateKind {
  case parameter, buffer, child

  /// The wrapper's attribute, for messages.
  var attribute: String {
    switch self {
    case .parameter: return "@Parameter"
    case .buffer: return "@Buffer"
    case .child: return "@Child"
    }
  }
}

/// A marker type that names a `StateKind`.
public protocol StateKindMarker { static var kind: StateKind { get } }
public enum ParameterState: StateKindMarker { public static var kind: StateKind { .parameter } }
public enum BufferState: StateKindMarker { public static var kind: StateKind { .buffer } }
public enum ChildState: StateKindMarker { public static var kind: StateKind { .child } }

/// The one wrapper behind `@Parameter`, `@Buffer` and `@Child`: a value under its property's
/// name or the explicit `name`, checked when made and whenever assigned, and reported as one
/// entry of `Kind` while it holds a tensor or module (none while nil).
@propertyWrapper
public final class NamedState<Value, Kind: StateKindMarker>: StateSlot {
  public var wrappedValue: Value {
    didSet { admit(wrappedValue) }
  }
  let explicitName: String?

  public init(wrappedValue: Value, _ name: String? = nil) {
    if Kind.kind != .child {
      requireTensorType(Value.self, Kind.kind.attribute)
      requireEntryName(name)
    }
    self.wrappedValue = wrappedValue
    explicitName = name
    admit(wrappedValue)
  }

  /// What each stored value needs: a parameter requires gradients; a child must be a module.
  private func admit(_ value: Value) {
    switch Kind.kind {
    case .parameter: tensor(in: value)?.requiresGrad = true
    case .buffer: break
    case .child: requireModule(value, "@Child")
    }
  }

  func entries(named name: String) -> [StateEntry] {
    switch Kind.kind {
    case .parameter: return tensor(in: wrappedValue).map { [.parameter(name, $0)] } ?? []
    case .buffer: return tensor(in: wrappedValue).map { [.buffer(name, $0)] } ?? []
    case .child: return module(in: wrappedValue).map { [.child(name, $0)] } ?? []
    }
  }
}

/// Child modules kept in an array, each a child of the host named `naming(index)`: "0", "1", …
/// as in `nn.Sequential` unless told (a ResNet's stages are `layer1`, `layer2`, …). The
/// property's own name is not used.
@propertyWrapper
public final class Children<Element>: StateSlot {
  public var wrappedValue: [Element] {
    didSet { for element in wrappedValue { requireModule(element, "@Children") } }
  }
  let naming: (Int) -> String
  var explicitName: String? { nil }

  public init(wrappedValue: [Element], named naming: @escaping (Int) -> String = { String($0) }) {
    for element in wrappedValue { requireModule(element, "@Children") }
    self.wrappedValue = wrappedValue
    self.naming = naming
  }

  func entries(named _: String) -> [StateEntry] {
    wrappedValue.enumerated().map { index, element in .child(naming(index), module(in: element)!) }
  }
}

/// An object that holds part of its host module's state under the host's own names, declared
/// with the same wrappers: spectral normalisation adds `weight_orig`, `weight_u` and `weight_v`
/// to its layer, as PyTorch's `spectral_norm` does. The host keeps it with `@Part`.
public protocol ModulePart: AnyObject {}

/// A `ModulePart` (or an optional one) whose parameters and buffers are its host's, unprefixed.
@propertyWrapper
public final class Part<Value>: StateSlot {
  public var wrappedValue: Value {
    didSet { slots = Part.slots(of: wrappedValue) }
  }
  private var slots: [(name: String, slot: StateSlot)]
  var explicitName: String? { nil }

  public init(wrappedValue: Value) {
    self.wrappedValue = wrappedValue
    slots = Part.slots(of: wrappedValue)
  }

  private static func slots(of value: Value) -> [(name: String, slot: StateSlot)] {
    guard let part = (value as Any) as? ModulePart else {
      precondition(isNil(value), "@Part holds a ModulePart or nil, not a \(type(of: value))")
      return []
    }
    let found = DeclaredState(of: part)
    precondition(found.undeclared.isEmpty, undeclaredMessage(part, found.undeclared))
    return found.slots
  }

  func entries(named _: String) -> [StateEntry] {
    slots.flatMap { $0.slot.entries(named: $0.name) }
  }
}

// MARK: - Finding the wrappers

/// The state an object's stored properties declare, found by `Mirror`: the wrappers with their
/// names, in declaration order (base classes first, `Module`'s own properties left out), and
/// the properties that hold a tensor or a module without one.
struct DeclaredState {
  var slots: [(name: String, slot: StateSlot)] = []
  var undeclared: [String] = []

  init(of subject: AnyObject) {
    var mirrors: [Mirror] = []
    var mirror: Mirror? = Mirror(reflecting: subject)
    while let current = mirror, current.subjectType != Module.self {
      mirrors.append(current)
      mirror = current.superclassMirror
    }
    for mirror in mirrors.reversed() {
      for case let (label?, value) in mirror.children {
        if let slot = value as? StateSlot {
          // A wrapped property `weight` is stored as `_weight`.
          let property = label.hasPrefix("_") ? String(label.dropFirst()) : label
          slots.append((slot.explicitName ?? property, slot))
        } else if mayHoldState(type(of: value)) || holdsState(value) {
          undeclared.append(label)
        }
      }
    }
  }
}

/// The message for stored properties that hold state without a wrapper.
func undeclaredMessage(_ subject: AnyObject, _ properties: [String]) -> String {
  "\(type(of: subject)): \(properties.joined(separator: ", ")) hold tensors or modules without "
    + "@Parameter, @Buffer, @Child, @Children or @Part, so namedParameters() and stateDict() "
    + "would miss them"
}

/// Optional, Array and Dictionary, whose element types `mayHoldState` looks into.
private protocol StateContainer {
  static var elementTypes: [Any.Type] { get }
}
extension Optional: StateContainer {
  fileprivate static var elementTypes: [Any.Type] { [Wrapped.self] }
}
extension Array: StateContainer {
  fileprivate static var elementTypes: [Any.Type] { [Element.self] }
}
extension Dictionary: StateContainer {
  fileprivate static var elementTypes: [Any.Type] { [Key.self, Value.self] }
}

/// Whether values of `type` are, or may contain, tensors or modules, judged by the type alone
/// (so nil and empty values count); existentials such as `any Layer` are left to `holdsState`.
private func mayHoldState(_ type: Any.Type) -> Bool {
  if type is Tensor.Type || type is Module.Type || type is ModulePart.Type { return true }
  guard let container = type as? StateContainer.Type else { return false }
  return container.elementTypes.contains { mayHoldState($0) }
}

/// Whether `value` is a tensor, module or part, or an optional, collection or tuple holding one.
private func holdsState(_ value: Any) -> Bool {
  if value is Tensor || value is Module || value is ModulePart { return true }
  let mirror = Mirror(reflecting: value)
  switch mirror.displayStyle {
  case .optional?, .collection?, .dictionary?, .set?, .tuple?:
    return mirror.children.contains { holdsState($0.value) }
  default:
    return false
  }
}

// MARK: - Checks the wrappers make

private func tensor<Value>(in value: Value) -> Tensor? { (value as Any) as? Tensor }

private func module<Value>(in value: Value) -> Module? { (value as Any) as? Module }

private func isNil<Value>(_ value: Value) -> Bool {
  let mirror = Mirror(reflecting: value)
  return mirror.displayStyle == .optional && mirror.children.isEmpty
}

private func requireTensorType(_ type: Any.Type, _ wrapper: String) {
  precondition(type == Tensor.self || type == Tensor?.self, "\(wrapper) holds a Tensor or Tensor?, not \(type)")
}

private func requireModule<Value>(_ value: Value, _ wrapper: String) {
  precondition(module(in: value) != nil || isNil(value), "\(wrapper) holds modules, not a \(type(of: value))")
}

private func requireEntryName(_ name: String?) {
  precondition(!(name?.contains(".") ?? false), "parameter and buffer names may not contain dots: \(name!)")
}
