// Winograd convolution F(m x m, 3 x 3) for stride-1, dilation-1, ungrouped 3x3 2-D convolutions
// (inference, and training's forward and dX): filter/input/output transforms around one GEMM per
// transform point. The transforms are C (`_CKernels`), vectorised over blocks of 8 channels.

import _CKernels
import Foundation

/// One Winograd variant: output tile m x m from an input tile alpha x alpha (alpha = m + 2).
/// The transforms themselves (filter G g G^T, input B^T d B, output A^T s A) are in
/// `_CKernels/winograd_transforms.c`. Points: F(2,3) 0, +-1; F(4,3) 0, +-1, +-2 (the usual
/// choice, Lavin & Gray 2016).
public protocol WinogradTransform {
    static var m: Int { get }
    static var alpha: Int { get }
}

/// F(2x2, 3x3): 16 transform points, 2.25x fewer multiplies than direct.
public enum WinogradF2: WinogradTransform {
    public static let m = 2, alpha = 4
}

/// F(4x4, 3x3): 36 transform points, 4x fewer multiplies than direct.
public enum WinogradF4: WinogradTransform {
    public static let m = 4, alpha = 6
}

/// Which Winograd tile a convolution uses.
public enum WinogradTile: Sendable {
    case f2x2, f4x4
    public var alpha: Int { self == .f2x2 ? 4 : 6 }
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
    /// The packed-filter path's per-point order keeps each chunk of images' transformed inputs
    /// and results (v, r) within `KernelOptions.winogradCacheChunkFloats` (default 1 M floats,
    /// 4 MiB: they stay in the L3 cache between the transforms and the GEMMs; 64->64 56x56 at
    /// batch 16, one thread, 4 MiB was 2.5x faster than 16 MiB). Filters transformed in chunks
    /// (`transformsInChunks`) go `KernelOptions.winogradChunkChannels` channels at a time
    /// (default 64): a chunk's 16 transformed filters for every point (64 KB for F(2x2)) stay in
    /// L2 between the transform and the GEMMs; 64 measured ~8% faster than 32, 128 or all
    /// channels at once, and has register tiles with the columns at fixed offsets (`packed_gemm.c`).
    /// At most this many tiles over the batch for the chunked order (each chunk's GEMMs are
    /// then a few 16 x 6 register tiles per point).
    static let chunkMaximumTiles = 64

    /// Every band reads all the transformed filters: the banded order is taken only where they
    /// fit in a core's L2 cache with a band's data (1 MiB: MA-Net's 64->64 layers, 590 KB for
    /// F(4x4)); with more (128->128, 2.3 MB for F(4x4)) each band would stream them from L3.
    static let bandMaximumFilterFloats = 1 << 18

    /// Whether a call with packed filters (M a multiple of 16) takes the banded order
    /// (`runInBands`): `KernelOptions.winogradBandTiles` set, the transformed filters within
    /// `bandMaximumFilterFloats`, the call not transforming its filters in chunks
    /// (`transformsInChunks`), and at least as many tiles as filters (fewer take the
    /// filter-block order, which reads each block's transformed filters once).
    public static func takesBands(_ s: ConvolutionShape, tile: WinogradTile, options: KernelOptions = .default) -> Bool {
        let m = tile == .f2x2 ? 2 : 4
        let tiles = s.batch * ((s.geometry.outH + m - 1) / m) * ((s.geometry.outW + m - 1) / m)
        let filterFloats = (m + 2) * (m + 2) * s.filters * s.channels
        return applies(s) && usesPackedGEMM(filters: s.filters) && options.winogradBandTiles > 0 && tiles >= s.filters
            && filterFloats <= bandMaximumFilterFloats && !transformsInChunks(s, tile: tile, options: options)
    }

    /// Whether a call with packed filters (and none kept) transforms its filters chunk by chunk,
    /// one block of 16 filters at a time, right before multiplying them (`manet_winograd_gemm_block`):
    /// few tiles (fewer than filters, at most `chunkMaximumTiles`: batch 1's 7x7 and 14x14
    /// planes, and its 28x28 ones with F(4x4)), M a multiple of 16 and C of `chunkChannels`. The filters are read once per call,
    /// as on the direct path, for alpha^2 x tiles multiply-adds per filter and channel instead
    /// of 9 x positions; that pays when the layer is large (C x M >= 256 x 256: 512->512 7x7
    /// 0.74-0.82x the direct path's time, 256->256 0.82-0.84x, 256->512 0.79-0.82x in paired
    /// in-process runs) or the saving is at least 2x (64->64 14x14: 0.81-0.84x); 128->128 7x7
    /// (1.7x fewer multiply-adds) measured 0.95-1.02x, no gain, so it stays direct.
    public static func transformsInChunks(_ s: ConvolutionShape, tile: WinogradTile,
                                          options: KernelOptions = .default) -> Bool {
        let chunkChannels = options.winogradChunkChannels
        let m = tile == .f2x2 ? 2 : 4, alpha = m + 2
        let tiles = s.batch * ((s.geometry.outH + m - 1) / m) * ((s.geometry.outW + m - 1) / m)
        let pays = s.channels * s.filters >= 1 << 16 || 2 * alpha * alpha * tiles <= 9 * s.batch * s.geometry.outputPlane
        return applies(s) && usesPackedGEMM(filters: s.filters) && chunkChannels > 0 && chunkChannels % 8 == 0
            && s.channels % chunkChannels == 0 && tiles < s.filters && tiles <= chunkMaximumTiles && pays
    }

    /// y = relu?(conv3x3(x, w) + bias) for a shape where `applies` holds. x: [N, C, H, W];
    /// w: [M, C, 3, 3]; y: [N, M, outH, outW], fully written. `transformed`, when given, is
    /// `transformFilters(w, ...)` made earlier (then w is not read); without it the filters are
    /// transformed per call into a temporary (16/9 or 36/9 of the weight bytes), or, on the
    /// packed path's block order, one block of 16 filters at a time. Deterministic
    /// for any thread count: every output element is computed by one fixed sequence of
    /// operations (GEMMs never split their summed dimension).
    /// `filtersPacked`: w is in `PackedFilters`' layout instead of [M, C, 3, 3].
    public static func run(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, tile: WinogradTile,
                           transformed: UnsafePointer<Float>? = nil,
                           bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape,
                           relu: Bool, threads: Int, filtersPacked: Bool = false, options: KernelOptions = .default) {
        precondition(applies(s))
        let packedChannels = filtersPacked ? s.channels : 0
        switch tile {
        case .f2x2: run(x, w, transformed, packedChannels, bias: bias, y, s, relu: relu, threads: threads, options, WinogradF2.self)
        case .f4x4: run(x, w, transformed, packedChannels, bias: bias, y, s, relu: relu, threads: threads, options, WinogradF4.self)
        }
    }

    /// The transformed filters of w [M, C, 3, 3]: u[p][M][C] (alpha^2 * M * C floats). With
    /// `packed`, w is in `PackedFilters`' layout, and when M is a multiple of 16 so is each
    /// point's [M, C] matrix (the packed-filter GEMM's A, see `usesPackedGEMM`). `isa` picks the
    /// transform's variant (the same bits in each).
    public static func transformFilters(_ w: UnsafePointer<Float>, filters: Int, channels: Int, tile: WinogradTile,
                                        threads: Int, packed: Bool = false, isa: KernelISA = .automatic) -> [Float] {
        let count = filters * channels, m = tile == .f2x2 ? 2 : 4
        return [Float](unsafeUninitializedCapacity: tile.alpha * tile.alpha * count) { u, n in
            if packed && usesPackedGEMM(filters: filters) {
                transformFiltersToBlocks(w, filters: filters, channels: channels, m: m, into: u.baseAddress!,
                                         threads: threads, isa: isa)
            } else {
                transformFilters(w, count: count, m: m, into: u.baseAddress!, threads: threads,
                                 packedChannels: packed ? channels : 0, isa: isa)
            }
            n = tile.alpha * tile.alpha * count
        }
    }

    /// Whether a call with packed filters multiplies with the packed-filter GEMM (each point's
    /// transformed filters in 16-row blocks) rather than OpenBLAS: when M is a multiple of 16.
    public static func usesPackedGEMM(filters: Int) -> Bool { filters % 16 == 0 }

    static func transformFilters(_ w: UnsafePointer<Float>, count: Int, m: Int, into u: UnsafeMutablePointer<Float>,
                                 threads: Int, packedChannels: Int = 0, isa: KernelISA) {
        forEachWorkerRange((count + 7) / 8, threads: threads, scratch: 0) { lo, hi, _ in
            if packedChannels > 0 {
                manet_winograd_filter_packed(isa.code, Int32(m), w, packedChannels, lo * 8, min(hi * 8, count), u, count)
            } else {
                manet_winograd_filter(isa.code, Int32(m), w, lo * 8, min(hi * 8, count), u, count)
            }
        }
    }

    static func transformFiltersToBlocks(_ w: UnsafePointer<Float>, filters: Int, channels: Int, m: Int,
                                         into u: UnsafeMutablePointer<Float>, threads: Int, isa: KernelISA) {
        forEachWorkerRange(filters / 8 * channels, threads: threads, scratch: 0) { lo, hi, _ in
            manet_winograd_filter_packed_blocks(isa.code, Int32(m), w, filters, channels, lo, hi, u, filters * channels)
        }
    }

    static func run<T: WinogradTransform>(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                          _ transformed: UnsafePointer<Float>?, _ packedChannels: Int,
                                          bias: UnsafePointer<Float>?,
                                          _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool,
                                          threads: Int, _ options: KernelOptions, _: T.Type) {
        let g = s.geometry
        let C = s.channels, M = s.filters, points = T.alpha * T.alpha
        if s.batch == 0 || M == 0 || g.outputPlane == 0 { return }
        let tilesH = (g.outH + T.m - 1) / T.m, tilesW = (g.outW + T.m - 1) / T.m
        let perImage = tilesH * tilesW
        var geometry = manet_winograd_geometry(
            m: Int32(T.m), channels: Int32(C), filters: Int32(M), inH: Int32(g.inH), inW: Int32(g.inW),
            outH: Int32(g.outH), outW: Int32(g.outW), padTop: Int32(g.pH), padLeft: Int32(g.pW),
            tilesH: Int32(tilesH), tilesW: Int32(tilesW))
        // With packed filters (M a multiple of 16) the packed-filter GEMM multiplies one block of
        // 16 filters at a time for every point, and filters not kept are transformed block by
        // block right before (into a worker's scratch, which stays in cache) instead of all at
        // once into a 16/9 or 4x weight-sized buffer. That order re-reads every point's
        // transformed inputs once per block, so it is taken only when they are smaller than the
        // transformed filters (MA-Net's 7x7 layers at batch 16); otherwise (many tiles, few
        // filters) the filters are transformed first, each point's GEMM takes every block, and
        // images go in chunks whose transformed inputs and results (v, r) stay in the L3 cache,
        // or (inference, `takesBands`) each band of tile rows goes through all three steps at once.
        let packedGEMM = packedChannels > 0 && usesPackedGEMM(filters: M)
        let byBlock = packedGEMM && s.batch * perImage < M
        // Few tiles (batch 1's 7x7 and 14x14 planes): each block's filters transformed a chunk of
        // channels at a time into a cache-sized scratch, right before its GEMMs.
        if packedGEMM && transformed == nil && transformsInChunks(s, tile: T.m == 2 ? .f2x2 : .f4x4, options: options) {
            runInChunks(x, w, bias: bias, y, s, relu: relu, threads: threads, chunkChannels: options.winogradChunkChannels,
                        isa: options.isa.code,
                        &geometry, T.self)
            return
        }
        if packedGEMM && takesBands(s, tile: T.m == 2 ? .f2x2 : .f4x4, options: options) {
            let made = transformed == nil ? UnsafeMutablePointer<Float>.allocate(capacity: points * M * C) : nil
            defer { made?.deallocate() }
            if let made { transformFiltersToBlocks(w, filters: M, channels: C, m: T.m, into: made, threads: threads, isa: options.isa) }
            runInBands(x, UnsafePointer(made) ?? transformed!, bias: bias, y, s, relu: relu, threads: threads,
                       bandTiles: options.winogradBandTiles, isa: options.isa.code, &geometry, T.self)
            return
        }
        let limit = packedGEMM && !byBlock ? options.winogradCacheChunkFloats : scratchLimit
        let chunk = max(1, min(s.batch, limit / max(1, points * (C + M) * perImage)))
        let maxTiles = chunk * perImage
        // v[p][tile][C] (transformed inputs) and r[p][tile][M] (GEMM results), each point's matrix
        // padded past a multiple of 4 KiB (`manet_winograd_point_stride`).
        let v = UnsafeMutablePointer<Float>.allocate(capacity: points * (C * maxTiles + 16))
        let r = UnsafeMutablePointer<Float>.allocate(capacity: points * (M * maxTiles + 16))
        defer { v.deallocate(); r.deallocate() }
        let inputScratch = manet_winograd_input_scratch(&geometry), outputScratch = manet_winograd_output_scratch(&geometry)
        // u[p][M][C]: the transformed filters, each point one row-major M x C matrix, or (packed
        // filters, M a multiple of 16) one matrix in 16-row blocks for the packed-filter GEMM.
        let made = transformed == nil && !byBlock ? UnsafeMutablePointer<Float>.allocate(capacity: points * M * C) : nil
        defer { made?.deallocate() }
        if let made {
            if packedGEMM {
                transformFiltersToBlocks(w, filters: M, channels: C, m: T.m, into: made, threads: threads, isa: options.isa)
            } else {
                transformFilters(w, count: M * C, m: T.m, into: made, threads: threads, packedChannels: packedChannels,
                                 isa: options.isa)
            }
        }
        // R_p = V_p U_p^T for point p, one single-threaded GEMM (u[p]: [M][C] row-major for
        // OpenBLAS, or in 16-row blocks for the packed-filter GEMM).
        func multiply(_ p: Int, tiles: Int) {
            let u = UnsafePointer(made) ?? transformed!
            let vs = manet_winograd_point_stride(tiles * C), rs = manet_winograd_point_stride(tiles * M)
            if packedGEMM {
                manet_packed_gemm(options.isa.code, u + p * M * C, M, C, 0, M / 16, v + p * vs, 1, C, tiles, 1, 0,
                                  r + p * rs, 1, M, 0, nil, 0)
            } else {
                GEMM.sgemm(transB: true, m: tiles, n: M, k: C, a: v + p * vs, lda: C, b: u + p * M * C, ldb: C,
                           c: r + p * rs, ldc: M, threads: 1, options: options)
            }
        }
        // Filter blocks over workers: out(m, tile) = sum_c U_p(m, c) V_p(tile, c), written as
        // r[p][tile][m], for the 16 filters of each block and every point p.
        func multiplyBlocks(tiles: Int) {
            let vs = manet_winograd_point_stride(tiles * C), rs = manet_winograd_point_stride(tiles * M)
            forEachWorkerRange(M / 16, threads: threads, scratch: transformed == nil ? points * C * 16 : 0) { lo, hi, scratch in
                for blk in lo..<hi {
                    // Point p's [16, C] block: kept filters' point-major layout, or this block's transform.
                    let a: UnsafePointer<Float>, pointStride: Int
                    if let transformed {
                        (a, pointStride) = (transformed + blk * C * 16, M * C)
                    } else {
                        manet_winograd_filter_block(options.isa.code, Int32(T.m), w, C, blk, scratch)
                        (a, pointStride) = (UnsafePointer(scratch), C * 16)
                    }
                    for p in 0..<points {
                        manet_packed_gemm(options.isa.code, a + p * pointStride, 16, C, 0, 1, v + p * vs, 1, C, tiles, 1, 0,
                                          r + p * rs + blk * 16, 1, M, 0, nil, 0)
                    }
                }
            }
        }
        var start = 0
        while start < s.batch {
            let images = min(chunk, s.batch - start)
            let tiles = images * perImage
            let xChunk = x + start * C * g.inputPlane, yChunk = y + start * M * g.outputPlane
            forEachWorkerRange(images * ((C + 7) / 8), threads: threads, scratch: inputScratch) { lo, hi, scratch in
                manet_winograd_input(options.isa.code, &geometry, xChunk, lo, hi, v, manet_winograd_point_stride(tiles * C), C,
                                     scratch)
            }
            // R_p[tiles, M] = V_p[tiles, C] x U_p[M, C]^T for every transform point p.
            // Transform points over threads, one single-threaded GEMM each: no fork/join inside
            // the 16 or 36 GEMMs (measured faster than threaded GEMMs one by one).
            if byBlock {
                multiplyBlocks(tiles: tiles)
            } else {
                if !packedGEMM && GEMM.usesOpenBLAS(options) { GEMM.setThreads(1) }
                parallelForDynamic(points, threads: threads) { _, p in multiply(p, tiles: tiles) }
            }
            forEachWorkerRange(images * ((M + 7) / 8), threads: threads, scratch: outputScratch) { lo, hi, scratch in
                manet_winograd_output(options.isa.code, &geometry, r, manet_winograd_point_stride(tiles * M), M, 0, bias,
                                      relu ? 1 : 0, lo, hi, yChunk, scratch)
            }
            start += images
        }
    }

    /// The banded order (`KernelOptions.winogradBandTiles`): the tile rows of each image in bands
    /// of about `bandTiles` tiles, each band's input transform, its GEMMs for every point and
    /// filter block, and its output transform (bias, ReLU) one after the other on one worker,
    /// so that the band's transformed inputs and products (36 x tiles x C and x M floats) stay in
    /// the core's L2 cache between the steps instead of each step's result, a plane's worth,
    /// going to L3 and back; one fork/join per call, the bands shared out over the workers.
    /// u: the transformed filters in 16-row blocks per point (`transformFiltersToBlocks`). Every
    /// output is one fixed sequence of operations whatever the bands (`manet_winograd_band_gemm`
    /// sums each column in one chain): the same bits for every thread count and instruction set.
    static func runInBands<T: WinogradTransform>(_ x: UnsafePointer<Float>, _ u: UnsafePointer<Float>,
                                                 bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                                                 _ s: ConvolutionShape, relu: Bool, threads: Int, bandTiles: Int, isa: Int32,
                                                 _ geometry: inout manet_winograd_geometry, _: T.Type) {
        let g = s.geometry, C = s.channels, M = s.filters, points = T.alpha * T.alpha
        let tilesH = Int(geometry.tilesH), tilesW = Int(geometry.tilesW)
        let bandRows = max(1, min(tilesH, bandTiles / tilesW))
        let vs = manet_winograd_point_stride(bandRows * tilesW * C), rs = manet_winograd_point_stride(bandRows * tilesW * M)
        let transformScratch = max(manet_winograd_band_input_scratch(&geometry, bandRows),
                                   manet_winograd_band_output_scratch(&geometry, bandRows))
        // Per worker: [v: points x vs] [r: points x rs] [transform scratch].
        let rOffset = (points * vs + 15) / 16 * 16, tOffset = rOffset + (points * rs + 15) / 16 * 16
        withUnsafePointer(to: geometry) { gp in
            forEachWorkerRange(s.batch * tilesH, threads: threads, scratch: tOffset + transformScratch) { lo, hi, mine in
                var row = lo
                while row < hi {
                    let n = row / tilesH, th0 = row % tilesH
                    let th1 = min(tilesH, th0 + bandRows, hi - n * tilesH), tiles = (th1 - th0) * tilesW
                    manet_winograd_band_input(isa, gp, x + n * C * g.inputPlane, th0, th1, mine, vs, mine + tOffset)
                    manet_winograd_band_gemm(isa, u, M * C, M, C, points, mine, vs, tiles, mine + rOffset, rs)
                    manet_winograd_band_output(isa, gp, mine + rOffset, rs, tiles * 16, bias, relu ? 1 : 0, th0, th1,
                                               y + n * M * g.outputPlane, mine + tOffset)
                    row = n * tilesH + th1
                }
            }
        }
    }

    /// The chunked order (`transformsInChunks`): for each filter block handed to a worker, the
    /// block's GEMMs (`manet_winograd_gemm_block`, sums in the worker's scratch) and its output
    /// transform straight from them. The input transform is a parallel step of its own from
    /// 256 channels; below, each worker transforms the whole input into its own v (cheaper than
    /// a second fork/join for batch 1's sub-millisecond layers).
    static func runInChunks<T: WinogradTransform>(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                                  bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                                                  _ s: ConvolutionShape, relu: Bool, threads: Int, chunkChannels cb: Int,
                                                  isa: Int32,
                                                  _ geometry: inout manet_winograd_geometry, _: T.Type) {
        let C = s.channels, M = s.filters, points = T.alpha * T.alpha
        let tiles = s.batch * ((s.geometry.outH + T.m - 1) / T.m) * ((s.geometry.outW + T.m - 1) / T.m)
        let blocks = M / 16, channelGroups = (C + 7) / 8
        // v[c / cb][p][tile][c % cb], each point's [tile][cb] padded past a multiple of 4 KiB.
        let pointStride = manet_winograd_point_stride(tiles * cb)
        let vCount = C / cb * points * pointStride
        let sharedInput = C >= 256
        let shared = sharedInput ? UnsafeMutablePointer<Float>.allocate(capacity: vCount) : nil
        defer { shared?.deallocate() }
        let inputScratch = manet_winograd_input_scratch(&geometry)
        if let shared {
            forEachWorkerRange(s.batch * channelGroups, threads: threads, scratch: inputScratch) { lo, hi, scratch in
                manet_winograd_input(isa, &geometry, x, lo, hi, shared, pointStride, cb, scratch)
            }
        }
        // Per worker: [own v] [filter chunk scratch] [block sums] [transform scratch].
        let ownV = sharedInput ? 0 : vCount, chunkScratch = points * (cb * 16 + 16), sumsCount = points * tiles * 16
        let transformScratch = max(inputScratch, manet_winograd_output_scratch(&geometry))
        let perWorker = ownV + chunkScratch + sumsCount + transformScratch
        withUnsafePointer(to: geometry) { g in
            let ownInput: (UnsafeMutablePointer<Float>) -> Void = { mine in
                manet_winograd_input(isa, g, x, 0, s.batch * channelGroups, mine, pointStride, cb, mine + ownV + chunkScratch + sumsCount)
            }
            forEachWorkerRange(blocks, threads: threads, scratch: perWorker, prepare: sharedInput ? nil : ownInput) { lo, hi, mine in
                let v = UnsafePointer(shared ?? mine), sums = mine + ownV + chunkScratch
                for blk in lo..<hi {
                    manet_winograd_gemm_block(isa, Int32(T.m), w, C, blk, blocks, v, tiles, cb, sums, mine + ownV)
                    for n in 0..<s.batch {
                        let item = n * (M / 8) + 2 * blk
                        manet_winograd_output(isa, g, sums, tiles * 16, 16, 16 * blk, bias, relu ? 1 : 0, item, item + 2, y,
                                              sums + sumsCount)
                    }
                }
            }
        }
    }

    /// Splits items 0..<count into contiguous pieces (up to four per worker) handed to whichever
    /// worker is free next (a core slowed by another job takes fewer), and gives each worker its
    /// own 64-byte aligned scratch of `scratch` floats (passed to `prepare` once, when made). Every piece writes its own items, so the
    /// result does not depend on which worker ran it.
    static func forEachWorkerRange(_ count: Int, threads: Int, scratch: Int,
                                   prepare: ((UnsafeMutablePointer<Float>) -> Void)? = nil,
                                   _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let workers = min(max(1, threads), count)
        if workers <= 0 { return }
        let pieces = workers == 1 ? 1 : min(count, 4 * workers)
        let scratches = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: workers)
        scratches.initialize(repeating: nil, count: workers)
        defer {
            for w in 0..<workers { scratches[w]?.deallocate() }
            scratches.deallocate()
        }
        parallelForDynamic(pieces, threads: workers) { w, piece in
            let raw: UnsafeMutableRawPointer
            if let made = scratches[w] {
                raw = made
            } else {
                raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, scratch) * 4, alignment: 64)
                scratches[w] = raw
                prepare?(raw.bindMemory(to: Float.self, capacity: max(1, scratch)))
            }
            body(piece * count / pieces, (piece + 1) * count / pieces, raw.bindMemory(to: Float.self, capacity: max(1, scratch)))
        }
    }
}
