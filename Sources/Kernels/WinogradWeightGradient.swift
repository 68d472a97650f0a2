// dW of a stride-1 3x3 convolution by Winograd F(3x3,2x2) or F(3x3,4x4) (`_CKernels/winograd_dw.h`):
// the input and dY of a chunk of images are transformed into 16 (36) points. F(3x3,2x2): one
// GEMM per point sums over the chunk's tiles, the next chunk's GEMMs add to the sums, and the
// output transform gives dW. F(3x3,4x4): per block of filters x channels (one register tile),
// the 36 point sums and the output transform at once, so the sums stay in cache. 16 (36)
// multiply-adds per 2x2 (4x4) tile and (filter, channel) instead of 36 (144).

import _CKernels

public enum WinogradWeightGradient {
    /// Bytes of transformed input and dY per chunk of images (fixed, so the chunks and with them
    /// the sums' order do not depend on the thread count).
    public static let chunkBytes = 32 << 20

    /// Whether dW of `s` goes this way on `path` (training's Winograd path; nil: the direct
    /// path): one group, 2-D 3x3 stride 1, no dilation, pads 0 ... 2, at least `minimumChannels`
    /// channels and filters (the path's `smallPlanes` from their own).
    public static func applies(_ s: ConvolutionShape, _ path: WinogradPath?) -> Bool {
        let g = s.geometry
        guard let path, s.group == 1, g.kD == 1, g.kH == 3, g.kW == 3, g.sH == 1, g.sW == 1, g.dH == 1, g.dW == 1,
              [g.pH, g.pW, g.pHEnd, g.pWEnd].allSatisfy({ (0...2).contains($0) }),
              g.outH == g.inH + g.pH + g.pHEnd - 2, g.outW == g.inW + g.pW + g.pWEnd - 2 else { return false }
        var least = minimumChannels
        if let small = path.smallPlanes, g.outH <= small.side, g.outW <= small.side { least = min(least, small.channels) }
        return s.channels >= least && s.filters >= least
    }

    /// The dY tile of `s` on `path`: 4x4 (F(3x3,4x4)) where the path's dX policy
    /// (`WinogradPath.inputGradient`, else the path) takes F(4x4,3x3) for planes of this size
    /// (`WinogradPath.f4x4MaximumSide`: training's 7x7 planes, 4 tiles per image, 144 products
    /// per (filter, channel) against 2x2 tiles' 256) and `KernelOptions.weightGradientF4x4` is
    /// on, else 2x2. By plane size alone, not by the batch, so every batch size takes the same
    /// arithmetic.
    public static func tile(_ s: ConvolutionShape, _ path: WinogradPath?, options: KernelOptions = .default) -> WinogradTile {
        guard options.weightGradientF4x4, let path = path?.inputGradient ?? path, path.tiles.contains(.f4x4),
              let side = path.f4x4MaximumSide,
              s.geometry.outH <= side, s.geometry.outW <= side else { return .f2x2 }
        return .f4x4
    }

    /// Fewer channels or filters than this take the direct path, except on the path's small
    /// planes (`WinogradPath.smallPlanes`): on the 64-channel 56x56 layers at batch
    /// 16 the transforms are memory-bound and the training step took more CPU with them than
    /// with the in-place dW; the 64-channel 14x14 layers gain.
    public static let minimumChannels = 128

    /// dW [M, C, 3, 3] = sum over images of dY (x) x, fully written, with dY in 2x2 or 4x4
    /// tiles (`tile`). Each point's GEMM (F(3x3,2x2)) or each block of dW (F(3x3,4x4)) runs on
    /// one thread, so the result is the same bits for every thread count. Returns false, with dW
    /// all zeros, when scratch could not be allocated. `chunkBytes`: transformed input and dY per
    /// chunk of images (tests pass less to have several chunks).
    @discardableResult
    public static func run(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ s: ConvolutionShape,
                           dW: UnsafeMutablePointer<Float>, tile: WinogradTile = .f2x2, threads: Int,
                           options: KernelOptions = .default, chunkBytes: Int = chunkBytes) -> Bool {
        if tile == .f4x4 { return runF4x4(x, dy, s, dW: dW, threads: threads, options: options, chunkBytes: chunkBytes) }
        let g = s.geometry
        let (C, M) = (s.channels, s.filters)
        let points = 16
        let perImage = ((g.outH + 1) / 2) * ((g.outW + 1) / 2)
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
            let (inH, inW, outH, outW) = (Int32(g.inH), Int32(g.inW), Int32(g.outH), Int32(g.outW))
            let ok = transformChunk(images: images, channels: C, filters: M, threads: threads) { ci, mi in
                manet_wdw_input(xc, C, ci.lowerBound, ci.upperBound, inH, inW, outH, outW, Int32(g.pH), Int32(g.pW), tiles, v) == 0
                    && manet_wdw_gradient(dyc, M, mi.lowerBound, mi.upperBound, outH, outW, tiles, u) == 0
            }
            if !ok { failed = true; break }
            let first = start == 0
            parallelFor(points, threads: threads) { p in
                GEMM.sgemm(transB: true, m: M, n: C, k: tiles, a: u + p * M * tiles, lda: tiles,
                           b: v + p * C * tiles, ldb: tiles, beta: first ? 0 : 1, c: sums + p * M * C, ldc: C,
                           threads: 1, options: options)
            }
            start += images
        }
        if failed {
            dW.initialize(repeating: 0, count: M * C * 9)
            return false
        }
        parallelFor(M, threads: threads) { m in manet_wdw_output(sums, M, C, m, m + 1, dW) }
        return true
    }

    /// Runs `transform(planes of x, planes of dY)` for a chunk of `images` over the threads: whole
    /// planes per task, in fixed ranges of the chunk's images x `C` input planes and images x `M`
    /// dY planes (disjoint writes, so any split gives the same bits). False when a task's
    /// transform failed.
    static func transformChunk(images: Int, channels C: Int, filters M: Int, threads: Int,
                               _ transform: (Range<Int>, Range<Int>) -> Bool) -> Bool {
        let workers = max(1, min(threads, images * max(C, M)))
        var bad = [Bool](repeating: false, count: workers)
        bad.withUnsafeMutableBufferPointer { bad in
            parallelFor(workers, threads: workers) { w in
                if !transform(staticChunk(w, of: images * C, workers: workers), staticChunk(w, of: images * M, workers: workers)) {
                    bad[w] = true
                }
            }
        }
        return !bad.contains(true)
    }

    /// F(3x3,4x4) (`manet_wdw4_blocks`): per chunk of images, x and dY transformed straight into
    /// the register tile's panels of the `options.isa` variant (their last group of channels or
    /// filters zeroed first), then dW's blocks of that tile's size spread over the threads in
    /// fixed ranges, the first chunk writing dW and the others adding to it. The chunks' size
    /// does not depend on the variant or the thread count, so neither does the result.
    static func runF4x4(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ s: ConvolutionShape,
                        dW: UnsafeMutablePointer<Float>, threads: Int, options: KernelOptions, chunkBytes: Int) -> Bool {
        let g = s.geometry
        let (C, M) = (s.channels, s.filters)
        let isa = options.isa.code
        let mr = Int(manet_sgemm_tile_rows(isa)), nr = Int(manet_sgemm_tile_columns(isa))
        let mBlocks = (M + mr - 1) / mr, cBlocks = (C + nr - 1) / nr
        let perImage = ((g.outH + 3) / 4) * ((g.outW + 3) / 4)
        // Sized by the widest tile's padding (32), whatever the variant.
        let chunk = max(1, min(s.batch, chunkBytes / max(1, 36 * (C + M + 64) * perImage * 4)))
        let most = chunk * perImage
        let vFloats = manet_wdw4_panel_floats(C, nr, most), uFloats = manet_wdw4_panel_floats(M, mr, most)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: (vFloats + uFloats) * 4, alignment: 64)
        defer { buffer.deallocate() }
        let v = buffer.bindMemory(to: Float.self, capacity: vFloats + uFloats)
        let u = v + vFloats
        var start = 0
        while start < s.batch {
            let images = min(chunk, s.batch - start), tiles = images * perImage
            let xc = x + start * C * g.inputPlane, dyc = dy + start * M * g.outputPlane
            // The last group of channels (filters) when it is partial: the transforms write the
            // planes that exist, the rest must read as zeros.
            let vGroup = 36 * manet_wdw4_point_floats(nr, tiles), uGroup = 36 * manet_wdw4_point_floats(mr, tiles)
            if C % nr != 0 { (v + (cBlocks - 1) * vGroup).initialize(repeating: 0, count: vGroup) }
            if M % mr != 0 { (u + (mBlocks - 1) * uGroup).initialize(repeating: 0, count: uGroup) }
            let (inH, inW, outH, outW) = (Int32(g.inH), Int32(g.inW), Int32(g.outH), Int32(g.outW))
            let ok = transformChunk(images: images, channels: C, filters: M, threads: threads) { ci, mi in
                manet_wdw4_input(xc, C, ci.lowerBound, ci.upperBound, inH, inW, outH, outW, Int32(g.pH), Int32(g.pW), tiles, nr, v) == 0
                    && manet_wdw4_gradient(dyc, M, mi.lowerBound, mi.upperBound, outH, outW, tiles, mr, u) == 0
            }
            if !ok {
                dW.initialize(repeating: 0, count: M * C * 9)
                return false
            }
            let blocks = mBlocks * cBlocks, blockWorkers = max(1, min(threads, blocks))
            var failed = [Bool](repeating: false, count: blockWorkers)
            let accumulate: Int32 = start == 0 ? 0 : 1
            failed.withUnsafeMutableBufferPointer { failed in
                parallelFor(blockWorkers, threads: blockWorkers) { w in
                    let r = staticChunk(w, of: blocks, workers: blockWorkers)
                    if manet_wdw4_blocks(isa, u, v, M, C, tiles, r.lowerBound, r.upperBound, accumulate, dW) != 0 {
                        failed[w] = true
                    }
                }
            }
            if failed.contains(true) {
                dW.initialize(repeating: 0, count: M * C * 9)
                return false
            }
            start += images
        }
        return true
    }
}
