import Foundation
import Torch

/// A run's sample grids, `samples/step-NNNNNN.png`: fixed held-out originals, each beside its
/// reconstruction by the EMA generator from fixed noise, so grids of different steps compare.
struct InverterSamples {
  /// The originals `[S, C, R, R]` in [0, 1], their raw representation `[S, D]` (logits: D = K)
  /// and the noise `[S, Z]`.
  let images: Tensor
  let logits: Tensor
  let noise: Tensor

  /// The first (up to) 16 images of `heldOut`, and noise drawn from `seed`.
  init(heldOut: Dataset, classifier: any ImageClassifier, representation: Representation, noiseSize: Int, seed: UInt64, device: Device) throws {
    let count = min(16, heldOut.count)
    let images = try heldOut.batch(at: Array(0..<count)).images.to(device)
    self.images = images
    logits = try withNoGrad { try classifier.represent(images, as: representation) }
    noise = Tensor.randn([count, noiseSize], generator: Generator(seed: seed)).to(device)
  }

  /// Writes the grid of `step` (and to the TensorBoard log, `RunDirectory.writeSampleGrid`).
  func write(ema: any ImageGenerator, config: InverterConfig, step: Int, to run: RunDirectory) throws {
    ema.eval()
    let reconstructions = withNoGrad { (ema(representation: config.preprocess(logits), noise: noise) + 1) / 2 }
    let pairs = Tensor.stack([images, reconstructions], dim: 1).flattened(from: 0, through: 1)  // [2S, C, R, R]
    let grid = ImageGrid.make(pairs, columns: 8, padding: 2, scale: ImageGrid.scale(forResolution: config.resolution))
    try run.writeSampleGrid(grid, step: step)
  }
}
