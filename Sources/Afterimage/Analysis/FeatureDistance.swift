import Foundation
import Torch

/// The perceptual distance between two images in one feature map of a network, shared by the
/// metric (`Metrics.perceptualDistance`, `Metrics.perceptualDistanceMatrix`) and the inverter's
/// perceptual loss (`InverterObjective`), so both normalise the same way.
///
/// A feature map is `[B, C, H, W]`, `[B, C]` (pooled) or a transformer's tokens `[B, T, D]`,
/// whose channels are D. At each position the channel vector is scaled to unit length, and the
/// distance of two maps is the squared distance of their unit vectors, summed over channels and
/// averaged over positions: LPIPS (Zhang et al. 2018) with unit weights.
///
/// The metric reports that distance per image. The training loss keeps the form the shipped
/// inverters were trained with, `channelAveraged`: the distance averaged over images and divided
/// by the layer's channel count C, a per-layer weight of 1/C, so that the recorded commands of
/// the shipped models reproduce them (docs/SCIENCE.md, "The perceptual distance").
public enum FeatureDistance {
  /// The channel axis: 2 for tokens `[B, T, D]`, else 1.
  public static func channelAxis(_ features: Tensor) -> Int { features.rank == 3 ? 2 : 1 }

  /// How many positions a feature map has per image: H·W, T, or 1 for `[B, C]`.
  public static func positionCount(_ features: Tensor) -> Int {
    let axis = channelAxis(features)
    return features.shape.enumerated().filter { $0.offset != 0 && $0.offset != axis }.map(\.element).reduce(1, *)
  }

  /// The channel count C of a feature map.
  public static func channelCount(_ features: Tensor) -> Int { features.shape[channelAxis(features)] }

  /// `features` with each position's channel vector scaled to unit length (1e-10 under the root
  /// keeps an all-zero vector at zero).
  public static func unitChannels(_ features: Tensor) -> Tensor {
    features / (features.pow(2).sum(dim: channelAxis(features), keepDim: true) + 1e-10).sqrt()
  }

  /// The distance per image `[B]` between feature maps `a` and `b` of the same shape.
  public static func perImage(_ a: Tensor, _ b: Tensor) -> Tensor {
    let squares = (unitChannels(a) - unitChannels(b)).pow(2).sum(dim: channelAxis(a))  // [B, positions…]
    return squares.rank > 1 ? squares.flattened(from: 1).mean(dims: [1]) : squares
  }

  /// The perceptual loss term of one feature map: `perImage(a, b).mean() / C`, computed as one
  /// mean over every element of the squared difference (so the number is the one the shipped
  /// inverters were trained with, to the last bit).
  public static func channelAveraged(_ a: Tensor, _ b: Tensor) -> Tensor {
    Loss.mse(unitChannels(a), unitChannels(b))
  }
}
