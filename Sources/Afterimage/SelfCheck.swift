import Foundation
import Torch

/// A short end-to-end exercise of the tensor engine: a small spectrally normalised conv net
/// with batch norm learns to tell two synthetic image classes apart with Adam.
/// It proves the build works (autograd, layers, optimizer) on this machine in a few seconds.
public enum SelfCheck {
  /// What one run of the check measured.
  public struct Result {
    public let initialLoss: Double
    public let finalLoss: Double
    public let accuracy: Double
    public let steps: Int
    public let secondsPerStep: Double
  }

  /// A classifier of `[N, 3, 16, 16]` images into two classes.
  final class TinyNet: Module, Layer {
    @Child var conv1: Conv2d
    @Child var norm1: BatchNorm2d
    @Child var conv2: Conv2d
    @Child var head: Linear

    init(generator: Generator) {
      conv1 = Conv2d(3, 16, kernelSize: 3, padding: 1, spectralNorm: true, generator: generator)
      norm1 = BatchNorm2d(16)
      conv2 = Conv2d(16, 32, kernelSize: 3, stride: 2, padding: 1, generator: generator)
      head = Linear(32, 2, generator: generator)
      super.init()
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
      let h = norm1(conv1(x)).relu()  // [N, 16, 16, 16]
      let features = conv2(h).relu().mean(dims: [2, 3])  // [N, 32]
      return head(features)  // [N, 2]
    }
  }

  /// Synthetic data: class 1 images carry a bright square in the top-left quadrant.
  static func batch(_ size: Int, generator: Generator) -> (images: Tensor, labels: Tensor) {
    let labels = Tensor.randint(0..<2, [size], generator: generator)
    let noise = Tensor.randn([size, 3, 16, 16], generator: generator)
    let square = Tensor.zeros([1, 3, 16, 16])
    withNoGrad { square.narrow(dim: 2, start: 2, length: 6).narrow(dim: 3, start: 2, length: 6).fill(0.5) }
    let images = noise + square * labels.to(.float32).view([size, 1, 1, 1])
    return (images, labels)
  }

  /// Trains for `steps` Adam steps and evaluates on a fresh batch.
  public static func run(steps: Int = 60, seed: UInt64 = 0) -> Result {
    let generator = Generator(seed: seed)
    let model = TinyNet(generator: generator)
    let optimizer = Adam(model.namedParameters(), learningRate: 3e-3)
    var initialLoss = 0.0
    var finalLoss = 0.0
    let start = Date()
    for step in 0..<steps {
      let (images, labels) = batch(64, generator: generator)
      let loss = Loss.crossEntropy(model(images), labels)
      optimizer.zeroGrad()
      loss.backward()
      optimizer.step()
      if step == 0 { initialLoss = loss.item() }
      finalLoss = loss.item()
    }
    let elapsed = Date().timeIntervalSince(start)
    model.eval()
    let (images, labels) = batch(512, generator: generator)
    let predictions = withNoGrad { model(images).argmax(dim: 1) }
    let accuracy = (predictions .== labels).to(.float32).mean().item()
    return Result(
      initialLoss: initialLoss, finalLoss: finalLoss, accuracy: accuracy, steps: steps,
      secondsPerStep: elapsed / Double(steps))
  }
}
