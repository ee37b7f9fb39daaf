import Foundation

/// SplitMix64: a tiny, fast, seedable generator. Used where Afterimage needs randomness that
/// does not depend on libtorch's generators (data-set rendering, shuffling), so that image i of
/// a procedural data set is the same however and in whatever order it is requested.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  /// A generator for item `index` of stream `seed`: independent streams per item.
  public init(seed: UInt64, index: UInt64) {
    var mixer = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
    state = mixer.next() ^ (index &* 0xD1B5_4A32_D192_ED03)
    _ = next()
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A uniform double in [low, high).
  public mutating func uniform(_ low: Double = 0, _ high: Double = 1) -> Double {
    low + (high - low) * Double(next() >> 11) * 0x1.0p-53
  }

  /// A standard normal sample (Box–Muller).
  public mutating func normal() -> Double {
    let u1 = max(uniform(), 1e-300)
    let u2 = uniform()
    return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
  }
}

