import Foundation
import Torch

/// Originals beside their reconstructions from several noise draws, each judged by the inverted
/// classifier: what `inverter reconstruct` draws, writes and reports.
public struct ReconstructionSheet {
  /// `[n, C, R, R]` in [0, 1], on the inverter's device.
  public let originals: Tensor
  /// One `[n, C, R, R]` per noise draw.
  public let reconstructions: [Tensor]
  /// The inverted representation of the originals, `[n, D]`.
  public let representation: Tensor
  /// The inverted classifier's top-1 class of each original, and of each draw's reconstructions
  /// (`predicted[draw][image]`).
  public let originalClasses: [Int64]
  public let predicted: [[Int64]]

  /// Reconstructs `originals [n, C, R, R]` with `samples` noise draws, seeded `seed`, `seed + 1`, ….
  public init(inverter: Inverter, originals: Tensor, samples: Int, seed: UInt64) throws {
    let originals = originals.to(inverter.device)
    let n = originals.shape[0]
    representation = try withNoGrad { try inverter.represent(originals) }  // [n, D]
    var reconstructions: [Tensor] = []
    var predicted: [[Int64]] = []
    for draw in 0..<max(1, samples) {
      let reconstruction = inverter.reconstruct(representation: representation, noise: inverter.noise(count: n, seed: seed &+ UInt64(draw)))
      reconstructions.append(reconstruction)
      predicted.append(try withNoGrad { try inverter.classifier.logits(reconstruction).argmax(dim: 1) }.scalars(as: Int64.self))
    }
    self.originals = originals
    self.reconstructions = reconstructions
    self.predicted = predicted
    originalClasses = try withNoGrad { try inverter.classifier.logits(originals) }.argmax(dim: 1).scalars(as: Int64.self)
  }

  public var count: Int { originals.shape[0] }

  /// Reconstructions the classifier gives the original's class, of all of them.
  public var agreement: (matching: Int, total: Int) {
    let matching = predicted.reduce(0) { total, draw in total + zip(draw, originalClasses).filter { $0 == $1 }.count }
    return (matching, count * predicted.count)
  }

  /// The picture: a row per original, the original then its reconstructions, each reconstruction
  /// framed green when the classifier gives it the original's class and red when not.
  public func grid(scale: Int) -> Tensor {
    let tiles = Tensor.stack([originals] + reconstructions, dim: 1).flattened(from: 0, through: 1)  // [n·(S+1), C, R, R]
    var borders: [RGB?] = []
    for i in 0..<count {
      borders.append(nil)
      for draw in predicted { borders.append(draw[i] == originalClasses[i] ? .green : .red) }
    }
    return ImageGrid.make(tiles, columns: reconstructions.count + 1, padding: 2, scale: scale, borders: borders)
  }

  /// The sheet as arrays (`--arrays`): originals, reconstructions `[n, S, C, R, R]`, the
  /// representation, the classifier's predictions, and the labels and factors when known.
  public func arrays(labels: Tensor?, factors: [ShapeFactors]?) -> ReconstructionArrays {
    var kept = ReconstructionArrays(
      originals: originals, reconstructions: Tensor.stack(reconstructions, dim: 1), representation: representation, labels: labels)
    kept.predictions = [
      ("classifier_originals", Tensor(originalClasses)),
      ("classifier_reconstructions", Tensor(predicted.flatMap { $0 }, shape: [predicted.count, count]).t.contiguous()),
    ]
    kept.factors = factors
    return kept
  }
}
