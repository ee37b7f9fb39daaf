import Foundation
import Torch

/// Training-time augmentations on batches `[B, C, H, W]` in [0, 1], drawn from a seeded generator
/// so a run can be repeated. Each image of a batch gets its own random draw.
public struct Augmentation {
  /// Pixels of padding for random crops (CIFAR's classic 4); 0 turns cropping off.
  public var cropPadding = 4
  /// Flip each image left–right with probability one half.
  public var horizontalFlip = true
  /// Colour jitter strengths: each factor is drawn from [1 − s, 1 + s] (0 turns it off).
  public var brightness = 0.0
  public var contrast = 0.0
  public var saturation = 0.0

  public init(cropPadding: Int = 4, horizontalFlip: Bool = true, brightness: Double = 0, contrast: Double = 0, saturation: Double = 0) {
    self.cropPadding = cropPadding
    self.horizontalFlip = horizontalFlip
    self.brightness = brightness
    self.contrast = contrast
    self.saturation = saturation
  }

  /// No augmentation at all.
  public static let none = Augmentation(cropPadding: 0, horizontalFlip: false)

  /// Applies the augmentations to `images`, drawing from `generator`.
  public func callAsFunction(_ images: Tensor, generator: Generator) -> Tensor {
    withNoGrad {
      var x = images
      if cropPadding > 0 { x = Self.randomCrop(x, padding: cropPadding, generator: generator) }
      if horizontalFlip { x = Self.randomHorizontalFlip(x, generator: generator) }
      if brightness > 0 || contrast > 0 || saturation > 0 {
        x = Self.colourJitter(x, brightness: brightness, contrast: contrast, saturation: saturation, generator: generator)
      }
      return x
    }
  }

  /// Zero-pads by `padding` and crops back to the original size at a random offset per image.
  public static func randomCrop(_ images: Tensor, padding: Int, generator: Generator) -> Tensor {
    let shape = images.shape  // [B, C, H, W]
    let (batch, height, width) = (shape[0], shape[2], shape[3])
    let padded = images.padded([padding, padding, padding, padding])  // [B, C, H + 2p, W + 2p]
    let offsets = Tensor.randint(0..<(2 * padding + 1), [batch, 2], generator: generator).scalars(as: Int64.self)
    let crops = (0..<batch).map { i in
      padded[i].narrow(dim: 1, start: Int(offsets[2 * i]), length: height)
        .narrow(dim: 2, start: Int(offsets[2 * i + 1]), length: width)
    }
    return Tensor.stack(crops)
  }

  /// Mirrors each image left–right with probability one half.
  public static func randomHorizontalFlip(_ images: Tensor, generator: Generator) -> Tensor {
    let batch = images.shape[0]
    let flip = (Tensor.rand([batch, 1, 1, 1], generator: generator).to(images.device) .< 0.5)
    return Tensor.where(flip, images.flipped([3]), images)
  }

  /// torchvision-style colour jitter with factors drawn per image: brightness scales the pixels,
  /// contrast blends with the image's mean gray, saturation blends with its own gray version.
  public static func colourJitter(
    _ images: Tensor, brightness: Double, contrast: Double, saturation: Double, generator: Generator
  ) -> Tensor {
    let batch = images.shape[0]
    func factors(_ strength: Double) -> Tensor {
      Tensor.rand([batch, 1, 1, 1], generator: generator).to(images.device) * (2 * strength) + (1 - strength)
    }
    var x = images
    if brightness > 0 { x = (x * factors(brightness)).clamped(min: 0, max: 1) }
    let gray = grayscale(x)  // [B, 1, H, W]
    if contrast > 0 {
      let mean = gray.mean(dims: [1, 2, 3], keepDim: true)
      let f = factors(contrast)
      x = (x * f + mean * (1 - f)).clamped(min: 0, max: 1)
    }
    if saturation > 0 && x.shape[1] == 3 {
      let f = factors(saturation)
      x = (x * f + grayscale(x) * (1 - f)).clamped(min: 0, max: 1)
    }
    return x
  }

  /// Luma of `[B, 3, H, W]` (BT.601 weights), or the image itself when it has one channel.
  static func grayscale(_ images: Tensor) -> Tensor {
    guard images.shape[1] == 3 else { return images }
    let weights = Tensor([0.299, 0.587, 0.114] as [Float], shape: [1, 3, 1, 1]).to(images.device, dtype: images.dtype)
    return (images * weights).sum(dim: 1, keepDim: true)
  }
}

/// Per-channel normalisation `(x − mean) / std`, the usual classifier input transform.
public struct Normalization: Codable, Equatable, Sendable {
  public var mean: [Double]
  public var std: [Double]

  public init(mean: [Double], std: [Double]) {
    precondition(mean.count == std.count, "mean and std need one value per channel")
    self.mean = mean
    self.std = std
  }

  /// Normalises `[B, C, H, W]`.
  public func callAsFunction(_ images: Tensor) -> Tensor {
    let c = mean.count
    let m = Tensor(mean.map(Float.init), shape: [1, c, 1, 1]).to(images.device, dtype: images.dtype)
    let s = Tensor(std.map(Float.init), shape: [1, c, 1, 1]).to(images.device, dtype: images.dtype)
    return (images - m) / s
  }

  /// Undoes the normalisation.
  public func inverse(_ images: Tensor) -> Tensor {
    let c = mean.count
    let m = Tensor(mean.map(Float.init), shape: [1, c, 1, 1]).to(images.device, dtype: images.dtype)
    let s = Tensor(std.map(Float.init), shape: [1, c, 1, 1]).to(images.device, dtype: images.dtype)
    return images * s + m
  }
}
