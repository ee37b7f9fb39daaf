import Foundation

/// A small SVG line chart, drawn by our own code: one or more series over a shared x axis,
/// with axes, ticks, a title and a legend.
public struct LineChart {
  public struct Series {
    public var name: String
    public var points: [(x: Double, y: Double)]
    /// Drawn dashed (a second condition beside the solid lines, e.g. robust beside standard).
    public var dashed = false
    /// The palette index of its colour (nil: its position among the series).
    public var colour: Int?
    public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false, colour: Int? = nil) {
      self.dashed = dashed
      self.colour = colour
      self.name = name
      self.points = points
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var width = 480.0
  public var height = 300.0
  /// Labels at given x positions in place of the numeric ticks (categories such as layer names).
  public var xTicks: [(x: Double, label: String)]?
  /// A fixed y range (R² in [0, 1]) in place of the data's own.
  public var yRange: ClosedRange<Double>?

  public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
  }

  static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

  /// The chart as an SVG document.
  public func svg() -> String {
    // Many series: the legend goes right of the plot instead of over it.
    let legendOutside = series.count > 4
    let (left, right, top, bottom) = (60.0, legendOutside ? 190.0 : 20.0, 36.0, 48.0)
    let plotWidth = width - left - right
    let plotHeight = height - top - bottom
    let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
    let ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
    var (xMin, xMax) = (xs.min() ?? 0, xs.max() ?? 1)
    var (yMin, yMax) = (ys.min() ?? 0, ys.max() ?? 1)
    if let yRange { (yMin, yMax) = (yRange.lowerBound, yRange.upperBound) }
    if xMax - xMin < 1e-12 { xMin -= 0.5; xMax += 0.5 }
    if yMax - yMin < 1e-12 { yMin -= 0.5; yMax += 0.5 }
    let yPad = yRange == nil ? (yMax - yMin) * 0.05 : 0
    yMin -= yPad
    yMax += yPad
    func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
    /// Values outside a fixed range are drawn at its edge (an R² below 0 at 0: nothing held).
    func py(_ y: Double) -> Double { top + (1 - (min(max(y, yMin), yMax) - yMin) / (yMax - yMin)) * plotHeight }
    var svg = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(Int(width / 2))" y="20" text-anchor="middle" font-size="13" font-weight="bold">\(escape(title))</text>
      <line x1="\(left)" y1="\(top + plotHeight)" x2="\(left + plotWidth)" y2="\(top + plotHeight)" stroke="black"/>
      <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(top + plotHeight)" stroke="black"/>

      """
    for i in 0...4 {
      let fraction = Double(i) / 4
      let xValue = xMin + fraction * (xMax - xMin)
      let yValue = yMin + fraction * (yMax - yMin)
      if xTicks == nil {
        svg += "<line x1=\"\(px(xValue))\" y1=\"\(top + plotHeight)\" x2=\"\(px(xValue))\" y2=\"\(top + plotHeight + 4)\" stroke=\"black\"/>"
        svg += "<text x=\"\(px(xValue))\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(Self.tick(xValue))</text>\n"
      }
      svg += "<line x1=\"\(left - 4)\" y1=\"\(py(yValue))\" x2=\"\(left)\" y2=\"\(py(yValue))\" stroke=\"black\"/>"
      svg += "<line x1=\"\(left)\" y1=\"\(py(yValue))\" x2=\"\(left + plotWidth)\" y2=\"\(py(yValue))\" stroke=\"#eee\"/>"
      svg += "<text x=\"\(left - 6)\" y=\"\(py(yValue) + 4)\" text-anchor=\"end\">\(Self.tick(yValue))</text>\n"
    }
    for (x, label) in xTicks ?? [] {
      svg += "<line x1=\"\(px(x))\" y1=\"\(top + plotHeight)\" x2=\"\(px(x))\" y2=\"\(top + plotHeight + 4)\" stroke=\"black\"/>"
      svg += "<text x=\"\(px(x))\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(escape(label))</text>\n"
    }
    svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 10)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
    svg += "<text x=\"14\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(top + plotHeight / 2))\">\(escape(yLabel))</text>\n"
    for (index, line) in series.enumerated() {
      let colour = Self.palette[(line.colour ?? index) % Self.palette.count]
      // Drawn left to right whatever order the points were measured in (a polyline in the
      // order given zigzags when the magnitudes were, say, 0, −10, −5, 5).
      let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
      let path = points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
      let dash = line.dashed ? " stroke-dasharray=\"5,3\"" : ""
      svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"\(dash) points=\"\(path)\"/>\n"
      for point in points {
        svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", px(point.x), py(point.y), colour)
      }
      let legendY = top + 14 * Double(index) + 4
      let legendX = legendOutside ? left + plotWidth + 12 : left + plotWidth - 130
      let swatch = line.dashed
        ? "<line x1=\"\(legendX)\" y1=\"\(legendY + 5)\" x2=\"\(legendX + 12)\" y2=\"\(legendY + 5)\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-dasharray=\"3,2\"/>"
        : "<rect x=\"\(legendX)\" y=\"\(legendY)\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>"
      svg += "\n" + swatch
      svg += "<text x=\"\(legendX + 15)\" y=\"\(legendY + 9)\">\(escape(line.name))</text>\n"
    }
    return svg + "</svg>\n"
  }

  static func tick(_ value: Double) -> String {
    let magnitude = abs(value)
    if magnitude != 0 && (magnitude < 0.01 || magnitude >= 10_000) { return String(format: "%.1e", value) }
    return String(format: magnitude < 1 ? "%.2f" : "%.1f", value)
  }

  func escape(_ text: String) -> String { HTML.escape(text) }
}
