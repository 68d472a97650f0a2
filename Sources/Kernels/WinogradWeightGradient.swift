// dW of a stride-1 3x3 convolution by Winograd F(3x3,2x2) or F(3x3,4x4) (`_CKernels/winograd_dw.h`):
// the input and dY of a chunk of images are transformed into 16 (36) points, one GEMM per point
// sums over the chunk's tiles, the next chunk's GEMMs add to the sums, and the output transform
// gives dW. 16 (36) multiply-adds per 2x2 (4x4) tile and (filter, channel) instead of 36 (144).

import _CKernels

public enum WinogradWeightGradient {
    /// Bytes of transformed input and dY per chunk of images (fixed, so the chunks and with them
    /// the sums' order do not depend on the thread count).
    static let chunkBytes = 32 << 20

    /// Whether dW of `s` goes this way on `path` (training's Winograd path; nil: the direct
    /// path): one group, 2-D 3x3 stride 1, no dilation, pads 0 ... 2, at least `minimumChannels`
    /// channels and filters.
    public static func applies(_ s: ConvolutionShape, _ path: WinogradPath?) -> Bool {
        let g = s.geometry
        guard path != nil, s.group == 1, g.kD == 1, g.kH == 3, g.kW == 3, g.sH == 1, g.sW == 1, g.dH == 1, g.dW == 1,
              [g.pH, g.pW, g.pHEnd, g.pWEnd].allSatisfy({ (0...2).contains($0) }),
              g.outH == g.inH + g.pH + g.pHEnd - 2, g.outW == g.inW + g.pW + g.pWEnd - 2 else { return false }
        return s.channels >= minimumChannels && s.filters >= minimumChannels
    }

    /// The dY tile of `s` on `path`: 4x4 (F(3x3,4x4)) where the path asks for it
    /// (`WinogradPath.weightGradientF4x4`) and takes F(4x4,3x3) for planes of this size
    /// (`WinogradPath.f4x4MaximumSide`: 7x7 planes, 4 tiles per image, 144 products per (filter,
    /// channel) against 2x2 tiles' 256), else 2x2. By plane size alone, not by the batch, so
    /// every batch size takes the same arithmetic.
    public static func tile(_ s: ConvolutionShape, _ path: WinogradPath?) -> WinogradTile {
        guard let path, path.weightGradientF4x4, path.tiles.contains(.f4x4), let side = path.f4x4MaximumSide,
              s.geometry.outH <= side, s.geometry.outW <= side else { return .f2x2 }
        return .f4x4
    }

    /// Fewer channels or filters than this take the direct path: on the 64-channel layers (56x56
    /// planes at batch 16) the transforms are memory-bound and the training step took more CPU
    /// with them than without (as for training's forward and dX, `WinogradPath.training`).
    public static let minimumChannels = 128

    /// dW [M, C, 3, 3] = sum over images of dY (x) x, fully written, with dY in 2x2 or 4x4
    /// tiles (`tile`). Each point's GEMM runs on one thread (the points spread over the threads),
    /// so the result is the same bits for every thread count. Returns false (nothing written)
    /// when scratch could not be allocated.
    @discardableResult
    public static func run(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ s: ConvolutionShape,
                           dW: UnsafeMutablePointer<Float>, tile: WinogradTile = .f2x2, threads: Int,
                           options: KernelOptions = .default) -> Bool {
        let g = s.geometry
        let (C, M) = (s.channels, s.filters)
        let r = tile == .f2x2 ? 2 : 4, points = tile.alpha * tile.alpha
        let perImage = ((g.outH + r - 1) / r) * ((g.outW + r - 1) / r)
        let chunk = max(1, min(s.batch, chunkBytes / max(1, points * (C + M) * perImage * 4)))
        let most = min(chunk, s.batch) * perImage
        let v = UnsafeMutablePointer<Float>.allocate(capacity: points * C * most)
        let u = UnsafeMutablePointer<Float>.allocate(capacity: points * M * most)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: points * M * C)
        defer { v.deallocate(); u.deallocate(); sums.deallocate() }
        var start = 0
        var failed = false
        while start < s.batch {
            let images = min(chunk, s.batch - start), tiles = images * perImage
            let xc = x + start * C * g.inputPlane, dyc = dy + start * M * g.outputPlane
            // Whole planes per task, in fixed ranges: disjoint writes, so any split gives the same bits.
            let workers = max(1, min(threads, images * max(C, M)))
            var bad = [Bool](repeating: false, count: workers)
            bad.withUnsafeMutableBufferPointer { bad in
                parallelFor(workers, threads: workers) { w in
                    let ci = staticChunk(w, of: images * C, workers: workers)
                    let mi = staticChunk(w, of: images * M, workers: workers)
                    let (inH, inW, outH, outW) = (Int32(g.inH), Int32(g.inW), Int32(g.outH), Int32(g.outW))
                    let ok = tile == .f2x2
                        ? manet_wdw_input(xc, C, ci.lowerBound, ci.upperBound, inH, inW, outH, outW, Int32(g.pH),
                                          Int32(g.pW), tiles, v) == 0
                            && manet_wdw_gradient(dyc, M, mi.lowerBound, mi.upperBound, outH, outW, tiles, u) == 0
                        : manet_wdw4_input(xc, C, ci.lowerBound, ci.upperBound, inH, inW, outH, outW, Int32(g.pH),
                                           Int32(g.pW), tiles, v) == 0
                            && manet_wdw4_gradient(dyc, M, mi.lowerBound, mi.upperBound, outH, outW, tiles, u) == 0
                    if !ok { bad[w] = true }
                }
            }
            if bad.contains(true) { failed = true; break }
            let first = start == 0
            parallelFor(points, threads: threads) { p in
                GEMM.sgemm(transB: true, m: M, n: C, k: tiles, a: u + p * M * tiles, lda: tiles,
                           b: v + p * C * tiles, ldb: tiles, beta: first ? 0 : 1, c: sums + p * M * C, ldc: C,
                           threads: 1, options: options)
            }
            start += images
        }
        if failed { return false }
        parallelFor(M, threads: threads) { m in
            if tile == .f2x2 { manet_wdw_output(sums, M, C, m, m + 1, dW) } else { manet_wdw4_output(sums, M, C, m, m + 1, dW) }
        }
        return true
    }
}
