import Foundation
import Torch

/// The GAN losses (hinge, as in BigGAN and the paper).
public enum HingeLoss {
  /// `mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))`, returned as its two parts.
  public static func discriminator(real: Tensor, fake: Tensor) -> (real: Tensor, fake: Tensor) {
    ((1 - real).relu().mean(), (1 + fake).relu().mean())
  }

  /// `−mean(D(fake))`.
  public static func generator(fake: Tensor) -> Tensor { -fake.mean() }
}
