import Foundation
import Torch

/// The ways a reconstruction falls short of its original, drawn at random per image, so that a
/// ruler trained on them reads reconstructions as it reads originals: blur, a loss of contrast
/// (of luma), a loss of colour (of chroma), and pixel noise. Hue is never changed: the object's and background's hues
/// are factors the ruler must read, so a hue change would teach it to ignore them.
///
/// Each image is degraded with probability `probability`; a degraded image draws each strength
/// uniformly between none and its limit (the blur's σ from `blurLevels`), so the ruler also sees
/// mild and clean images. Applied in this order: blur, contrast, colour, noise, then clipped to
/// [0, 1].
public struct ReconstructionDegradation: Codable, Equatable, Sendable {
  /// Share of the images degraded.
  public var probability = 0.75
  /// Gaussian blur's σ in pixels, drawn from these (0: none).
  public var blurLevels: [Double] = [0, 0.5, 1, 1.5]
  /// Lowest contrast kept: the image is pulled toward its own mean colour by up to 1 − this.
  public var minimumContrast = 0.4
  /// Lowest saturation kept: colours are pulled toward their luma by up to 1 − this.
  public var minimumSaturation = 0.3
  /// Largest σ of the added Gaussian pixel noise.
  public var maximumNoise = 0.06

  public init() {}

  /// Every image at the strongest setting on every axis: the ceiling's degraded originals.
  public static var strongest: ReconstructionDegradation {
    var degradation = ReconstructionDegradation()
    degradation.probability = 1
    degradation.blurLevels = [degradation.blurLevels.max() ?? 0]
    return degradation
  }

  enum CodingKeys: String, CodingKey { case probability, blurLevels, minimumContrast, minimumSaturation, maximumNoise }

  /// Reads any version: a missing key keeps its default.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.decodeIfPresent(.probability, into: &probability)
    try c.decodeIfPresent(.blurLevels, into: &blurLevels)
    try c.decodeIfPresent(.minimumContrast, into: &minimumContrast)
    try c.decodeIfPresent(.minimumSaturation, into: &minimumSaturation)
    try c.decodeIfPresent(.maximumNoise, into: &maximumNoise)
  }

  /// Throws unless every setting is in its range.
  public func validate() throws {
    guard (0...1).contains(probability), !blurLevels.isEmpty, blurLevels.allSatisfy({ $0 >= 0 && $0 <= 8 }),
      (0...1).contains(minimumContrast), (0...1).contains(minimumSaturation), (0...1).contains(maximumNoise)
    else {
      throw RunError("degradation settings out of range: probability, contrast, saturation and noise in [0, 1], blur σ in [0, 8] px")
    }
  }

  /// `images [B, 3, H, W]` in [0, 1], each degraded with its own draw from `generator`.
  /// `extreme`: every drawn strength at its limit (the ceiling's degraded originals).
  public func apply(_ images: Tensor, generator: Generator, extreme: Bool = false) -> Tensor {
    withNoGrad {
      let x = images.to(.float32).contiguous()
      let count = x.shape[0]
      // Per-image draws, [B, 1, 1, 1] so they broadcast over channels and pixels.
      func uniform() -> Tensor { extreme ? Tensor.ones([count, 1, 1, 1]) : Tensor.rand([count, 1, 1, 1], generator: generator) }
      let degraded = (Tensor.rand([count, 1, 1, 1], generator: generator) .< probability).to(.float32)
      // Blur: each image takes one of the levels; the blurred copies are mixed by a one-hot mask.
      let level = extreme
        ? Tensor.full([count], Double(blurLevels.count - 1), dtype: .int64)
        : Tensor.randint(0..<blurLevels.count, [count], generator: generator)
      var blurred = Tensor.zeros(x.shape)
      for (index, sigma) in blurLevels.enumerated() {
        let chosen = (level .== Double(index)).to(.float32).view([count, 1, 1, 1])
        let version = sigma > 0 ? ImageTransform.blur.apply(x, magnitude: sigma, generator: generator) : x
        blurred = blurred + version * chosen
      }
      // Each pixel is its luma (Rec. 601 weights) plus a chroma, whose direction is its hue.
      // Contrast pulls the luma toward the image's mean luma; colour shrinks the chroma. Neither
      // turns a chroma, so no hue changes.
      let luma = Self.luma(blurred)  // [B, 1, H, W]
      let chroma = blurred - luma
      let contrast = 1 - uniform() * (1 - minimumContrast)
      let meanLuma = luma.mean(dims: [1, 2, 3], keepDim: true)
      let saturation = 1 - uniform() * (1 - minimumSaturation)
      let grey = meanLuma + (luma - meanLuma) * contrast + chroma * saturation
      let noisy = grey + Tensor.randn(x.shape, generator: generator) * (uniform() * maximumNoise)
      let result = noisy.clamped(min: 0, max: 1)
      return (result * degraded + x * (1 - degraded)).to(images.dtype)
    }
  }

  /// Luma `[B, 1, H, W]` of RGB images `[B, 3, H, W]`; a one-channel image is its own.
  static func luma(_ x: Tensor) -> Tensor {
    guard x.shape[1] == 3 else { return x }
    let weights = Tensor([0.299, 0.587, 0.114] as [Float], shape: [1, 3, 1, 1])
    return (x * weights).sum(dim: 1, keepDim: true)
  }
}
