// Convolution filters packed once into 16-row blocks (`_CKernels/packed_gemm.h`), and the
// inference convolution over them: im2col columns (or the input itself for 1x1 convolutions)
// times the packed filters, with bias and ReLU in the store. Nothing is re-packed per call.

import _CKernels
import Foundation

/// The [M, K] filter matrix of an ungrouped convolution (K = C * kernel volume) in 16-row blocks:
/// element (m, k) at `(m / 16) * K * 16 + k * 16 + m % 16`, rows past M zero. Owns its storage;
/// made once per inference plan, it replaces the [M, C, k...] weights rather than copying them.
public final class PackedFilters: @unchecked Sendable {
    public let filters: Int
    public let columns: Int
    let storage: [Float]

    /// Packs `w` ([filters, columns], row-major) into a new buffer.
    public init(_ w: UnsafePointer<Float>, filters: Int, columns: Int) {
        self.filters = filters
        self.columns = columns
        storage = [Float](unsafeUninitializedCapacity: manet_packed_size(filters, columns)) { b, n in
            manet_pack_rows(w, filters, columns, columns, b.baseAddress!)
            n = manet_packed_size(filters, columns)
        }
    }

    /// Packs `w` ([filters, columns], row-major), taking its buffer: in place when `filters` is
    /// a multiple of 16 (no second copy when the caller held the only reference), else into a
    /// new, padded one. `w` is left empty.
    public init(taking w: inout [Float], filters: Int, columns: Int) {
        precondition(w.count == filters * columns)
        self.filters = filters
        self.columns = columns
        var floats: [Float] = []
        swap(&floats, &w)
        if filters % 16 == 0 {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 16 * columns))
            defer { scratch.deallocate() }
            floats.withUnsafeMutableBufferPointer { manet_pack_rows_in_place($0.baseAddress!, filters, columns, scratch) }
            storage = floats
        } else {
            storage = [Float](unsafeUninitializedCapacity: manet_packed_size(filters, columns)) { b, n in
                floats.withUnsafeBufferPointer { manet_pack_rows($0.baseAddress!, filters, columns, columns, b.baseAddress!) }
                n = manet_packed_size(filters, columns)
            }
        }
    }

    /// Packs `w` ([filters, columns], row-major) into a new buffer, its 16-row blocks split over
    /// `threads` (a copy: the same floats as `init(_:filters:columns:)` on any count). Training
    /// packs its filters on every call, so this runs per convolution there.
    public init(_ w: UnsafePointer<Float>, filters: Int, columns: Int, threads: Int) {
        self.filters = filters
        self.columns = columns
        let blocks = (filters + 15) / 16
        storage = [Float](unsafeUninitializedCapacity: blocks * 16 * columns) { b, n in
            if let base = b.baseAddress {
                parallelFor(blocks, threads: threads) { blk in
                    Self.packBlock(rows: min(16, filters - blk * 16), columns: columns, base + blk * 16 * columns) { i, k in
                        w[(blk * 16 + i) * columns + k]
                    }
                }
            }
            n = blocks * 16 * columns
        }
    }

    /// The filters dX is the convolution of dY with, packed straight from w ([M, C, volume]):
    /// W' [C, M * volume] with W'[c, m * volume + k] = w[m, c, volume - 1 - k] (transposed, each
    /// window rotated by 180 degrees), in one pass whose 16-channel blocks split over `threads`.
    /// The same floats as packing `ConvolutionBackward.flippedFilters`' output.
    public init(flipping w: UnsafePointer<Float>, filters M: Int, channels C: Int, volume v: Int, threads: Int) {
        filters = C
        columns = M * v
        let K = M * v, blocks = (C + 15) / 16
        storage = [Float](unsafeUninitializedCapacity: blocks * 16 * K) { b, n in
            if let base = b.baseAddress {
                parallelFor(blocks, threads: threads) { blk in
                    let c0 = blk * 16, rows = min(16, C - c0)
                    let block = base + blk * 16 * K
                    for m in 0..<M {
                        // w[m, c0 ..< c0 + rows, :] is one run of rows * v floats, and its packed
                        // columns m * v ..< (m + 1) * v one run of 16 * v.
                        let src = w + (m * C + c0) * v, dst = block + m * v * 16
                        for i in 0..<rows {
                            for k in 0..<v { dst[k &* 16 &+ i] = src[i &* v &+ (v &- 1 &- k)] }
                        }
                        for i in rows..<16 {
                            for k in 0..<v { dst[k &* 16 &+ i] = 0 }
                        }
                    }
                }
            }
            n = blocks * 16 * K
        }
    }

    /// One 16-row block: dst[k * 16 + i] = element(i, k) for i < rows, 0 for the rows past them,
    /// in 16-column tiles (each tile's writes stay in 1 KB; reading a row at a time).
    @inline(__always)
    static func packBlock(rows: Int, columns K: Int, _ dst: UnsafeMutablePointer<Float>, _ element: (Int, Int) -> Float) {
        var k0 = 0
        while k0 < K {
            let width = min(16, K - k0), tile = dst + k0 * 16
            for i in 0..<rows {
                for k in 0..<width { tile[k &* 16 &+ i] = element(i, k0 &+ k) }
            }
            for i in rows..<16 {
                for k in 0..<width { tile[k &* 16 &+ i] = 0 }
            }
            k0 += 16
        }
    }

    /// Floats held (with the zero rows that round `filters` up to a multiple of 16).
    public var count: Int { storage.count }

    /// Calls `body` with the packed floats.
    public func withPointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    /// The filters back in [filters, columns] row-major order.
    public func unpacked() -> [Float] {
        [Float](unsafeUninitializedCapacity: filters * columns) { b, n in
            if let base = b.baseAddress { withPointer { manet_unpack_rows($0, filters, columns, base, columns) } }
            n = filters * columns
        }
    }

    /// The variant the packed tiles (and im2col into packed columns) run for `isa`: `.avx2` or
    /// `.portable` (there is no AVX-512 form; Winograd's chunked GEMMs have one).
    public static func variant(for isa: KernelISA) -> KernelISA { KernelISA(code: manet_packed_variant(isa.code)) }

    /// Row blocks of 16.
    var blocks: Int { (filters + 15) / 16 }

    /// out(m, n) = relu?(sum_k filters(m, k) * b(k, n) + bias[m]) for `images` right-hand sides,
    /// b(k, n) of image i at `b[i * bi + k * bk + n * bn]`, out(m, n) of image i at
    /// `c[i * ci + m * cm + n * cn]`, with B first copied into blocks of 6 columns, [K][6] each
    /// (`manet_pack_columns`, spread over the threads), so that each 16 x 6 tile reads one
    /// contiguous block. Row blocks spread over `threads` (static ranges, so the result is the
    /// same bits for any thread count: every element is one fixed sum over k).
    public func multiplyPackingColumns(_ b: UnsafePointer<Float>, bk: Int, bn: Int, n: Int, images: Int = 1, bi: Int = 0,
                                       _ c: UnsafeMutablePointer<Float>, cm: Int, cn: Int, ci: Int = 0,
                                       bias: UnsafePointer<Float>?, relu: Bool, threads: Int,
                                       isa: KernelISA = .automatic) {
        if n == 0 || images == 0 || filters == 0 { return }
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: manet_packed_columns_size(columns, n, images))
        defer { packed.deallocate() }
        let items = images * ((n + 5) / 6)
        let workers = min(max(1, threads), items)
        parallelFor(workers, threads: workers) { w in
            manet_pack_columns(b, bk, bn, columns, n, bi, w * items / workers, (w + 1) * items / workers, packed)
        }
        multiplyPackedColumns(packed, n: n, images: images, c, cm: cm, cn: cn, ci: ci, bias: bias, relu: relu,
                              threads: threads, isa: isa)
    }

    /// The product with B already in packed-column form (`manet_im2col_packed`,
    /// `manet_pack_columns`: `images` times ceil(n / 6) blocks of [columns][6]). `isa` picks the
    /// tiles' variant (the same bits in each).
    public func multiplyPackedColumns(_ packed: UnsafePointer<Float>, n: Int, images: Int,
                                      _ c: UnsafeMutablePointer<Float>, cm: Int, cn: Int, ci: Int,
                                      bias: UnsafePointer<Float>?, relu: Bool, threads: Int,
                                      isa: KernelISA = .automatic) {
        if n == 0 || images == 0 || filters == 0 { return }
        withPointer { pointer in
            forEachBlockRange(threads: threads) { lo, hi in
                manet_packed_gemm_packed_columns(isa.code, pointer, filters, columns, lo, hi, packed, n, images, c, cm, cn, ci,
                                                 bias, relu ? 1 : 0)
            }
        }
    }

    /// Row-block ranges, one per worker (static: worker w always gets the same blocks).
    private func forEachBlockRange(threads: Int, _ body: (Int, Int) -> Void) {
        let workers = min(max(1, threads), blocks)
        parallelFor(workers, threads: workers) { w in body(w * blocks / workers, (w + 1) * blocks / workers) }
    }
}

extension ConvolutionForward {
    /// Tiles of 6 columns a worker of `runUnfoldedByColumns` unfolds and multiplies at a time:
    /// the GEMM's own chunk (`CHUNK_TILES` in packed_gemm.c), so the unfolded block is still in
    /// cache when the filters pass over it.
    static let columnChunkTiles = 32
    /// Unfolded floats per chunk of images (16 MiB): each filter block is read once per chunk,
    /// which only matters where the filters are large, and those layers' images are small (a
    /// 3x3/2 layer with 128 filters: 0.5 M floats per image); the 7x7/2 stem's 1.8 M per image
    /// made `scratchLimit`'s 16 M floats (9 images) ~50 MiB of batch 16's peak RSS.
    static let packedScratchLimit = 4 << 20


    /// The 2-D window of `s` for `manet_im2col_packed`.
    static func packedWindow(_ s: ConvolutionShape) -> manet_window2d {
        let g = s.geometry
        return manet_window2d(channels: Int32(s.channels), inH: Int32(g.inH), inW: Int32(g.inW),
                              kH: Int32(g.kH), kW: Int32(g.kW), sH: Int32(g.sH), sW: Int32(g.sW),
                              pH: Int32(g.pH), pW: Int32(g.pW), dH: Int32(g.dH), dW: Int32(g.dW),
                              outH: Int32(g.outH), outW: Int32(g.outW))
    }

    /// `runPacked` for one image over `workers` threads split by output columns: each thread
    /// unfolds its share of the whole 6-column tiles, a chunk (`columnChunkTiles`) at a time, and
    /// multiplies every filter block with each chunk while it is in cache; the tiles left over
    /// (fewer than the threads) are unfolded by every thread and split by filter blocks, each
    /// thread taking them with its own blocks. The same tiles, so the same bits, as one thread.
    /// Both threads read all the filters, so `runPacked` takes this path where the filters are
    /// the smaller operand (the 7x7/2 stem: 37 KB of filters, 7.4 MB unfolded) or for one
    /// thread, and splits by filter blocks otherwise.
    static func runUnfoldedByColumns(_ x: UnsafePointer<Float>, _ w: PackedFilters, bias: UnsafePointer<Float>?,
                                   _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool, workers: Int,
                                     isa: KernelISA) {
        let g = s.geometry, plane = g.outputPlane, rows = s.columnRows, blocks = w.blocks
        var window = packedWindow(s)
        let items = (plane + 5) / 6, workers = max(1, min(workers, items * blocks))
        let whole = items / workers, leftover = items - whole * workers, shared = whole * workers
        // A worker unfolds `chunk` of its tiles at a time into its own buffer and multiplies them
        // while they are in cache; its copy of the leftover tiles follows.
        let chunk = min(whole, columnChunkTiles), perWorker = chunk + leftover
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, workers * perWorker * rows * 6))
        defer { buffer.deallocate() }
        // Writes tiles [begin, end) at base + (tile - begin) * rows * 6.
        func unfold(_ begin: Int, _ end: Int, _ base: UnsafeMutablePointer<Float>) {
            if begin >= end { return }
            let at = base - begin * rows * 6
            if g.isPointwise {
                manet_pack_columns(x, g.inputPlane, 1, rows, plane, 0, begin, end, at)
            } else {
                manet_im2col_packed(isa.code, &window, x, 0, begin, end, at)
            }
        }
        w.withPointer { wp in
            parallelFor(workers, threads: workers) { t in
                let own = buffer + t * perWorker * rows * 6, copy = own + chunk * rows * 6
                unfold(shared, items, copy)
                var c0 = whole * t
                let end = whole * (t + 1)
                repeat {
                    let c1 = min(end, c0 + chunk)
                    unfold(c0, c1, own)
                    // The leftover tiles go with the last chunk, their filter blocks this worker's share.
                    let last = c1 == end
                    manet_packed_gemm_shared_tiles(isa.code, wp, s.filters, rows, own, c0, c1, copy, last ? shared : items, items,
                                                   blocks * t / workers, blocks * (t + 1) / workers, plane, y, plane, 1,
                                                   bias, relu ? 1 : 0)
                    c0 = c1
                } while c0 < end
            }
        }
    }

    /// The padded input size of a 2-D window read in place (every window inside it), the offset
    /// of each tap (im2col's row order) and of each output position (padded to whole 6-column
    /// tiles) in it; nil when an offset would not fit in 32 bits.
    static func implicitOffsets(_ s: ConvolutionShape) -> (padH: Int, padW: Int, koff: [Int32], poff: [Int32])? {
        let g = s.geometry, plane = g.outputPlane, rows = s.columnRows
        let padH = max(g.pH + g.inH, (g.outH - 1) * g.sH + (g.kH - 1) * g.dH + 1)
        let padW = max(g.pW + g.inW, (g.outW - 1) * g.sW + (g.kW - 1) * g.dW + 1)
        guard s.channels * padH * padW < Int(Int32.max) else { return nil }
        let items = (plane + 5) / 6
        var koff = [Int32](repeating: 0, count: rows), poff = [Int32](repeating: 0, count: items * 6)
        var k = 0
        for c in 0..<s.channels {
            for kh in 0..<g.kH {
                for kw in 0..<g.kW {
                    koff[k] = Int32(c * padH * padW + kh * g.dH * padW + kw * g.dW)
                    k += 1
                }
            }
        }
        for n in 0..<plane { poff[n] = Int32(n / g.outW * g.sH * padW + n % g.outW * g.sW) }
        return (padH, padW, koff, poff)
    }

    /// Copies `channels` input planes from `x` into the zero-bordered planes at `padded` (each
    /// padH x padW, the input's first element at row pH, column pW: the layout
    /// `implicitOffsets` describes). Writes the interiors only; the caller zeroes the borders once.
    static func copyIntoPadded(_ x: UnsafePointer<Float>, channels: Int, _ padded: UnsafeMutablePointer<Float>,
                               padH: Int, padW: Int, _ g: WindowGeometry) {
        for c in 0..<channels {
            let to = padded + (c * padH * padW + g.pH * padW + g.pW), from = x + c * g.inputPlane
            for r in 0..<g.inH { (to + r * padW).update(from: from + r * g.inW, count: g.inW) }
        }
    }

    /// Whether training's convolutions of shape `s` take `runImplicitImages`: ungrouped 2-D
    /// windows wider than 1x1 on planes of at least `narrowPlane` outputs (MA-Net's 64->64
    /// 56x56 layers and the 7x7/2 stem). There, im2col + GEMM streams a column matrix of 7-9 MB
    /// per image through the cache; read in place, the padded image (0.9 MB) stays in L2.
    /// Narrower planes keep the batch-wide GEMMs (`sharedGEMM`, Winograd).
    public static func trainingImplicit(_ s: ConvolutionShape, options: KernelOptions) -> Bool {
        let g = s.geometry
        return options.implicitConvolution && s.group == 1 && !g.isPointwise && g.kD == 1 && g.inD == 1 && g.outD == 1
            && g.outputPlane >= narrowPlane && s.batch > 0 && s.filters > 0 && s.channels > 0
    }

    /// y = relu?(conv(x, w) + bias) over a batch with each image read in place
    /// (`manet_packed_gemm_implicit`, all its tiles and filter blocks), the images handed to
    /// whichever worker is free next; each worker pads into its own copy (zeroed once, the
    /// interior rewritten per image). Every output element is the same sum, in the same order,
    /// as in `runImplicit` and the unfolded packed path: the same bits for any thread count.
    /// Nil when an offset would not fit in 32 bits (nothing written).
    public static func runImplicitImages(_ x: UnsafePointer<Float>, _ w: PackedFilters, bias: UnsafePointer<Float>?,
                                         _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool,
                                         threads: Int, isa: KernelISA) -> Void? {
        let g = s.geometry, plane = g.outputPlane, rows = s.columnRows
        precondition(s.group == 1 && w.filters == s.filters && w.columns == rows)
        precondition(g.kD == 1 && g.inD == 1 && g.outD == 1, "runImplicitImages takes 2-D windows")
        guard let (padH, padW, koff, poff) = implicitOffsets(s) else { return nil }
        let padded = padH != g.inH || padW != g.inW
        let items = (plane + 5) / 6
        let workers = max(1, min(threads, s.batch))
        let planeP = padH * padW, perCopy = s.channels * planeP
        let copies: UnsafeMutablePointer<Float>? = padded ? .allocate(capacity: workers * perCopy) : nil
        defer { copies?.deallocate() }
        var made = [Bool](repeating: false, count: workers)
        w.withPointer { packed in
            koff.withUnsafeBufferPointer { ko in
                poff.withUnsafeBufferPointer { po in
                    made.withUnsafeMutableBufferPointer { made in
                        parallelForDynamic(s.batch, threads: workers) { t, n in
                            let xn = x + n * s.channels * g.inputPlane
                            var source = xn
                            if let copies {
                                let copy = copies + t * perCopy
                                if !made[t] {
                                    made[t] = true
                                    copy.initialize(repeating: 0, count: perCopy)
                                }
                                copyIntoPadded(xn, channels: s.channels, copy, padH: padH, padW: padW, g)
                                source = UnsafePointer(copy)
                            }
                            manet_packed_gemm_implicit(isa.code, packed, s.filters, rows, source, ko.baseAddress!,
                                                       po.baseAddress!, plane, 0, items, 0, 0, 0, 0,
                                                       y + n * s.filters * plane, plane, 1, bias, relu ? 1 : 0)
                        }
                    }
                }
            }
        }
        return ()
    }

    /// Pieces per worker of `runImplicit`'s dynamic split.
    static let implicitPiecesPerWorker = 4
    /// `runPacked` for one 2-D image (depth 1) without unfolding it (`manet_packed_gemm_implicit`): the
    /// GEMM reads each tap's 6 values straight from the input, zero-padded into a copy when the
    /// window reaches past it (each worker its own copy, so one parallel region per call),
    /// through a table of tap offsets and one of position offsets.
    /// Split by columns (`byColumns`: pieces of whole tiles, each with every filter block) or
    /// by filter blocks (pieces of blocks, each with every tile), `implicitPiecesPerWorker`
    /// pieces per worker taken by whichever worker is free. The same sums in the same order as
    /// unfolded, so the same bits for any split and thread count. Nil when an offset would not
    /// fit in 32 bits (then the caller unfolds).
    static func runImplicit(_ x: UnsafePointer<Float>, _ w: PackedFilters, bias: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool, threads: Int,
                            byColumns: Bool, isa: KernelISA) -> Void? {
        let g = s.geometry, plane = g.outputPlane, rows = s.columnRows, blocks = w.blocks
        precondition(g.kD == 1 && g.inD == 1 && g.outD == 1, "runImplicit takes 2-D windows")
        guard let (padH, padW, koff, poff) = implicitOffsets(s) else { return nil }
        let padded = padH != g.inH || padW != g.inW
        let items = (plane + 5) / 6
        // Pieces handed to whichever worker is free next (`parallelForDynamic`): whole 6-column
        // tiles with every filter block (`byColumns`), or filter blocks with every tile. A worker
        // that starts late (woken from sleep, or its core taken by another job) takes fewer pieces
        // instead of the caller waiting for a fixed half; a handful per worker keeps the tail
        // short. Every output element is still one fixed sum over k, whoever computes it.
        let units = byColumns ? items : blocks
        let workers = max(1, min(threads, units))
        let pieces = workers == 1 ? 1 : min(units, Self.implicitPiecesPerWorker * workers)
        // Each worker pads its own copy, on its first piece (a fork and join less than sharing
        // one, and no reading of planes the other core wrote).
        let planeP = padH * padW, perCopy = s.channels * planeP
        let copies: UnsafeMutablePointer<Float>? = padded ? .allocate(capacity: workers * perCopy) : nil
        defer { copies?.deallocate() }
        var made = [Bool](repeating: false, count: workers)
        w.withPointer { packed in
            koff.withUnsafeBufferPointer { ko in
                poff.withUnsafeBufferPointer { po in
                    made.withUnsafeMutableBufferPointer { made in
                        parallelForDynamic(pieces, threads: workers) { t, piece in
                            var source = x
                            if let copies {
                                let copy = copies + t * perCopy
                                if !made[t] {
                                    made[t] = true
                                    copy.initialize(repeating: 0, count: perCopy)
                                    copyIntoPadded(x, channels: s.channels, copy, padH: padH, padW: padW, g)
                                }
                                source = UnsafePointer(copy)
                            }
                            let lo = units * piece / pieces, hi = units * (piece + 1) / pieces
                            if byColumns {
                                manet_packed_gemm_implicit(isa.code, packed, s.filters, rows, source, ko.baseAddress!, po.baseAddress!, plane,
                                                           lo, hi, 0, 0, 0, 0, y, plane, 1, bias, relu ? 1 : 0)
                            } else {
                                manet_packed_gemm_implicit(isa.code, packed, s.filters, rows, source, ko.baseAddress!, po.baseAddress!, plane,
                                                           0, 0, 0, items, lo, hi, y, plane, 1, bias, relu ? 1 : 0)
                            }
                        }
                    }
                }
            }
        }
        return ()
    }

    /// `run` for an ungrouped convolution whose filters were packed once: y[n, m, p] =
    /// relu?(sum_k W[m, k] * col_n[k, p] + bias[m]). One 2-D image is read in place
    /// (`runImplicit`). Otherwise a chunk of images is unfolded at once into the GEMM's blocks
    /// of 6 columns (so each packed filter block is read once per chunk); the filter blocks are
    /// split over threads. 1x1 stride-1 unpadded convolutions copy x's planes into that form
    /// instead of unfolding.
    /// `options.implicitConvolution` off unfolds one image first (by columns in
    /// `runUnfoldedByColumns`, by blocks through the batch path); `options.convolutionSplit`
    /// fixes the split. Every choice gives the same bits.
    public static func runPacked(_ x: UnsafePointer<Float>, _ w: PackedFilters, bias: UnsafePointer<Float>?,
                                 _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool, threads: Int,
                                 options: KernelOptions = .default) {
        precondition(s.group == 1 && w.filters == s.filters && w.columns == s.columnRows)
        let g = s.geometry
        let inPlane = g.inputPlane, plane = g.outputPlane, rows = s.columnRows
        if s.batch == 0 || s.filters == 0 || plane == 0 { return }
        // 2-D windows are unfolded straight into the GEMM's packed-column form; other ranks go
        // through im2col first.
        let flat = g.kD == 1 && g.inD == 1 && g.outD == 1
        // One image: split by columns where the filters are the smaller operand (each thread then
        // reads all of them), else by filter blocks (each thread streams only its share of the
        // filters: MA-Net's 7x7 layers, whose filters are 2-9 times their unfolded input).
        // Alternating with onnxruntime (both unfolded, before `runImplicit`), 13 512->512 7x7
        // convolutions, 6 turns x 10: 28.1 ms by blocks, 29.6 by columns (onnxruntime 25.7); 80
        // 128->128 7x7: 14.4 either way.
        let filterBytes = w.count * 4, unfoldedBytes = rows * ((plane + 5) / 6 * 6) * 4
        let byColumns = switch options.convolutionSplit {
        case .columns: true
        case .blocks: false
        case nil: filterBytes < unfoldedBytes || threads == 1
        }
        if (g.isPointwise || flat) && s.batch == 1 {
            // (3-D pointwise convolutions copy their volumes' planes instead.)
            if options.implicitConvolution && flat {
                if runImplicit(x, w, bias: bias, y, s, relu: relu, threads: threads, byColumns: byColumns,
                               isa: options.isa) != nil { return }
            } else if byColumns {
                runUnfoldedByColumns(x, w, bias: bias, y, s, relu: relu, workers: threads, isa: options.isa)
                return
            }
        }
        if g.isPointwise {
            w.multiplyPackingColumns(x, bk: inPlane, bn: 1, n: plane, images: s.batch, bi: s.channels * inPlane,
                                     y, cm: plane, cn: 1, ci: s.filters * plane, bias: bias, relu: relu, threads: threads,
                                     isa: options.isa)
            return
        }
        let perImage = rows * ((plane + 5) / 6 * 6) * (flat ? 1 : 2)
        let chunk = max(1, min(s.batch, packedScratchLimit / max(1, perImage)))
        let columns = flat ? nil : UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * chunk * plane))
        let packed = flat ? UnsafeMutablePointer<Float>.allocate(capacity: manet_packed_columns_size(rows, plane, chunk)) : nil
        defer { columns?.deallocate(); packed?.deallocate() }
        var window = packedWindow(s)
        var start = 0
        while start < s.batch {
            let images = min(chunk, s.batch - start)
            let yChunk = y + start * s.filters * plane
            if let packed {
                let items = images * ((plane + 5) / 6)
                let workers = min(max(1, threads), items)
                let xChunk = x + start * s.channels * inPlane
                parallelFor(workers, threads: workers) { t in
                    manet_im2col_packed(options.isa.code, &window, xChunk, s.channels * inPlane, t * items / workers,
                                        (t + 1) * items / workers, packed)
                }
                w.multiplyPackedColumns(packed, n: plane, images: images, yChunk, cm: plane, cn: 1, ci: s.filters * plane,
                                        bias: bias, relu: relu, threads: threads, isa: options.isa)
            } else if let columns {
                let cols = images * plane
                // Column i * P + p of row r reads image start + i; the row stride is `cols`.
                parallelFor(images * s.channels, threads: threads) { t in
                    let i = t / s.channels, c = t % s.channels
                    im2col(x + (start + i) * s.channels * inPlane, columns + i * plane, rowStride: cols,
                           channels: c..<(c + 1), g)
                }
                w.multiplyPackingColumns(columns, bk: cols, bn: 1, n: plane, images: images, bi: plane,
                                         yChunk, cm: plane, cn: 1, ci: s.filters * plane,
                                         bias: bias, relu: relu, threads: threads, isa: options.isa)
            }
            start += images
        }
    }
}
