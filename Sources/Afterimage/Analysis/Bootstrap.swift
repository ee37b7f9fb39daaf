import Foundation

/// A number with its 95% interval: `value` is the statistic on the whole sample, `low` and
/// `high` the percentile-bootstrap bounds (`Bootstrap`).
public struct Estimate: Codable, Equatable, Sendable {
  public var value: Double
  public var low: Double
  public var high: Double

  public init(value: Double, low: Double, high: Double) {
    (self.value, self.low, self.high) = (value, low, high)
  }

  /// Whether the interval lies wholly above (`1`), wholly below (`-1`) or across (`0`) `reference`.
  public func side(of reference: Double) -> Int { low > reference ? 1 : high < reference ? -1 : 0 }

  /// No interval: too few values to resample (written as nulls in JSON).
  public static func unknown(_ value: Double) -> Estimate { Estimate(value: value, low: .nan, high: .nan) }

  /// Whether both bounds are numbers.
  public var hasInterval: Bool { low.isFinite && high.isFinite }

  enum CodingKeys: String, CodingKey { case value, low, high }

  // JSON has no NaN: a missing bound or value is written as null and read back as NaN.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    value = try c.decodeIfPresent(Double.self, forKey: .value) ?? .nan
    low = try c.decodeIfPresent(Double.self, forKey: .low) ?? .nan
    high = try c.decodeIfPresent(Double.self, forKey: .high) ?? .nan
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    func put(_ number: Double, _ key: CodingKeys) throws {
      if number.isFinite { try c.encode(number, forKey: key) } else { try c.encodeNil(forKey: key) }
    }
    try put(value, .value)
    try put(low, .low)
    try put(high, .high)
  }

  /// `value [low, high]` with `spec` (a percentage when it ends in `%%`).
  public func formatted(_ spec: String) -> String {
    guard hasInterval else { return String(format: spec, (spec.hasSuffix("%%") ? 100.0 : 1) * value) + " [no interval]" }
    let scale = spec.hasSuffix("%%") ? 100.0 : 1
    let bare = spec.hasSuffix("%%") ? String(spec.dropLast(2)) : spec
    return String(format: "\(spec) [\(bare)–\(bare)]", scale * value, scale * low, scale * high)
  }
}

/// Percentile-bootstrap intervals over images (Efron & Tibshirani 1993, ch. 13): resample the
/// images with replacement, recompute the statistic, and take the 2.5th and 97.5th percentiles.
/// Seeded, so a result file's intervals are the same on every run.
public enum Bootstrap {
  /// Resamples per interval: enough that the percentiles move by well under their width.
  public static let defaultResamples = 1000

  /// The interval of `statistic`, a function of the rows it is given (indices into the sample,
  /// with repeats), over `count` rows.
  public static func estimate(
    count: Int, resamples: Int = defaultResamples, seed: UInt64 = 0, confidence: Double = 0.95, _ statistic: ([Int]) -> Double
  ) -> Estimate {
    guard count > 0 else { return .unknown(.nan) }
    let value = statistic(Array(0..<count))
    guard count > 1 else { return .unknown(value) }
    var generator = SplitMix64(seed: seed ^ 0xB007_5742)
    var draws: [Double] = []
    draws.reserveCapacity(resamples)
    for _ in 0..<resamples {
      let rows = (0..<count).map { _ in Int(generator.next() % UInt64(count)) }
      let drawn = statistic(rows)
      if drawn.isFinite { draws.append(drawn) }
    }
    guard !draws.isEmpty else { return .unknown(value) }
    draws.sort()
    let tail = (1 - confidence) / 2
    return Estimate(value: value, low: percentile(draws, tail), high: percentile(draws, 1 - tail))
  }

  /// The interval of the mean of `values` (one per image).
  public static func mean(_ values: [Double], resamples: Int = defaultResamples, seed: UInt64 = 0) -> Estimate {
    estimate(count: values.count, resamples: resamples, seed: seed) { rows in rows.reduce(0) { $0 + values[$1] } / Double(rows.count) }
  }

  /// The interval of a proportion `fraction` of `count` 0/1 outcomes (the outcomes follow from
  /// the two numbers, so the interval is the same as from the outcomes themselves).
  public static func proportion(_ fraction: Double, of count: Int, resamples: Int = defaultResamples, seed: UInt64 = 0) -> Estimate {
    let ones = Int((fraction * Double(count)).rounded())
    return mean(Array(repeating: 1, count: ones) + Array(repeating: 0, count: max(0, count - ones)), resamples: resamples, seed: seed)
  }

  /// The interval of `mean(a − b)` for paired values (the same images scored two ways): the
  /// pairs are resampled together, so what the images share cancels.
  public static func meanDifference(_ a: [Double], _ b: [Double], resamples: Int = defaultResamples, seed: UInt64 = 0) -> Estimate {
    precondition(a.count == b.count, "paired values need the same images on both sides")
    return mean(zip(a, b).map { $0 - $1 }, resamples: resamples, seed: seed)
  }

  /// The interval of `mean(a) − mean(b)` for independent samples (different images on each
  /// side), each resampled on its own.
  public static func independentDifference(_ a: [Double], _ b: [Double], resamples: Int = defaultResamples, seed: UInt64 = 0) -> Estimate {
    guard !a.isEmpty, !b.isEmpty else { return .unknown(.nan) }
    let value = a.reduce(0, +) / Double(a.count) - b.reduce(0, +) / Double(b.count)
    guard a.count > 1, b.count > 1 else { return .unknown(value) }
    var generator = SplitMix64(seed: seed ^ 0xD1FF)
    func resampledMean(_ values: [Double]) -> Double {
      (0..<values.count).reduce(0) { sum, _ in sum + values[Int(generator.next() % UInt64(values.count))] } / Double(values.count)
    }
    var draws = (0..<resamples).map { _ in resampledMean(a) - resampledMean(b) }
    draws.sort()
    return Estimate(value: value, low: percentile(draws, 0.025), high: percentile(draws, 0.975))
  }

  /// The `q`-quantile of sorted `values`, interpolating linearly between order statistics
  /// (numpy's default).
  static func percentile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let below = Int(position.rounded(.down))
    let above = min(below + 1, sorted.count - 1)
    return sorted[below] + (sorted[above] - sorted[below]) * (position - Double(below))
  }
}
