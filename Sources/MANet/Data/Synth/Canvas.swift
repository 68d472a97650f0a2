// A small anti-aliased rasteriser: shapes as signed distance functions, drawn through an affine pose onto a float RGB canvas.

import Foundation
import ManetSupport

/// A 2-D point or vector.
public struct Point2: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }

    static func + (a: Point2, b: Point2) -> Point2 { Point2(a.x + b.x, a.y + b.y) }
    static func - (a: Point2, b: Point2) -> Point2 { Point2(a.x - b.x, a.y - b.y) }
    static func * (a: Point2, s: Double) -> Point2 { Point2(a.x * s, a.y * s) }
    var length: Double { (x * x + y * y).squareRoot() }
}

/// An RGB colour with components in [0, 1].
public struct Colour: Sendable, Equatable {
    public var r: Double
    public var g: Double
    public var b: Double
    public init(_ r: Double, _ g: Double, _ b: Double) { self.r = r; self.g = g; self.b = b }

    /// This colour scaled by `f` (darker below 1), clamped to [0, 1].
    func scaled(_ f: Double) -> Colour { Colour(min(r * f, 1), min(g * f, 1), min(b * f, 1)) }
    /// Linear mix: `t` = 0 gives self, 1 gives `other`.
    func mixed(_ other: Colour, _ t: Double) -> Colour {
        Colour(r + (other.r - r) * t, g + (other.g - g) * t, b + (other.b - b) * t)
    }
}

/// A shape known by its signed distance: negative inside, positive outside, in the units of the
/// space it is defined in. Anti-aliasing comes from the distance: coverage = 0.5 - d / pixel.
public indirect enum Shape: Sendable {
    /// An ellipse with semi-axes (rx, ry), rotated by `angle` radians.
    case ellipse(center: Point2, rx: Double, ry: Double, angle: Double)
    /// A thick open polyline with round caps and joins (strokes, Bézier curves once flattened).
    case stroke(points: [Point2], halfWidth: Double)
    /// A filled simple polygon (even-odd rule).
    case polygon([Point2])
    /// The band of `halfWidth` around another shape's outline (rings, glasses frames).
    case outline(Shape, halfWidth: Double)
    /// Points inside both shapes (an iris clipped to its eye).
    case intersection(Shape, Shape)

    /// Signed distance from `p` (exact for strokes and polygons, a first-order estimate for ellipses).
    func distance(_ p: Point2) -> Double {
        switch self {
        case .ellipse(let c, let rx, let ry, let angle):
            let dx = p.x - c.x, dy = p.y - c.y
            let cosA = cos(angle), sinA = sin(angle)
            let u = (dx * cosA + dy * sinA) / rx, v = (-dx * sinA + dy * cosA) / ry
            let k = (u * u + v * v).squareRoot()
            if k < 1e-9 { return -min(rx, ry) }
            // |grad k| in the ellipse's own frame; distance ~ (k - 1) / |grad k|.
            let gu = u / (rx * k), gv = v / (ry * k)
            return (k - 1) / max((gu * gu + gv * gv).squareRoot(), 1e-9)
        case .stroke(let points, let halfWidth):
            var best = Double.infinity
            if points.count == 1 { return (p - points[0]).length - halfWidth }
            for i in 0..<(points.count - 1) { best = min(best, segmentDistance(p, points[i], points[i + 1])) }
            return best - halfWidth
        case .polygon(let points):
            var best = Double.infinity
            var inside = false
            var j = points.count - 1
            for i in 0..<points.count {
                let a = points[i], b = points[j]
                best = min(best, segmentDistance(p, a, b))
                if (a.y > p.y) != (b.y > p.y), p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x { inside.toggle() }
                j = i
            }
            return inside ? -best : best
        case .outline(let shape, let halfWidth):
            return abs(shape.distance(p)) - halfWidth
        case .intersection(let a, let b):
            return max(a.distance(p), b.distance(p))
        }
    }

    /// A box (min, max) that contains the shape.
    var bounds: (Point2, Point2) {
        switch self {
        case .ellipse(let c, let rx, let ry, _):
            let r = max(rx, ry)
            return (Point2(c.x - r, c.y - r), Point2(c.x + r, c.y + r))
        case .stroke(let points, let halfWidth):
            let (lo, hi) = Shape.box(points)
            return (Point2(lo.x - halfWidth, lo.y - halfWidth), Point2(hi.x + halfWidth, hi.y + halfWidth))
        case .polygon(let points):
            return Shape.box(points)
        case .outline(let shape, let halfWidth):
            let (lo, hi) = shape.bounds
            return (Point2(lo.x - halfWidth, lo.y - halfWidth), Point2(hi.x + halfWidth, hi.y + halfWidth))
        case .intersection(let a, let b):
            let (alo, ahi) = a.bounds, (blo, bhi) = b.bounds
            return (Point2(max(alo.x, blo.x), max(alo.y, blo.y)), Point2(min(ahi.x, bhi.x), min(ahi.y, bhi.y)))
        }
    }

    private static func box(_ points: [Point2]) -> (Point2, Point2) {
        var lo = Point2(.infinity, .infinity), hi = Point2(-.infinity, -.infinity)
        for p in points {
            lo = Point2(min(lo.x, p.x), min(lo.y, p.y))
            hi = Point2(max(hi.x, p.x), max(hi.y, p.y))
        }
        return (lo, hi)
    }

    /// A quadratic Bézier curve from `a` to `b` pulled towards `control`, flattened into a stroke.
    static func curve(_ a: Point2, _ control: Point2, _ b: Point2, halfWidth: Double, segments: Int = 12) -> Shape {
        .stroke(points: bezierPoints(a, control, b, segments: segments), halfWidth: halfWidth)
    }

    static func bezierPoints(_ a: Point2, _ control: Point2, _ b: Point2, segments: Int = 12) -> [Point2] {
        (0...segments).map { i in
            let t = Double(i) / Double(segments), s = 1 - t
            return a * (s * s) + control * (2 * s * t) + b * (t * t)
        }
    }

    /// An axis-aligned rectangle rotated by `angle` about its centre.
    static func rectangle(center: Point2, width: Double, height: Double, angle: Double = 0) -> Shape {
        let c = cos(angle), s = sin(angle)
        let corners = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)].map { (u, v) -> Point2 in
            let x = u * width / 2, y = v * height / 2
            return Point2(center.x + x * c - y * s, center.y + x * s + y * c)
        }
        return .polygon(corners)
    }
}

private func segmentDistance(_ p: Point2, _ a: Point2, _ b: Point2) -> Double {
    let ab = b - a, ap = p - a
    let lengthSquared = ab.x * ab.x + ab.y * ab.y
    let t = lengthSquared > 0 ? max(0, min(1, (ap.x * ab.x + ap.y * ab.y) / lengthSquared)) : 0
    return (ap - ab * t).length
}

/// Maps a shape's own space to canvas pixels: p' = M p + t. Faces are drawn in a face frame
/// and posed through this (rotation, scale, shift, yaw squeeze), so features move together.
public struct Affine: Sendable {
    public var a, b, c, d, tx, ty: Double

    public static let identity = Affine(a: 1, b: 0, c: 0, d: 1, tx: 0, ty: 0)

    public init(a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.tx = tx; self.ty = ty
    }

    /// Scale x by `squeeze` (yaw), then scale by `scale`, rotate by `angle`, move the origin to `center`.
    public init(center: Point2, scale: Double, angle: Double, squeeze: Double = 1) {
        let cosA = cos(angle), sinA = sin(angle)
        self.init(a: scale * cosA * squeeze, b: -scale * sinA, c: scale * sinA * squeeze, d: scale * cosA,
                  tx: center.x, ty: center.y)
    }

    func apply(_ p: Point2) -> Point2 { Point2(a * p.x + b * p.y + tx, c * p.x + d * p.y + ty) }

    var inverse: Affine {
        let det = a * d - b * c
        let ia = d / det, ib = -b / det, ic = -c / det, id = a / det
        return Affine(a: ia, b: ib, c: ic, d: id, tx: -(ia * tx + ib * ty), ty: -(ic * tx + id * ty))
    }

    /// The mean length of a pixel in shape units (sets the anti-aliasing ramp).
    var pixelSize: Double { 1 / abs(a * d - b * c).squareRoot() }
}

/// A float RGB canvas, row-major interleaved, values in [0, 1].
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    var pixels: [Double]

    public init(width: Int, height: Int, fill: Colour) {
        self.width = width
        self.height = height
        pixels = [Double](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            pixels[3 * i] = fill.r
            pixels[3 * i + 1] = fill.g
            pixels[3 * i + 2] = fill.b
        }
    }

    /// Paints `shape` (in the space `transform` maps to pixels) with `colour` at `opacity`,
    /// anti-aliased over one pixel.
    public mutating func fill(_ shape: Shape, _ colour: Colour, opacity: Double = 1, transform: Affine = .identity) {
        let (lo, hi) = shape.bounds
        guard lo.x <= hi.x, lo.y <= hi.y else { return }
        // The pixel box covering the transformed bounds (+1 px for the anti-aliasing ramp).
        let corners = [Point2(lo.x, lo.y), Point2(hi.x, lo.y), Point2(lo.x, hi.y), Point2(hi.x, hi.y)].map(transform.apply)
        let x0 = max(0, Int(floor(corners.map(\.x).min()! - 1))), x1 = min(width - 1, Int(ceil(corners.map(\.x).max()! + 1)))
        let y0 = max(0, Int(floor(corners.map(\.y).min()! - 1))), y1 = min(height - 1, Int(ceil(corners.map(\.y).max()! + 1)))
        guard x0 <= x1, y0 <= y1 else { return }
        let inverse = transform.inverse
        let pixel = transform.pixelSize
        for y in y0...y1 {
            for x in x0...x1 {
                let q = inverse.apply(Point2(Double(x) + 0.5, Double(y) + 0.5))
                let coverage = min(max(0.5 - shape.distance(q) / pixel, 0), 1) * opacity
                if coverage <= 0 { continue }
                let i = 3 * (y * width + x)
                pixels[i] += (colour.r - pixels[i]) * coverage
                pixels[i + 1] += (colour.g - pixels[i + 1]) * coverage
                pixels[i + 2] += (colour.b - pixels[i + 2]) * coverage
            }
        }
    }

    /// Multiplies every pixel by a linear ramp from `low` to `high` along `direction` (lighting),
    /// tinted by `tint`.
    public mutating func applyLighting(direction angle: Double, low: Double, high: Double, tint: Colour) {
        let dx = cos(angle), dy = sin(angle)
        let half = Double(max(width, height)) / 2
        for y in 0..<height {
            for x in 0..<width {
                let t = ((Double(x) - Double(width) / 2) * dx + (Double(y) - Double(height) / 2) * dy) / (2 * half) + 0.5
                let gain = low + (high - low) * min(max(t, 0), 1)
                let i = 3 * (y * width + x)
                pixels[i] *= gain * tint.r
                pixels[i + 1] *= gain * tint.g
                pixels[i + 2] *= gain * tint.b
            }
        }
    }

    /// A 3x3 box blur applied `passes` times (soft focus).
    public mutating func blur(passes: Int) {
        for _ in 0..<passes {
            let source = pixels
            for y in 0..<height {
                for x in 0..<width {
                    for c in 0..<3 {
                        var sum = 0.0, n = 0.0
                        for yy in max(0, y - 1)...min(height - 1, y + 1) {
                            for xx in max(0, x - 1)...min(width - 1, x + 1) {
                                sum += source[3 * (yy * width + xx) + c]
                                n += 1
                            }
                        }
                        pixels[3 * (y * width + x) + c] = sum / n
                    }
                }
            }
        }
    }

    /// Adds Gaussian noise of standard deviation `sigma` (in [0, 1] units) to every value.
    public mutating func addNoise(sigma: Double, using rng: inout Xoshiro256) {
        guard sigma > 0 else { return }
        for i in 0..<pixels.count { pixels[i] += sigma * rng.normal() }
    }

    /// The canvas rounded and clamped to 8 bits.
    public func image() -> RGBImage {
        RGBImage(width: width, height: height, pixels: pixels.map { UInt8(min(max(($0 * 255).rounded(), 0), 255)) })
    }
}
