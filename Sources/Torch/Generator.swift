import CTorch

/// A seeded random-number generator, passed to `Tensor.rand`, `randn`, `randint`, `randperm`
/// and the initialisers so that a run's randomness does not depend on what else drew numbers.
public final class Generator {
  let handle: ct_generator

  /// A generator on `device` seeded with `seed`.
  public init(seed: UInt64, device: Device = .cpu) {
    Torch.ensureInitialised()
    guard let handle = ct_generator_new(seed, device.code) else {
      fatalError("libtorch: \(takeShimError("creating a generator").message)")
    }
    self.handle = handle
  }

  deinit { ct_generator_free(handle) }

  /// Restarts the generator's sequence from `seed`.
  public func reseed(_ seed: UInt64) { ct_generator_set_seed(handle, seed) }

  /// Restores a state saved from `state`; throws when it does not fit this generator.
  public func restore(_ saved: Tensor) throws {
    ct_clear_error()
    ct_generator_set_state(handle, saved.handle)
    if ct_last_error() != nil { throw takeShimError("restoring a generator's state") }
  }

  /// The generator's full state as a uint8 tensor, for checkpoints.
  public var state: Tensor {
    get { Tensor(handle: checked(ct_generator_get_state(handle), "reading a generator's state")) }
    set {
      ct_clear_error()
      ct_generator_set_state(handle, newValue.handle)
      if ct_last_error() != nil { reportShimFailure("restoring a generator's state") }
    }
  }
}
