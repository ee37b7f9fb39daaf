/// An exponential moving average of a module's weights, kept in a second module of the same
/// architecture (BigGAN's `G_ema`): `target ← decay · target + (1 − decay) · source` for every
/// parameter, buffers copied. Before `startStep` the target simply copies the source, so a short
/// run is not dominated by its random initialisation.
public final class ExponentialMovingAverage {
  public let source: Module
  public let target: Module
  public let decay: Double
  public let startStep: Int
  private let pairs: [(source: Tensor, target: Tensor)]
  private let bufferPairs: [(source: Tensor, target: Tensor)]

  /// Pairs `source` and `target` by state-dict name; they must have the same architecture.
  public init(source: Module, target: Module, decay: Double = 0.999, startStep: Int = 0) throws {
    self.source = source
    self.target = target
    self.decay = decay
    self.startStep = startStep
    pairs = try ExponentialMovingAverage.match(source.namedParameters(), target.namedParameters())
    bufferPairs = try ExponentialMovingAverage.match(source.namedBuffers(), target.namedBuffers())
    withNoGrad {
      for (s, t) in pairs + bufferPairs { t.copy(from: s) }
    }
  }

  private static func match(
    _ a: [(name: String, tensor: Tensor)], _ b: [(name: String, tensor: Tensor)]
  ) throws -> [(source: Tensor, target: Tensor)] {
    let targets = Dictionary(b.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    guard a.count == b.count else {
      throw TorchError("EMA: source has \(a.count) tensors, target has \(b.count): not the same architecture")
    }
    return try a.map { name, tensor in
      guard let other = targets[name], other.shape == tensor.shape else {
        throw TorchError("EMA: target has no tensor '\(name)' of shape \(tensor.shape)")
      }
      return (tensor, other)
    }
  }

  /// Folds the source's current weights into the average after optimisation step `step`.
  public func update(step: Int) {
    let weight = step < startStep ? 1.0 : 1 - decay
    withNoGrad {
      for (s, t) in pairs { t.lerpInPlace(toward: s, weight: weight) }
      for (s, t) in bufferPairs { t.copy(from: s) }
    }
  }
}
