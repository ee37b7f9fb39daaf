import Foundation
import Torch

/// Tiles a batch of images into one picture, for sample grids and previews.
public enum ImageGrid {
  /// Lays out `images [N, C, H, W]` (C = 1 or 3, values in [0, 1]) in rows of `columns`,
  /// separated by `padding` pixels of `background`. A tile whose `borders` entry is a colour
  /// gets a frame of that colour drawn inside its padding (e.g. red for misclassified).
  /// Each pixel becomes a `scale`×`scale` block (nearest neighbour) so small tiles can be seen.
  ///
  /// - Returns: an RGB image `[3, H', W']`.
  public static func make(
    _ images: Tensor, columns: Int? = nil, padding: Int = 2, scale: Int = 1, background: RGB = .white,
    borders: [RGB?]? = nil
  ) -> Tensor {
    let shape = images.shape  // [N, C, H, W]
    precondition(shape.count == 4, "ImageGrid.make needs [N, C, H, W], got \(shape)")
    let count = shape[0]
    let columnCount = max(1, min(columns ?? Int(Double(count).squareRoot().rounded(.up)), max(count, 1)))
    let rowCount = (count + columnCount - 1) / columnCount
    var tiles = withNoGrad { images.detached().to(.cpu, dtype: .float32).clamped(min: 0, max: 1) }  // pictures are made on the CPU
    if shape[1] == 1 { tiles = tiles.expanded([-1, 3, -1, -1]) }
    if scale > 1 { tiles = tiles.upsampleNearest(scale: scale) }
    let (tileHeight, tileWidth) = (tiles.shape[2], tiles.shape[3])
    let cellHeight = tileHeight + padding
    let cellWidth = tileWidth + padding
    let canvas = Tensor.empty([3, rowCount * cellHeight + padding, columnCount * cellWidth + padding])
    withNoGrad {
      fill(canvas, background)
      for index in 0..<count {
        let top = (index / columnCount) * cellHeight + padding
        let left = (index % columnCount) * cellWidth + padding
        if let colour = borders?[index], padding > 0 {
          let frame = padding
          let region = canvas.narrow(dim: 1, start: top - frame, length: tileHeight + 2 * frame)
            .narrow(dim: 2, start: left - frame, length: tileWidth + 2 * frame)
          fill(region, colour)
        }
        canvas.narrow(dim: 1, start: top, length: tileHeight).narrow(dim: 2, start: left, length: tileWidth)
          .copy(from: tiles[index])
      }
    }
    return canvas
  }

  /// Paints every pixel of a `[3, H, W]` view with `colour`.
  static func fill(_ region: Tensor, _ colour: RGB) {
    region.copy(from: Tensor([Float(colour.red), Float(colour.green), Float(colour.blue)], shape: [3, 1, 1]))
  }
}
