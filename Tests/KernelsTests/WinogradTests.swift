// Winograd 3x3 convolution: agrees with a float64 direct convolution as closely as the im2col path
// does (error printed for MA-Net's layer shapes), edge tiles, threads, the chunked filter transform
// and which shapes take it.

import _CKernels
import Foundation
import Kernels
import TestSupport
import XCTest

final class WinogradTests: XCTestCase {
    struct Case {
        var batch: Int, channels: Int, filters: Int, height: Int, width: Int, pad: Int
    }

    func shape(_ c: Case) -> ConvolutionShape {
        let outH = c.height + 2 * c.pad - 2, outW = c.width + 2 * c.pad - 2
        let g = WindowGeometry(input: [c.height, c.width], kernel: [3, 3], strides: [1, 1], padsBegin: [c.pad, c.pad],
                               padsEnd: [c.pad, c.pad], dilations: [1, 1], output: [outH, outW])
        return ConvolutionShape(batch: c.batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
    }

    /// y = conv(x, w) + bias in float64, straight from the definition.
    func reference(_ x: [Float], _ w: [Float], _ bias: [Float], _ s: ConvolutionShape) -> [Double] {
        let g = s.geometry
        var y = [Double](repeating: 0, count: s.batch * s.filters * g.outputPlane)
        for n in 0..<s.batch {
            for m in 0..<s.filters {
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        var sum = Double(bias[m])
                        for c in 0..<s.channels {
                            for kh in 0..<3 {
                                let ih = oh + kh - g.pH
                                if ih < 0 || ih >= g.inH { continue }
                                for kw in 0..<3 {
                                    let iw = ow + kw - g.pW
                                    if iw < 0 || iw >= g.inW { continue }
                                    sum += Double(w[((m * s.channels + c) * 3 + kh) * 3 + kw])
                                        * Double(x[((n * s.channels + c) * g.inH + ih) * g.inW + iw])
                                }
                            }
                        }
                        y[((n * s.filters + m) * g.outH + oh) * g.outW + ow] = sum
                    }
                }
            }
        }
        return y
    }

    /// Inputs like post-ReLU activations ([0, 1)), He-scaled weights, small biases.
    func data(_ c: Case, seed: UInt64) -> (x: [Float], w: [Float], b: [Float]) {
        let s = shape(c)
        let scale = Float((2.0 / Double(9 * c.channels)).squareRoot() * 3.0.squareRoot())
        return (pseudoRandom(c.batch * c.channels * s.geometry.inputPlane, seed: seed).map { ($0 + 1) / 2 },
                pseudoRandom(c.filters * c.channels * 9, seed: seed + 1).map { $0 * scale },
                pseudoRandom(c.filters, seed: seed + 2).map { $0 * 0.1 })
    }

    func runWinograd(_ d: (x: [Float], w: [Float], b: [Float]), _ s: ConvolutionShape, tile: WinogradTile,
                     relu: Bool = false, threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
        d.x.withUnsafeBufferPointer { xb in
            d.w.withUnsafeBufferPointer { wb in
                d.b.withUnsafeBufferPointer { bb in
                    y.withUnsafeMutableBufferPointer { yb in
                        Winograd.run(xb.baseAddress!, wb.baseAddress!, tile: tile, bias: bb.baseAddress, yb.baseAddress!, s,
                                     relu: relu, threads: threads)
                    }
                }
            }
        }
        return y
    }

    /// The inference path with filters packed once (`PackedFilters`): Winograd with the packed-filter
    /// GEMM when `tile` is given, else the packed direct convolution.
    func runPacked(_ d: (x: [Float], w: [Float], b: [Float]), _ s: ConvolutionShape, tile: WinogradTile?, threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
        var w = d.w
        let packed = PackedFilters(taking: &w, filters: s.filters, columns: s.columnRows)
        d.x.withUnsafeBufferPointer { xb in
            d.b.withUnsafeBufferPointer { bb in
                y.withUnsafeMutableBufferPointer { yb in
                    if let tile {
                        packed.withPointer {
                            Winograd.run(xb.baseAddress!, $0, tile: tile, bias: bb.baseAddress, yb.baseAddress!, s, relu: false,
                                         threads: threads, filtersPacked: true)
                        }
                    } else {
                        ConvolutionForward.runPacked(xb.baseAddress!, packed, bias: bb.baseAddress, yb.baseAddress!, s,
                                                     relu: false, threads: threads)
                    }
                }
            }
        }
        return y
    }

    func runDirect(_ d: (x: [Float], w: [Float], b: [Float]), _ s: ConvolutionShape, threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
        d.x.withUnsafeBufferPointer { xb in
            d.w.withUnsafeBufferPointer { wb in
                d.b.withUnsafeBufferPointer { bb in
                    y.withUnsafeMutableBufferPointer { yb in
                        ConvolutionForward.run(xb.baseAddress!, wb.baseAddress!, bias: bb.baseAddress, yb.baseAddress!, s,
                                               relu: false, threads: threads)
                    }
                }
            }
        }
        return y
    }

    /// (max |y - ref|, that over max |ref|).
    func error(_ y: [Float], _ ref: [Double]) -> (abs: Double, rel: Double) {
        XCTAssertEqual(y.count, ref.count)
        let worst = zip(y, ref).map { abs(Double($0) - $1) }.max() ?? 0
        let scale = ref.map(abs).max() ?? 0
        return (worst, worst / max(scale, 1e-30))
    }

    /// Every tile size and threads setting against float64, on shapes with partial edge tiles
    /// (odd sizes), no padding, and more tiles than the thin-GEMM threshold.
    func testMatchesFloat64Reference() {
        let cases = [Case(batch: 1, channels: 3, filters: 5, height: 7, width: 9, pad: 1),
                     Case(batch: 2, channels: 4, filters: 6, height: 10, width: 10, pad: 0),
                     Case(batch: 3, channels: 8, filters: 7, height: 13, width: 11, pad: 1),
                     Case(batch: 1, channels: 2, filters: 3, height: 3, width: 3, pad: 0),
                     Case(batch: 2, channels: 5, filters: 4, height: 40, width: 36, pad: 1),
                     // More than one block of 8 channels/filters, with a partial last block.
                     Case(batch: 2, channels: 13, filters: 19, height: 9, width: 15, pad: 1)]
        for (i, c) in cases.enumerated() {
            let s = shape(c), d = data(c, seed: UInt64(10 * i + 1))
            let ref = reference(d.x, d.w, d.b, s)
            let direct = error(runDirect(d, s, threads: 2), ref)
            for tile in [WinogradTile.f2x2, .f4x4] {
                let one = runWinograd(d, s, tile: tile, threads: 1)
                let e = error(one, ref)
                // Within a few float roundings of the sum, as the direct path is (which is ~1e-7 here).
                XCTAssertLessThan(e.rel, 1e-5, "\(tile) \(c): winograd \(e), direct \(direct)")
                XCTAssertEqual(runWinograd(d, s, tile: tile, threads: 2), one, "\(tile) \(c): same bits with 1 and 2 threads")
                let relu = runWinograd(d, s, tile: tile, relu: true, threads: 2)
                XCTAssertEqual(relu, one.map { max($0, 0) }, "\(tile) \(c): fused ReLU")
            }
        }
    }

    /// MA-Net's stride-1 3x3 layer shapes (batch 1): prints both paths' error against float64
    /// (the numbers in docs/PERFORMANCE.md) and holds F(4x4) within 1e-5 of max |y|.
    func testErrorOnMANetLayerShapes() {
        let cases = [Case(batch: 1, channels: 64, filters: 64, height: 56, width: 56, pad: 1),
                     Case(batch: 1, channels: 128, filters: 128, height: 28, width: 28, pad: 1),
                     Case(batch: 1, channels: 256, filters: 256, height: 14, width: 14, pad: 1),
                     Case(batch: 1, channels: 256, filters: 256, height: 7, width: 7, pad: 1),
                     Case(batch: 1, channels: 512, filters: 512, height: 7, width: 7, pad: 1)]
        for (i, c) in cases.enumerated() {
            let s = shape(c), d = data(c, seed: UInt64(100 + i))
            let ref = reference(d.x, d.w, d.b, s)
            let direct = error(runDirect(d, s, threads: 2), ref)
            let f2 = error(runWinograd(d, s, tile: .f2x2, threads: 2), ref)
            let f4 = error(runWinograd(d, s, tile: .f4x4, threads: 2), ref)
            print(String(format: "winograd error vs float64, %d->%d %dx%d: direct %.2e (rel %.2e), F(2x2) %.2e (rel %.2e), F(4x4) %.2e (rel %.2e)",
                         c.channels, c.filters, c.height, c.width, direct.abs, direct.rel, f2.abs, f2.rel, f4.abs, f4.rel))
            XCTAssertLessThan(f2.rel, 1e-5, "F(2x2) \(c)")
            XCTAssertLessThan(f4.rel, 1e-5, "F(4x4) \(c)")
            // The same with filters packed once (inference): the packed-filter GEMM.
            let pDirect = error(runPacked(d, s, tile: nil, threads: 2), ref)
            let pf2 = error(runPacked(d, s, tile: .f2x2, threads: 2), ref)
            let pf4 = error(runPacked(d, s, tile: .f4x4, threads: 2), ref)
            print(String(format: "  packed filters: direct rel %.2e, F(2x2) rel %.2e, F(4x4) rel %.2e", pDirect.rel, pf2.rel, pf4.rel))
            XCTAssertLessThan(pDirect.rel, 1e-6, "packed direct \(c)")
            XCTAssertLessThan(pf2.rel, 1e-5, "packed F(2x2) \(c)")
            XCTAssertLessThan(pf4.rel, 1e-5, "packed F(4x4) \(c)")
        }
    }

    /// Training's 7x7 layers at batch 8 and 16 (32 and 64 F(4x4) tiles): F(4x4) over filters packed
    /// per call (`WinogradPath.packsF4x4Filters`) against float64, next to F(2x2) and the direct
    /// path as training ran them before (filters as written): printed (docs/PERFORMANCE.md),
    /// F(4x4) held to 1e-5 of max |y| like every Winograd tile.
    func testTrainingF4x4On7x7PlanesAgainstFloat64() {
        let cases = [Case(batch: 16, channels: 256, filters: 256, height: 7, width: 7, pad: 1),
                     Case(batch: 8, channels: 512, filters: 512, height: 7, width: 7, pad: 1),
                     Case(batch: 16, channels: 128, filters: 128, height: 7, width: 7, pad: 1)]
        for (i, c) in cases.enumerated() {
            let s = shape(c), d = data(c, seed: UInt64(300 + i))
            let ref = reference(d.x, d.w, d.b, s)
            let direct = error(runDirect(d, s, threads: 2), ref)
            let f2 = error(runWinograd(d, s, tile: .f2x2, threads: 2), ref)
            let f4 = error(runPacked(d, s, tile: .f4x4, threads: 2), ref)
            print(String(format: "training 7x7 vs float64, %d->%d x%d: direct rel %.2e, F(2x2) rel %.2e, F(4x4) packed rel %.2e",
                         c.channels, c.filters, c.batch, direct.rel, f2.rel, f4.rel))
            XCTAssertLessThan(f4.rel, 1e-5, "F(4x4) \(c)")
        }
    }

    /// Few tiles with packed filters (batch 1's 7x7 planes): F(2x2) with the filters transformed
    /// chunk by chunk inside the GEMM loop. Against float64, against the same convolution from
    /// filters transformed beforehand, the same bits for any thread count, the fused ReLU, and
    /// which shapes take it.
    func testFiltersTransformedInChunks() {
        let cases = [Case(batch: 1, channels: 64, filters: 48, height: 12, width: 12, pad: 1),
                     Case(batch: 1, channels: 256, filters: 256, height: 7, width: 7, pad: 1),
                     Case(batch: 2, channels: 128, filters: 96, height: 10, width: 11, pad: 0)]
        for (i, c) in cases.enumerated() {
            let s = shape(c), d = data(c, seed: UInt64(300 + i))
            XCTAssertTrue(Winograd.transformsInChunks(s, tile: .f2x2), "\(c)")
            XCTAssertEqual(WinogradPath(tiles: [.f4x4, .f2x2], minimumChannels: 16).tile(for: s, filtersPacked: true), .f2x2, "\(c)")
            XCTAssertNil(WinogradPath(tiles: [.f4x4, .f2x2], minimumChannels: 16).tile(for: s), "\(c): not without packed filters")
            let ref = reference(d.x, d.w, d.b, s)
            var w = d.w
            let packed = PackedFilters(taking: &w, filters: s.filters, columns: s.columnRows)
            func run(threads: Int, relu: Bool = false, transformed: [Float]? = nil) -> [Float] {
                var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
                d.x.withUnsafeBufferPointer { xb in
                    d.b.withUnsafeBufferPointer { bb in
                        (transformed ?? []).withUnsafeBufferPointer { tb in
                            y.withUnsafeMutableBufferPointer { yb in
                                packed.withPointer {
                                    Winograd.run(xb.baseAddress!, $0, tile: .f2x2, transformed: transformed == nil ? nil : tb.baseAddress,
                                                 bias: bb.baseAddress, yb.baseAddress!, s, relu: relu, threads: threads,
                                                 filtersPacked: true)
                                }
                            }
                        }
                    }
                }
                return y
            }
            let one = run(threads: 1)
            let e = error(one, ref)
            XCTAssertLessThan(e.rel, 1e-5, "\(c): \(e)")
            for threads in [2, 3] { XCTAssertEqual(run(threads: threads), one, "\(c): same bits on \(threads) threads") }
            XCTAssertEqual(run(threads: 2, relu: true), one.map { max($0, 0) }, "\(c): fused ReLU")
            let kept = packed.withPointer {
                Winograd.transformFilters($0, filters: s.filters, channels: s.channels, tile: .f2x2, threads: 1, packed: true)
            }
            // The same products summed over chunks of channels instead of passes of 256: a few roundings apart.
            let fromKept = run(threads: 2, transformed: kept)
            XCTAssertLessThan(error(fromKept, ref).rel, 1e-5, "\(c)")
            let scale = ref.map(abs).max() ?? 1
            XCTAssertLessThan(zip(one, fromKept).map { abs($0 - $1) }.max() ?? 0, Float(scale) * 2e-6, "\(c)")
        }
        // The chunk transform (16 filters at a time) gives the same bits as the transform of all
        // filters at once (8 at a time), both tiles, every instruction set.
        for tile in [WinogradTile.f2x2, .f4x4] {
            let (C, M) = (64, 32), points = tile.alpha * tile.alpha
            var w = pseudoRandom(M * C * 9, seed: 77)
            let packed = PackedFilters(taking: &w, filters: M, columns: C * 9)
            let all = packed.withPointer { Winograd.transformFilters($0, filters: M, channels: C, tile: tile, threads: 1, packed: true) }
            for isa in [KernelISA.avx512, .avx2, .portable] {
                var chunk = [Float](repeating: .nan, count: points * C * 16)
                packed.withPointer { wp in
                    chunk.withUnsafeMutableBufferPointer {
                        manet_winograd_filter_channels(isa.code, Int32(tile.alpha - 2), wp, C, 1, 0, C, $0.baseAddress!, C * 16)
                    }
                }
                for p in 0..<points {
                    XCTAssertEqual(Array(chunk[p * C * 16..<(p + 1) * C * 16]).map(\.bitPattern),
                                   Array(all[p * M * C + C * 16..<p * M * C + 2 * C * 16]).map(\.bitPattern),
                                   "\(tile), \(isa): point \(p), filter block 1")
                }
            }
        }
        // Not taken: channels not a multiple of the chunk, as many tiles as filters, too many
        // tiles, a small layer saving less than 2x (128->128 7x7: direct).
        XCTAssertFalse(Winograd.transformsInChunks(shape(Case(batch: 1, channels: 128, filters: 128, height: 7, width: 7, pad: 1)), tile: .f2x2))
        XCTAssertNil(WinogradPath(tiles: [.f4x4, .f2x2]).tile(for: shape(Case(batch: 1, channels: 128, filters: 128, height: 7, width: 7, pad: 1)), filtersPacked: true))
        XCTAssertFalse(Winograd.transformsInChunks(shape(Case(batch: 1, channels: 96, filters: 48, height: 12, width: 12, pad: 1)), tile: .f2x2))
        XCTAssertFalse(Winograd.transformsInChunks(shape(Case(batch: 1, channels: 64, filters: 32, height: 12, width: 12, pad: 1)), tile: .f2x2))
        XCTAssertFalse(Winograd.transformsInChunks(shape(Case(batch: 5, channels: 64, filters: 96, height: 7, width: 7, pad: 1)), tile: .f2x2))
        // MA-Net at batch 1: the 256- and 512-channel 7x7 layers take it (F(2x2) only because
        // of it), the 64-channel 14x14 ones too (F(2x2) by their 49 tiles anyway).
        XCTAssertTrue(Winograd.transformsInChunks(shape(Case(batch: 1, channels: 64, filters: 64, height: 14, width: 14, pad: 1)), tile: .f2x2))
        let path = WinogradPath(tiles: [.f4x4, .f2x2])
        XCTAssertEqual(path.tile(for: shape(Case(batch: 1, channels: 512, filters: 512, height: 7, width: 7, pad: 1)), filtersPacked: true), .f2x2)
        XCTAssertEqual(path.tile(for: shape(Case(batch: 1, channels: 64, filters: 64, height: 14, width: 14, pad: 1)), filtersPacked: true), .f2x2)
    }

    /// The chunked order's GEMMs on every instruction set (AVX-512 takes 16 columns at a time,
    /// AVX2 6, portable scalar): the same bits for each and for 1 and 2 threads, and within
    /// float64's limit; tile counts giving whole 16-column groups (16: MA-Net's 7x7 planes), a
    /// lone last column (49: its 14x14 ones; 25), 17 (no 16-group leaving one column alone),
    /// 36 and 40 (remainders of 4 and 8 over two images).
    func testChunkedGEMMsGiveTheSameBitsOnEveryInstructionSet() {
        let cases = [Case(batch: 1, channels: 256, filters: 256, height: 7, width: 7, pad: 1),
                     Case(batch: 1, channels: 64, filters: 64, height: 14, width: 14, pad: 1),
                     Case(batch: 1, channels: 64, filters: 48, height: 10, width: 9, pad: 1),
                     Case(batch: 1, channels: 64, filters: 32, height: 2, width: 34, pad: 1),
                     Case(batch: 1, channels: 64, filters: 48, height: 12, width: 12, pad: 1),
                     Case(batch: 2, channels: 128, filters: 96, height: 10, width: 11, pad: 0)]
        for (i, c) in cases.enumerated() {
            let s = shape(c), d = data(c, seed: UInt64(400 + i))
            XCTAssertTrue(Winograd.transformsInChunks(s, tile: .f2x2), "\(c)")
            let ref = reference(d.x, d.w, d.b, s)
            var w = d.w
            let packed = PackedFilters(taking: &w, filters: s.filters, columns: s.columnRows)
            var first: [Float]?
            for isa in [KernelISA.avx512, .avx2, .portable] {
                for threads in [1, 2] {
                    var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
                    d.x.withUnsafeBufferPointer { xb in
                        d.b.withUnsafeBufferPointer { bb in
                            y.withUnsafeMutableBufferPointer { yb in
                                packed.withPointer {
                                    Winograd.run(xb.baseAddress!, $0, tile: .f2x2, bias: bb.baseAddress, yb.baseAddress!, s,
                                                 relu: false, threads: threads, filtersPacked: true,
                                                 options: KernelOptions(isa: isa))
                                }
                            }
                        }
                    }
                    XCTAssertTrue(y.allSatisfy(\.isFinite), "\(c), \(isa), \(threads) threads: every output written")
                    let e = error(y, ref)
                    XCTAssertLessThan(e.rel, 1e-5, "\(c), \(isa), \(threads) threads: \(e)")
                    if let first {
                        let differing = zip(y, first).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "\(c), \(isa), \(threads) threads: same bits as AVX-512 on 1 thread")
                    } else {
                        first = y
                    }
                }
            }
        }
    }

    /// The banded order (`Winograd.runInBands`, inference's packed filters): against float64 on
    /// MA-Net's 64-channel F(4x4) layers (56x56 at batch 1, 14x14 at batch 4) and on odd shapes
    /// (partial edge tiles, channel counts not a multiple of 8, more than 256 channels, no
    /// padding, F(2x2)), the same bits for 1, 2 and 3 threads, every instruction set and any band
    /// size, the fused ReLU, close to the point order's result, and which calls take it.
    func testBandedOrder() {
        let cases: [(Case, WinogradTile)] = [
            (Case(batch: 1, channels: 64, filters: 64, height: 56, width: 56, pad: 1), .f4x4),
            (Case(batch: 4, channels: 64, filters: 64, height: 14, width: 14, pad: 1), .f4x4),
            (Case(batch: 2, channels: 13, filters: 32, height: 19, width: 23, pad: 1), .f4x4),
            (Case(batch: 3, channels: 130, filters: 48, height: 15, width: 17, pad: 0), .f4x4),
            (Case(batch: 1, channels: 300, filters: 16, height: 20, width: 21, pad: 1), .f4x4),
            (Case(batch: 1, channels: 72, filters: 64, height: 17, width: 18, pad: 1), .f2x2)]
        for (i, (c, tile)) in cases.enumerated() {
            let s = shape(c), d = data(c, seed: UInt64(500 + i))
            XCTAssertTrue(Winograd.takesBands(s, tile: tile), "\(c)")
            XCTAssertFalse(Winograd.takesBands(s, tile: tile, options: KernelOptions(winogradBandTiles: 0)), "\(c)")
            let ref = reference(d.x, d.w, d.b, s)
            var w = d.w
            let packed = PackedFilters(taking: &w, filters: s.filters, columns: s.columnRows)
            func run(threads: Int, isa: KernelISA = .automatic, bandTiles: Int = 28, relu: Bool = false) -> [Float] {
                var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
                d.x.withUnsafeBufferPointer { xb in
                    d.b.withUnsafeBufferPointer { bb in
                        y.withUnsafeMutableBufferPointer { yb in
                            packed.withPointer {
                                Winograd.run(xb.baseAddress!, $0, tile: tile, bias: bb.baseAddress, yb.baseAddress!, s, relu: relu,
                                             threads: threads, filtersPacked: true,
                                             options: KernelOptions(isa: isa, winogradBandTiles: bandTiles))
                            }
                        }
                    }
                }
                return y
            }
            let one = run(threads: 1)
            XCTAssertTrue(one.allSatisfy(\.isFinite), "\(c): every output written")
            let e = error(one, ref)
            print("banded \(tile) \(c): max abs error \(e.abs), relative to max |y| \(e.rel)")
            XCTAssertLessThan(e.rel, 1e-5, "\(c): \(e)")
            func same(_ y: [Float], _ what: String) {
                let differing = zip(y, one).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(c), \(what): same bits as 1 thread, bands of 28 tiles")
            }
            for threads in [2, 3] { same(run(threads: threads), "\(threads) threads") }
            for isa in [KernelISA.avx512, .avx2, .portable] {
                for threads in [1, 2] { same(run(threads: threads, isa: isa), "\(isa), \(threads) threads") }
            }
            for bandTiles in [1, 7, 1000] { same(run(threads: 2, bandTiles: bandTiles), "bands of \(bandTiles) tiles") }
            XCTAssertEqual(run(threads: 2, relu: true), one.map { max($0, 0) }, "\(c): fused ReLU")
            let pointOrder = run(threads: 2, bandTiles: 0)
            XCTAssertLessThan(error(pointOrder, ref).rel, 1e-5, "\(c)")
            let scale = ref.map(abs).max() ?? 1
            XCTAssertLessThanOrEqual(zip(one, pointOrder).map { abs($0 - $1) }.max() ?? 0, Float(scale) * 1e-6, "\(c)")
        }
        // Not taken: fewer tiles than filters (the filter-block order: batch 1's 128->128 28x28),
        // transformed filters past L2 (128->128 28x28 at batch 16), filters not a multiple of 16,
        // calls that transform their filters in chunks (batch 1's 7x7 and 14x14 planes).
        XCTAssertFalse(Winograd.takesBands(shape(Case(batch: 1, channels: 64, filters: 64, height: 28, width: 28, pad: 1)), tile: .f4x4))
        XCTAssertFalse(Winograd.takesBands(shape(Case(batch: 1, channels: 128, filters: 128, height: 28, width: 28, pad: 1)), tile: .f4x4))
        XCTAssertFalse(Winograd.takesBands(shape(Case(batch: 16, channels: 128, filters: 128, height: 28, width: 28, pad: 1)), tile: .f4x4))
        XCTAssertTrue(Winograd.takesBands(shape(Case(batch: 16, channels: 64, filters: 64, height: 56, width: 56, pad: 1)), tile: .f4x4))
        XCTAssertFalse(Winograd.takesBands(shape(Case(batch: 1, channels: 64, filters: 24, height: 28, width: 28, pad: 1)), tile: .f4x4))
        XCTAssertFalse(Winograd.takesBands(shape(Case(batch: 1, channels: 512, filters: 512, height: 7, width: 7, pad: 1)), tile: .f2x2))
        XCTAssertFalse(Winograd.takesBands(shape(Case(batch: 1, channels: 64, filters: 64, height: 14, width: 14, pad: 1)), tile: .f2x2))
    }

    /// Strided, dilated and grouped 3x3 convolutions keep the direct path.
    func testOnlyStrideOneUngrouped3x3() {
        let g = WindowGeometry(input: [8, 8], kernel: [3, 3], strides: [2, 2], padsBegin: [1, 1], padsEnd: [1, 1],
                               dilations: [1, 1], output: [4, 4])
        XCTAssertFalse(Winograd.applies(ConvolutionShape(batch: 1, channels: 2, filters: 2, group: 1, geometry: g)))
        var s = shape(Case(batch: 1, channels: 4, filters: 4, height: 8, width: 8, pad: 1))
        XCTAssertTrue(Winograd.applies(s))
        s.group = 2
        XCTAssertFalse(Winograd.applies(s))
    }
}
