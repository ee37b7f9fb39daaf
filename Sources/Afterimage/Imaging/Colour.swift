import Foundation

/// An RGB colour with components in [0, 1].
public struct RGB: Equatable, Sendable {
  public var red: Double
  public var green: Double
  public var blue: Double

  public init(_ red: Double, _ green: Double, _ blue: Double) {
    self.red = red
    self.green = green
    self.blue = blue
  }

  public static let white = RGB(1, 1, 1)
  public static let black = RGB(0, 0, 0)
  /// Marks a wrong prediction in grids.
  public static let red = RGB(0.9, 0.1, 0.1)
  /// Marks a right prediction in grids.
  public static let green = RGB(0.1, 0.75, 0.2)

  /// The colour with hue, saturation and value in [0, 1] (hue wraps around).
  public init(hue: Double, saturation: Double, value: Double) {
    let h = (hue - hue.rounded(.down)) * 6
    let sector = Int(h) % 6
    let fraction = h - Double(Int(h))
    let p = value * (1 - saturation)
    let q = value * (1 - saturation * fraction)
    let t = value * (1 - saturation * (1 - fraction))
    switch sector {
    case 0: self.init(value, t, p)
    case 1: self.init(q, value, p)
    case 2: self.init(p, value, t)
    case 3: self.init(p, q, value)
    case 4: self.init(t, p, value)
    default: self.init(value, p, q)
    }
  }

  /// Hue, saturation and value, each in [0, 1] (hue 0 for grays).
  public var hsv: (hue: Double, saturation: Double, value: Double) {
    let maximum = max(red, green, blue)
    let minimum = min(red, green, blue)
    let chroma = maximum - minimum
    guard chroma > 0 else { return (0, 0, maximum) }
    var hue: Double
    if maximum == red {
      hue = (green - blue) / chroma
    } else if maximum == green {
      hue = (blue - red) / chroma + 2
    } else {
      hue = (red - green) / chroma + 4
    }
    hue /= 6
    if hue < 0 { hue += 1 }
    return (hue, chroma / maximum, maximum)
  }

  /// The shortest distance between two hues on the colour wheel, in [0, 0.5].
  public static func hueDistance(_ a: Double, _ b: Double) -> Double {
    let d = abs(a - b).truncatingRemainder(dividingBy: 1)
    return min(d, 1 - d)
  }
}
