import Foundation
import Torch

/// A network that turns (preprocessed) logits and noise into images in (−1, 1): the BigGAN
/// generator, or a baseline decoder that ignores the noise.
public protocol ImageGenerator: Module {
  /// Length of the noise vector it takes (a deterministic decoder still accepts one).
  var noiseSize: Int { get }
  /// `representation [B, D]` (logits: D = K), `noise [B, noiseSize]` → images `[B, C, R, R]` in (−1, 1).
  func callAsFunction(representation: Tensor, noise: Tensor) -> Tensor
}

extension LogitGenerator: ImageGenerator {}

/// Dosovitskiy & Brox (2016)'s up-convolutional decoder, the classic feedforward inversion
/// baseline: fully connected layers from the logits to a 4×4 feature map, then 4×4 transposed
/// convolutions with stride 2 (leaky ReLU) doubling the resolution up to the image. It has no
/// noise input, so a logit vector maps to exactly one image.
public final class UpconvDecoder: Module, ImageGenerator {
  public let noiseSize: Int
  @Child var fc1: Linear
  @Child var fc2: Linear
  @Child var fc3: Linear
  @Child var upconvs: ModuleList<ConvTranspose2d>  // upconv
  @Child var output: Conv2d
  let baseChannels: Int

  public init(representationSize: Int, resolution: Int, channels: Int, ch: Int = 16, noiseSize: Int = 64, generator: Generator? = nil) {
    self.noiseSize = noiseSize
    let doublings = Int(log2(Double(resolution / 4)))  // 4 → resolution
    baseChannels = ch * 8
    fc1 = Linear(representationSize, 256, generator: generator)
    fc2 = Linear(256, 256, generator: generator)
    fc3 = Linear(256, baseChannels * 16, generator: generator)
    var input = baseChannels
    let upconvs = (0..<doublings).map { _ in
      defer { input = max(ch, input / 2) }
      return ConvTranspose2d(input, max(ch, input / 2), kernelSize: 4, stride: 2, padding: 1, generator: generator)
    }
    _upconvs = Child(wrappedValue: ModuleList(upconvs), "upconv")
    output = Conv2d(input, channels, kernelSize: 3, padding: 1, generator: generator)
    super.init()
  }

  public func callAsFunction(representation: Tensor, noise: Tensor) -> Tensor {
    let batch = representation.shape[0]
    var h = fc2(fc1(representation).leakyRelu(slope: 0.2)).leakyRelu(slope: 0.2)  // [B, 256]
    h = fc3(h).leakyRelu(slope: 0.2).view([batch, baseChannels, 4, 4])  // [B, 8ch, 4, 4]
    for upconv in upconvs { h = upconv(h).leakyRelu(slope: 0.2) }  // doubles H and W each time
    return output(h).tanh()  // [B, C, R, R]
  }
}
