import Foundation

/// Requests refused before they allocate: a grid picture, or a set of images scored together,
/// that would take more memory than the machine has. The limits are estimates on the safe
/// side, and each refusal says the largest request that fits. (Image files and tensor headers
/// have their own limits where they are read: `CI_MAX_PIXELS` in cimaging.c, the header limit
/// in Safetensors.swift, `gunzip`'s output limit.)
public enum ResourceLimits {
  /// The memory one request may plan to use: half the machine's, since the models, libtorch's
  /// caches and the operating system need the rest.
  public static var memoryBudget: Int { Int(min(ProcessInfo.processInfo.physicalMemory / 2, UInt64(Int.max))) }

  /// The most pixels one PNG grid may have: 64 million, an 8000×8000 picture (770 MB as the
  /// float32 tensor it is drawn in, beyond what image viewers open comfortably).
  public static let maxGridPixels = 64_000_000

  /// Refuses a grid of `count` tiles of `side`×`side` pixels (before `scale`), `columns` per row.
  /// `fix` names the option that makes it smaller.
  public static func checkGrid(count: Int, columns: Int, side: Int, scale: Int = 1, padding: Int = 2, fix: String) throws {
    let rows = (count + max(columns, 1) - 1) / max(columns, 1)
    let cell = side * scale + padding
    let pixels = Double(rows * cell + padding) * Double(columns * cell + padding)
    guard pixels <= Double(maxGridPixels) else {
      let fittingRows = max(1, Int(Double(maxGridPixels) / (Double(cell) * Double(cell) * Double(columns))))
      throw RunError(String(
        format: "the picture would be %.0f million pixels (%d rows of %d tiles of %d px), over the %d million one grid may have: %@ (about %d rows fit)",
        pixels / 1e6, rows, columns, side * scale, maxGridPixels / 1_000_000, fix, fittingRows))
    }
  }

  /// The memory scoring `count` images of `channels`×`side`² together takes, about: the images
  /// and `copies` more of them (reconstructions, noise samples), the evaluation network's
  /// activations (up to 64 channels at full resolution), and `pairwise` matrices of count².
  public static func scoringBytes(count: Int, channels: Int, side: Int, copies: Int, pairwise: Int) -> Double {
    let n = Double(count)
    let image = Double(channels * side * side) * 4
    let activations = Double(side * side) * 64 * 4
    return n * image * Double(1 + copies) + n * activations + Double(pairwise) * n * n * 4
  }

  /// Refuses scoring `count` images together when `scoringBytes` exceeds `memoryBudget`; the
  /// message gives the largest count that fits. `fix` names the option (`--count`).
  public static func checkScoring(count: Int, channels: Int, side: Int, copies: Int, pairwise: Int, fix: String) throws {
    func bytes(_ n: Int) -> Double { scoringBytes(count: n, channels: channels, side: side, copies: copies, pairwise: pairwise) }
    let budget = Double(memoryBudget)
    guard bytes(count) > budget else { return }
    var fitting = count
    while fitting > 1 && bytes(fitting) > budget { fitting /= 2 }
    throw RunError(String(
      format: "scoring %d images of %d×%d² together needs about %.1f GB, more than the %.1f GB this machine can give it: %@ (%d fit)",
      count, channels, side, bytes(count) / 1e9, budget / 1e9, fix, fitting))
  }
}
