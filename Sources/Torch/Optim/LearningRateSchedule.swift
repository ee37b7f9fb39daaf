import Foundation

/// A learning rate as a function of the optimisation step (0-based).
public protocol LearningRateSchedule {
  func learningRate(at step: Int) -> Double
}

/// The same rate at every step.
public struct ConstantSchedule: LearningRateSchedule {
  public let rate: Double
  public init(_ rate: Double) { self.rate = rate }
  public func learningRate(at step: Int) -> Double { rate }
}

/// Half a cosine from `base` down to `minimum` over `totalSteps` (then flat at `minimum`).
public struct CosineSchedule: LearningRateSchedule {
  public let base: Double
  public let totalSteps: Int
  public let minimum: Double
  public init(base: Double, totalSteps: Int, minimum: Double = 0) {
    self.base = base
    self.totalSteps = max(1, totalSteps)
    self.minimum = minimum
  }
  public func learningRate(at step: Int) -> Double {
    let progress = min(1, Double(step) / Double(totalSteps))
    return minimum + (base - minimum) * 0.5 * (1 + Foundation.cos(Double.pi * progress))
  }
}

/// `base · gamma^(step / every)`: multiplied by `gamma` every `every` steps.
public struct StepSchedule: LearningRateSchedule {
  public let base: Double
  public let every: Int
  public let gamma: Double
  public init(base: Double, every: Int, gamma: Double = 0.1) {
    self.base = base
    self.every = max(1, every)
    self.gamma = gamma
  }
  public func learningRate(at step: Int) -> Double {
    base * Foundation.pow(gamma, Double(step / every))
  }
}

/// A linear ramp from `base · startFactor` to the wrapped schedule over `warmupSteps`, then the
/// wrapped schedule (which sees steps counted from the start of training).
public struct LinearWarmup<Wrapped: LearningRateSchedule>: LearningRateSchedule {
  public let wrapped: Wrapped
  public let warmupSteps: Int
  public let startFactor: Double
  public init(_ wrapped: Wrapped, warmupSteps: Int, startFactor: Double = 0) {
    self.wrapped = wrapped
    self.warmupSteps = max(0, warmupSteps)
    self.startFactor = startFactor
  }
  public func learningRate(at step: Int) -> Double {
    let target = wrapped.learningRate(at: step)
    guard step < warmupSteps else { return target }
    let fraction = Double(step) / Double(warmupSteps)
    return target * (startFactor + (1 - startFactor) * fraction)
  }
}
