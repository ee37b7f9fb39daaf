import Foundation

/// A point or vector in a glyph's unit coordinates (y up, extent about 1).
struct Point {
  var x: Double
  var y: Double
  init(_ x: Double, _ y: Double) {
    self.x = x
    self.y = y
  }
}

/// A 2-D signed distance: negative inside the shape, positive outside, in unit coordinates.
typealias SignedDistance = (Point) -> Double

/// One shape class of the Shapes data set: a name and a signed distance function whose area
/// centroid is at the origin (so the recorded centre is the centroid of the drawn pixels).
struct Glyph {
  let name: String
  let distance: SignedDistance

  /// Centres `distance` on its area centroid and scales it so that every point of the shape lies
  /// within distance 1 of the centroid (found by sampling a 240×240 grid): glyphs of the same
  /// recorded size then reach equally far, and a centred glyph never leaves the picture.
  /// The 256×256 grid samples odd multiples of 1/160, which no vertex coordinate (multiples of
  /// 0.01) equals: a sample on an edge would make a symmetric shape's centroid drift.
  init(_ name: String, _ distance: @escaping SignedDistance) {
    let steps = 256
    var inside: [Point] = []
    for i in 0..<steps {
      for j in 0..<steps {
        let p = Point(-1.6 + 3.2 * (Double(i) + 0.5) / Double(steps), -1.6 + 3.2 * (Double(j) + 0.5) / Double(steps))
        if distance(p) < 0 { inside.append(p) }
      }
    }
    let count = Double(max(inside.count, 1))
    let centroid = Point(inside.reduce(0) { $0 + $1.x } / count, inside.reduce(0) { $0 + $1.y } / count)
    let reach = inside.reduce(0.0) { max($0, ((($1.x - centroid.x) * ($1.x - centroid.x) + ($1.y - centroid.y) * ($1.y - centroid.y))).squareRoot()) }
    let scale = max(reach, 1e-6)
    self.name = name
    // Distances scale with the shape: d_scaled(p) = d(p · scale + centroid) / scale.
    self.distance = { p in distance(Point(p.x * scale + centroid.x, p.y * scale + centroid.y)) / scale }
  }
}

// MARK: - Signed distance primitives

/// Distance to a simple polygon (convex or not) given by its vertices in order: the minimum
/// distance to its edges, negative when a crossing count says the point is inside.
func polygonDistance(_ vertices: [Point]) -> SignedDistance {
  let xs = vertices.map(\.x)
  let ys = vertices.map(\.y)
  let n = vertices.count
  return { p in
    var squared = Double.greatestFiniteMagnitude
    var inside = false
    var j = n - 1
    for i in 0..<n {
      let ex = xs[j] - xs[i]
      let ey = ys[j] - ys[i]
      let wx = p.x - xs[i]
      let wy = p.y - ys[i]
      let t = min(max((wx * ex + wy * ey) / (ex * ex + ey * ey), 0), 1)
      let bx = wx - ex * t
      let by = wy - ey * t
      squared = min(squared, bx * bx + by * by)
      // Even-odd rule: does a ray to the right cross edge (i, j)?
      if (ys[i] > p.y) != (ys[j] > p.y), p.x < xs[i] + (p.y - ys[i]) * ex / ey {
        inside.toggle()
      }
      j = i
    }
    return inside ? -squared.squareRoot() : squared.squareRoot()
  }
}

func circleDistance(radius: Double, centre: Point = Point(0, 0)) -> SignedDistance {
  { p in ((p.x - centre.x) * (p.x - centre.x) + (p.y - centre.y) * (p.y - centre.y)).squareRoot() - radius }
}

func union(_ a: @escaping SignedDistance, _ b: @escaping SignedDistance) -> SignedDistance {
  { p in min(a(p), b(p)) }
}

func intersection(_ a: @escaping SignedDistance, _ b: @escaping SignedDistance) -> SignedDistance {
  { p in max(a(p), b(p)) }
}

func subtracting(_ a: @escaping SignedDistance, _ b: @escaping SignedDistance) -> SignedDistance {
  { p in max(a(p), -b(p)) }
}

func regularPolygon(sides: Int, radius: Double = 1) -> [Point] {
  (0..<sides).map { k in
    let angle = Double.pi / 2 + 2 * Double.pi * Double(k) / Double(sides)
    return Point(radius * cos(angle), radius * sin(angle))
  }
}

func star(points: Int, inner: Double) -> [Point] {
  (0..<(2 * points)).map { k in
    let angle = Double.pi / 2 + Double.pi * Double(k) / Double(points)
    let r = k % 2 == 0 ? 1.0 : inner
    return Point(r * cos(angle), r * sin(angle))
  }
}

func box(halfWidth: Double, halfHeight: Double) -> [Point] {
  [Point(-halfWidth, -halfHeight), Point(halfWidth, -halfHeight), Point(halfWidth, halfHeight), Point(-halfWidth, halfHeight)]
}

/// A rectilinear outline from a list of (x, y) pairs, scaled to fit in [-1, 1].
func outline(_ pairs: [(Double, Double)]) -> [Point] { pairs.map { Point($0.0, $0.1) } }

// MARK: - The glyph table

/// Shape classes in order: the first ten are the classic set; more classes add glyphs that stay
/// distinct under rotation (no class is a rotated copy of another).
let glyphTable: [Glyph] = [
  Glyph("circle", circleDistance(radius: 0.85)),
  Glyph("square", polygonDistance(box(halfWidth: 0.75, halfHeight: 0.75))),
  Glyph("triangle", polygonDistance(regularPolygon(sides: 3))),
  Glyph("pentagon", polygonDistance(regularPolygon(sides: 5, radius: 0.9))),
  Glyph("hexagon", polygonDistance(regularPolygon(sides: 6, radius: 0.9))),
  Glyph("star", polygonDistance(star(points: 5, inner: 0.42))),
  Glyph("cross", polygonDistance(outline([(-0.3, -0.95), (0.3, -0.95), (0.3, -0.3), (0.95, -0.3), (0.95, 0.3), (0.3, 0.3),
                                          (0.3, 0.95), (-0.3, 0.95), (-0.3, 0.3), (-0.95, 0.3), (-0.95, -0.3), (-0.3, -0.3)]))),
  Glyph("ring", { p in abs((p.x * p.x + p.y * p.y).squareRoot() - 0.68) - 0.24 }),
  Glyph("diamond", polygonDistance(outline([(0, 1), (0.55, 0), (0, -1), (-0.55, 0)]))),
  Glyph("heart", union(union(circleDistance(radius: 0.47, centre: Point(-0.42, 0.32)), circleDistance(radius: 0.47, centre: Point(0.42, 0.32))),
                       polygonDistance(outline([(-0.86, 0.2), (0, -0.95), (0.86, 0.2), (0, 0.45)])))),
  Glyph("crescent", subtracting(circleDistance(radius: 0.9), circleDistance(radius: 0.72, centre: Point(0.42, 0.1)))),
  Glyph("arrow", polygonDistance(outline([(-0.95, -0.18), (0.2, -0.18), (0.2, -0.55), (0.95, 0), (0.2, 0.55), (0.2, 0.18), (-0.95, 0.18)]))),
  Glyph("l-shape", polygonDistance(outline([(-0.6, -0.9), (0.7, -0.9), (0.7, -0.45), (-0.15, -0.45), (-0.15, 0.9), (-0.6, 0.9)]))),
  Glyph("t-shape", polygonDistance(outline([(-0.9, 0.9), (0.9, 0.9), (0.9, 0.5), (0.22, 0.5), (0.22, -0.9), (-0.22, -0.9), (-0.22, 0.5), (-0.9, 0.5)]))),
  Glyph("semicircle", subtracting(circleDistance(radius: 0.95), { p in p.y })),
  Glyph("octagon-frame", subtracting(polygonDistance(regularPolygon(sides: 8, radius: 0.95)), polygonDistance(regularPolygon(sides: 8, radius: 0.5)))),
  Glyph("star4", polygonDistance(star(points: 4, inner: 0.35))),
  Glyph("star8", polygonDistance(star(points: 8, inner: 0.6))),
  Glyph("rectangle", polygonDistance(box(halfWidth: 0.95, halfHeight: 0.45))),
  Glyph("ellipse", { p in ((p.x / 0.95) * (p.x / 0.95) + (p.y / 0.5) * (p.y / 0.5)).squareRoot() * 0.5 - 0.5 }),
  Glyph("h-shape", polygonDistance(outline([(-0.85, -0.9), (-0.45, -0.9), (-0.45, -0.18), (0.45, -0.18), (0.45, -0.9), (0.85, -0.9), (0.85, 0.9),
                                            (0.45, 0.9), (0.45, 0.18), (-0.45, 0.18), (-0.45, 0.9), (-0.85, 0.9)]))),
  Glyph("u-shape", polygonDistance(outline([(-0.85, 0.9), (-0.85, -0.9), (0.85, -0.9), (0.85, 0.9), (0.45, 0.9), (0.45, -0.5), (-0.45, -0.5), (-0.45, 0.9)]))),
  Glyph("trapezoid", polygonDistance(outline([(-0.95, -0.6), (0.95, -0.6), (0.45, 0.6), (-0.45, 0.6)]))),
  Glyph("right-triangle", polygonDistance(outline([(-0.8, -0.8), (0.8, -0.8), (-0.8, 0.8)]))),
  Glyph("chevron", polygonDistance(outline([(-0.9, -0.7), (0, 0.2), (0.9, -0.7), (0.9, 0.0), (0, 0.9), (-0.9, 0.0)]))),
  Glyph("kite", polygonDistance(outline([(0, 1), (0.6, 0.35), (0, -1), (-0.6, 0.35)]))),
  Glyph("star6", polygonDistance(star(points: 6, inner: 0.5))),
  Glyph("square-frame", subtracting(polygonDistance(box(halfWidth: 0.85, halfHeight: 0.85)), polygonDistance(box(halfWidth: 0.45, halfHeight: 0.45)))),
  Glyph("parallelogram", polygonDistance(outline([(-0.95, -0.5), (0.4, -0.5), (0.95, 0.5), (-0.4, 0.5)]))),
  Glyph("thin-cross", polygonDistance(outline([(-0.13, -0.95), (0.13, -0.95), (0.13, -0.13), (0.95, -0.13), (0.95, 0.13), (0.13, 0.13),
                                               (0.13, 0.95), (-0.13, 0.95), (-0.13, 0.13), (-0.95, 0.13), (-0.95, -0.13), (-0.13, -0.13)]))),
  Glyph("z-shape", polygonDistance(outline([(-0.85, 0.9), (0.85, 0.9), (0.85, 0.5), (-0.2, -0.5), (0.85, -0.5), (0.85, -0.9), (-0.85, -0.9),
                                            (-0.85, -0.5), (0.2, 0.5), (-0.85, 0.5)]))),
  Glyph("e-shape", polygonDistance(outline([(-0.75, -0.9), (0.8, -0.9), (0.8, -0.55), (-0.3, -0.55), (-0.3, -0.17), (0.55, -0.17), (0.55, 0.17),
                                            (-0.3, 0.17), (-0.3, 0.55), (0.8, 0.55), (0.8, 0.9), (-0.75, 0.9)]))),
  Glyph("hourglass", union(polygonDistance(outline([(-0.75, 0.9), (0.75, 0.9), (0, 0.05)])), polygonDistance(outline([(-0.75, -0.9), (0, -0.05), (0.75, -0.9)])))),
  Glyph("house", polygonDistance(outline([(-0.7, -0.85), (0.7, -0.85), (0.7, 0.15), (0, 0.9), (-0.7, 0.15)]))),
  Glyph("pie-quarter", intersection(circleDistance(radius: 1.3, centre: Point(-0.6, -0.6)), { p in max(-(p.x + 0.6), -(p.y + 0.6)) })),
  Glyph("pacman", subtracting(circleDistance(radius: 0.92), polygonDistance(outline([(0, 0), (1.2, 0.7), (1.2, -0.7)])))),
  Glyph("droplet", union(circleDistance(radius: 0.6, centre: Point(0, -0.3)), polygonDistance(outline([(-0.55, -0.1), (0, 0.98), (0.55, -0.1)])))),
  Glyph("ring-thin", { p in abs((p.x * p.x + p.y * p.y).squareRoot() - 0.8) - 0.1 }),
  Glyph("two-dots", union(circleDistance(radius: 0.42, centre: Point(-0.5, 0)), circleDistance(radius: 0.42, centre: Point(0.5, 0)))),
  Glyph("theta", union({ p in abs((p.x * p.x + p.y * p.y).squareRoot() - 0.78) - 0.12 }, polygonDistance(box(halfWidth: 0.12, halfHeight: 0.8)))),
]
