import Foundation
import Torch

/// Optimisation-based inversion (Mahendran & Vedaldi 2015 style): gradient descent on an image,
/// starting from gray plus a little noise, so that the classifier's logits for it match given
/// logits, under a total-variation prior, a norm prior and random jitter. The baseline the
/// feedforward inverter is compared with: one network pass against hundreds of classifier
/// forward and backward passes per image.
public enum OptimizationInversion {
  public struct Options: Codable, Sendable {
    public var steps = 200
    public var learningRate = 0.05
    /// Weight of the total-variation prior (smoothness).
    public var totalVariation = 0.5
    /// Weight of the norm prior pulling pixels toward mid-gray.
    public var norm = 0.01
    /// Largest random translation (pixels) applied before each classifier pass.
    public var jitter = 2
    public var seed: UInt64 = 0
    public init() {}
    /// Every option at its default (`inverter optimize`'s flags read theirs from here).
    public static let `default` = Options()
  }

  /// Images `[B, C, R, R]` in [0, 1] whose logits approach `targets [B, K]`, and the final mean
  /// squared logit error.
  public static func invert(
    _ targets: Tensor, classifier: any ImageClassifier, options: Options = Options(), progress: Bool = false
  ) throws -> (images: Tensor, logitError: Double) {
    let config = classifier.config
    try classifier.train(false)
    for parameter in classifier.network?.parameters ?? [] { parameter.requiresGrad = false }
    let generator = Generator(seed: options.seed)
    let batch = targets.shape[0]
    let targets = targets.to(classifier.device)
    // Pixels are sigmoid(θ): always in (0, 1), no clipping needed. Drawn on the CPU, optimised
    // on the classifier's device.
    let theta = (Tensor.randn([batch, config.channels, config.resolution, config.resolution], generator: generator) * 0.1)
      .to(classifier.device).requiringGrad()
    let optimizer = Adam([("theta", theta)], learningRate: options.learningRate)
    let bar = progress ? ProgressBar(total: options.steps, label: "optimise", unit: "step") : nil
    var logitError = 0.0
    for step in 0..<options.steps {
      let image = theta.sigmoid()
      let shifts = Tensor.randint(-options.jitter..<(options.jitter + 1), [2], generator: generator).scalars(as: Int64.self)
      let jittered = options.jitter > 0 ? image.rolled([Int(shifts[0]), Int(shifts[1])], dims: [2, 3]) : image
      let matching = Loss.mse(try classifier.logits(jittered), targets)
      let loss = matching + totalVariation(image) * options.totalVariation + (image - 0.5).pow(2).mean() * options.norm
      optimizer.zeroGrad()
      loss.backward()
      optimizer.step()
      logitError = matching.item()
      bar?.update(step + 1, metrics: ["logit MSE": String(format: "%.4f", logitError)])
    }
    let images = withNoGrad { theta.sigmoid().detached() }
    logitError = try withNoGrad { Loss.mse(try classifier.logits(images), targets).item() }
    return (images, logitError)
  }

  /// Mean squared difference between neighbouring pixels, down and across.
  static func totalVariation(_ x: Tensor) -> Tensor {
    let h = x.size(2)
    let w = x.size(3)
    let down = x.narrow(dim: 2, start: 1, length: h - 1) - x.narrow(dim: 2, start: 0, length: h - 1)
    let across = x.narrow(dim: 3, start: 1, length: w - 1) - x.narrow(dim: 3, start: 0, length: w - 1)
    return down.pow(2).mean() + across.pow(2).mean()
  }
}
