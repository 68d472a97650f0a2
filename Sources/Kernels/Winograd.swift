// Winograd convolution F(m x m, 3 x 3) for stride-1, dilation-1, ungrouped 3x3 2-D convolutions
// at inference: input/filter/output transforms around one batched GEMM per transform point.

/// One Winograd variant: output tile m x m from an input tile alpha x alpha (alpha = m + 2),
/// with its 1-D transforms (B^T d, G g, A^T s); the 2-D transform applies each to rows, then
/// to columns. Points: F(2,3) 0, +-1; F(4,3) 0, +-1, +-2 (the usual choice, Lavin & Gray 2016).
public protocol WinogradTransform {
    static var m: Int { get }
    static var alpha: Int { get }
    /// v = B^T d over alpha inputs `s` (stride ss) into alpha outputs `d` (stride ds).
    static func input(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int)
    /// o = A^T v over alpha inputs into m outputs.
    static func output(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int)
    /// u = G g over 3 taps into alpha outputs, in double precision.
    static func filter(_ g: (Double, Double, Double)) -> [Double]
}

/// F(2x2, 3x3): 16 transform points, 2.25x fewer multiplies than direct.
public enum WinogradF2: WinogradTransform {
    public static let m = 2, alpha = 4
    @inline(__always)
    public static func input(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int) {
        let d0 = s[0], d1 = s[ss], d2 = s[2 * ss], d3 = s[3 * ss]
        d[0] = d0 - d2
        d[ds] = d1 + d2
        d[2 * ds] = d2 - d1
        d[3 * ds] = d1 - d3
    }
    @inline(__always)
    public static func output(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int) {
        let s1 = s[ss], s2 = s[2 * ss]
        d[0] = s[0] + s1 + s2
        d[ds] = s1 - s2 - s[3 * ss]
    }
    public static func filter(_ g: (Double, Double, Double)) -> [Double] {
        [g.0, (g.0 + g.1 + g.2) / 2, (g.0 - g.1 + g.2) / 2, g.2]
    }
}

/// F(4x4, 3x3): 36 transform points, 4x fewer multiplies than direct.
public enum WinogradF4: WinogradTransform {
    public static let m = 4, alpha = 6
    @inline(__always)
    public static func input(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int) {
        let d0 = s[0], d1 = s[ss], d2 = s[2 * ss], d3 = s[3 * ss], d4 = s[4 * ss], d5 = s[5 * ss]
        let a = d4 - 4 * d2, b = d3 - 4 * d1      // rows 1, 2: (d4 - 4 d2) -+ (4 d1 - d3)
        let c = d4 - d2, e = 2 * (d3 - d1)         // rows 3, 4: (d4 - d2) +- 2 (d3 - d1)
        d[0] = 4 * d0 - 5 * d2 + d4
        d[ds] = a + b
        d[2 * ds] = a - b
        d[3 * ds] = c + e
        d[4 * ds] = c - e
        d[5 * ds] = 4 * d1 - 5 * d3 + d5
    }
    @inline(__always)
    public static func output(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int) {
        let s1 = s[ss], s2 = s[2 * ss], s3 = s[3 * ss], s4 = s[4 * ss]
        let p12 = s1 + s2, m12 = s1 - s2, p34 = s3 + s4, m34 = s3 - s4
        d[0] = s[0] + p12 + p34
        d[ds] = m12 + 2 * m34
        d[2 * ds] = p12 + 4 * p34
        d[3 * ds] = m12 + 8 * m34 + s[5 * ss]
    }
    public static func filter(_ g: (Double, Double, Double)) -> [Double] {
        [g.0 / 4,
         -(g.0 + g.1 + g.2) / 6,
         -(g.0 - g.1 + g.2) / 6,
         g.0 / 24 + g.1 / 12 + g.2 / 6,
         g.0 / 24 - g.1 / 12 + g.2 / 6,
         g.2]
    }
}

/// Which Winograd tile a convolution uses.
public enum WinogradTile: Sendable {
    case f2x2, f4x4
    var alpha: Int { self == .f2x2 ? 4 : 6 }
}

/// Filters transformed once (U = G g G^T per filter and channel), laid out [alpha^2, M, C] so
/// that each transform point is one row-major M x C GEMM operand.
public struct WinogradFilter: @unchecked Sendable {
    public let tile: WinogradTile
    public let filters: Int, channels: Int
    let u: [Float]

    /// w: [M, C, 3, 3].
    public init(_ w: UnsafePointer<Float>, filters: Int, channels: Int, tile: WinogradTile) {
        self.tile = tile
        self.filters = filters
        self.channels = channels
        switch tile {
        case .f2x2: u = WinogradFilter.transform(w, filters, channels, WinogradF2.self)
        case .f4x4: u = WinogradFilter.transform(w, filters, channels, WinogradF4.self)
        }
    }

    static func transform<T: WinogradTransform>(_ w: UnsafePointer<Float>, _ filters: Int, _ channels: Int,
                                                _: T.Type) -> [Float] {
        let a = T.alpha, points = a * a, mc = filters * channels
        var u = [Float](repeating: 0, count: points * mc)
        u.withUnsafeMutableBufferPointer { ub in
            for k in 0..<mc {
                let g = w + k * 9
                // Columns of G g (3 rows of taps -> alpha rows), then G applied along each row.
                let cols = (0..<3).map { j in T.filter((Double(g[j]), Double(g[3 + j]), Double(g[6 + j]))) }
                for r in 0..<a {
                    let row = T.filter((cols[0][r], cols[1][r], cols[2][r]))
                    for q in 0..<a { ub[(r * a + q) * mc + k] = Float(row[q]) }
                }
            }
        }
        return u
    }
}

public enum Winograd {
    /// Whether the Winograd path computes this convolution: 2-D, 3x3, stride 1, dilation 1,
    /// one group (any padding).
    public static func applies(_ s: ConvolutionShape) -> Bool {
        let g = s.geometry
        return s.group == 1 && g.kD == 1 && g.outD == 1 && g.inD == 1 && g.kH == 3 && g.kW == 3
            && g.sH == 1 && g.sW == 1 && g.dH == 1 && g.dW == 1 && g.pD == 0
    }

    /// Upper bound on the scratch floats (transformed inputs + GEMM results), ~64 MiB.
    static let scratchLimit = 16 << 20

    /// y = relu?(conv3x3(x, w) + bias) for a shape where `applies` holds, with `filter` the
    /// transformed weights. x: [N, C, H, W]; y: [N, M, outH, outW], fully written.
    /// Deterministic for any thread count: every output element is computed by one fixed
    /// sequence of operations (GEMMs never split their summed dimension).
    public static func run(_ x: UnsafePointer<Float>, _ filter: WinogradFilter, bias: UnsafePointer<Float>?,
                           _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool, threads: Int) {
        precondition(filter.filters == s.filters && filter.channels == s.channels && applies(s))
        switch filter.tile {
        case .f2x2: run(x, filter, bias: bias, y, s, relu: relu, threads: threads, WinogradF2.self)
        case .f4x4: run(x, filter, bias: bias, y, s, relu: relu, threads: threads, WinogradF4.self)
        }
    }

    static func run<T: WinogradTransform>(_ x: UnsafePointer<Float>, _ filter: WinogradFilter, bias: UnsafePointer<Float>?,
                                          _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool,
                                          threads: Int, _: T.Type) {
        let g = s.geometry
        let C = s.channels, M = s.filters, points = T.alpha * T.alpha
        if s.batch == 0 || M == 0 || g.outputPlane == 0 { return }
        let tilesH = (g.outH + T.m - 1) / T.m, tilesW = (g.outW + T.m - 1) / T.m
        let perImage = tilesH * tilesW
        let chunk = max(1, min(s.batch, scratchLimit / max(1, points * (C + M) * perImage)))
        let maxTiles = chunk * perImage
        let v = UnsafeMutablePointer<Float>.allocate(capacity: points * C * maxTiles)
        let r = UnsafeMutablePointer<Float>.allocate(capacity: points * M * maxTiles)
        defer { v.deallocate(); r.deallocate() }
        var start = 0
        while start < s.batch {
            let images = min(chunk, s.batch - start)
            let tiles = images * perImage
            parallelFor(images * C, threads: threads) { t in
                let i = t / C, c = t % C
                transformInput(x + ((start + i) * C + c) * g.inputPlane, g, tilesH, tilesW,
                               v + c * tiles + i * perImage, pointStride: C * tiles, T.self)
            }
            filter.u.withUnsafeBufferPointer { ub in
                let u = ub.baseAddress!
                if threads > 1 {
                    // Transform points over threads, one single-threaded GEMM each: no fork/join
                    // inside the 16 or 36 GEMMs (measured faster than threaded GEMMs one by one).
                    GEMM.setThreads(1)
                    parallelFor(points, threads: threads) { p in
                        GEMM.sgemm(m: M, n: tiles, k: C, a: u + p * M * C, lda: C, b: v + p * C * tiles, ldb: tiles,
                                   c: r + p * M * tiles, ldc: tiles, threads: 1)
                    }
                } else {
                    for p in 0..<points {
                        GEMM.sgemm(m: M, n: tiles, k: C, a: u + p * M * C, lda: C, b: v + p * C * tiles, ldb: tiles,
                                   c: r + p * M * tiles, ldc: tiles, threads: threads)
                    }
                }
            }
            parallelFor(images * M, threads: threads) { t in
                let i = t / M, m = t % M
                transformOutput(r + m * tiles + i * perImage, pointStride: M * tiles, g, tilesH, tilesW,
                                y + ((start + i) * M + m) * g.outputPlane, bias: bias?[m] ?? 0, relu: relu, T.self)
            }
            start += images
        }
    }

    /// One channel of one image: every tile's alpha x alpha window (zero outside the input),
    /// transformed, written to v[point * pointStride + tile].
    static func transformInput<T: WinogradTransform>(_ x: UnsafePointer<Float>, _ g: WindowGeometry, _ tilesH: Int,
                                                     _ tilesW: Int, _ v: UnsafeMutablePointer<Float>,
                                                     pointStride: Int, _: T.Type) {
        let a = T.alpha
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * a * a) { buf in
            let d = buf.baseAddress!, tmp = d + a * a, out = tmp + a * a
            for th in 0..<tilesH {
                let top = th * T.m - g.pH
                for tw in 0..<tilesW {
                    let left = tw * T.m - g.pW
                    if top >= 0 && left >= 0 && top + a <= g.inH && left + a <= g.inW {
                        let src = x + top * g.inW + left
                        for q in 0..<a { T.input(src + q, g.inW, tmp + q, a) }   // along H, column by column
                    } else {
                        for row in 0..<a {
                            let ih = top + row
                            for q in 0..<a {
                                let iw = left + q
                                d[row * a + q] = ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW ? x[ih * g.inW + iw] : 0
                            }
                        }
                        for q in 0..<a { T.input(d + q, a, tmp + q, a) }
                    }
                    // tmp = B^T d (rows are points along H); now along W: out[r][q'] = (tmp[r] B)[q'].
                    for row in 0..<a { T.input(tmp + row * a, 1, out + row * a, 1) }
                    let t = th * tilesW + tw
                    for p in 0..<(a * a) { v[p * pointStride + t] = out[p] }
                }
            }
        }
    }

    /// One filter of one image: every tile's alpha x alpha GEMM results, transformed back to
    /// m x m outputs (clipped at the plane's edge), plus bias, ReLU if asked.
    static func transformOutput<T: WinogradTransform>(_ r: UnsafePointer<Float>, pointStride: Int, _ g: WindowGeometry,
                                                      _ tilesH: Int, _ tilesW: Int, _ y: UnsafeMutablePointer<Float>,
                                                      bias: Float, relu: Bool, _: T.Type) {
        let a = T.alpha, m = T.m
        withUnsafeTemporaryAllocation(of: Float.self, capacity: a * a + a * m + m * m) { buf in
            let s = buf.baseAddress!, tmp = s + a * a, out = tmp + a * m
            for th in 0..<tilesH {
                for tw in 0..<tilesW {
                    let t = th * tilesW + tw
                    for p in 0..<(a * a) { s[p] = r[p * pointStride + t] }
                    // Along H: tmp[i][q] = (A^T s)[i][q]; then along W: out[i][j] = (tmp A)[i][j].
                    for q in 0..<a { T.output(s + q, a, tmp + q, a) }
                    for i in 0..<m { T.output(tmp + i * a, 1, out + i * m, 1) }
                    let rows = min(m, g.outH - th * m), cols = min(m, g.outW - tw * m)
                    for i in 0..<rows {
                        let dst = y + (th * m + i) * g.outW + tw * m
                        for j in 0..<cols {
                            let value = out[i * m + j] + bias
                            dst[j] = relu ? max(value, 0) : value
                        }
                    }
                }
            }
        }
    }
}
