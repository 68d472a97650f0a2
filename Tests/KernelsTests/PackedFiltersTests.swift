// The packed-filter GEMM (Kernels/PackedFilters.swift, _CKernels/packed_gemm.c): packing round
// trips, products against float64 for every B and output layout it serves, the convolution over
// it against the OpenBLAS path, the same bits for any thread count.

import Foundation
import _CKernels
@testable import Kernels
import TestSupport
import XCTest

final class PackedFiltersTests: XCTestCase {
    func testPackingRoundTripsInPlaceAndPadded() {
        for (filters, columns) in [(48, 37), (20, 9), (16, 1), (1, 5)] {
            let w = pseudoRandom(filters * columns, seed: UInt64(filters))
            let copied = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: filters, columns: columns) }
            var taken = w
            let packed = PackedFilters(taking: &taken, filters: filters, columns: columns)
            XCTAssertTrue(taken.isEmpty, "the buffer is taken")
            XCTAssertEqual(copied.unpacked(), w)
            XCTAssertEqual(packed.unpacked(), w)
            XCTAssertEqual(packed.count, (filters + 15) / 16 * 16 * columns, "rows padded to a block of 16")
            // Element (m, k) sits at (m / 16) * K * 16 + k * 16 + m % 16.
            let m = filters - 1, k = columns - 1
            packed.withPointer { XCTAssertEqual($0[(m / 16) * columns * 16 + k * 16 + m % 16], w[m * columns + k]) }
        }
    }

    /// Training's per-call packings: split over threads, and the flipped filters packed in one
    /// pass, give the floats of the one-thread packing and of packing `flippedFilters`' output.
    func testThreadedAndFlippingPackingsMatchTheSerialOnes() {
        for (filters, channels, volume) in [(48, 32, 9), (7, 40, 9), (20, 17, 49), (16, 1, 9), (33, 64, 1)] {
            let w = pseudoRandom(filters * channels * volume, seed: UInt64(filters + channels))
            let columns = channels * volume
            let serial = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: filters, columns: columns) }
            let flippedSerial = w.withUnsafeBufferPointer { wb in
                PackedFilters(ConvolutionBackward.flippedFilters(wb.baseAddress!, filters: filters, channels: channels,
                                                                 volume: volume, threads: 1),
                              filters: channels, columns: filters * volume)
            }
            for threads in [1, 2, 3] {
                let packed = w.withUnsafeBufferPointer {
                    PackedFilters($0.baseAddress!, filters: filters, columns: columns, threads: threads)
                }
                XCTAssertEqual(packed.storage.map(\.bitPattern), serial.storage.map(\.bitPattern), "\(filters)x\(columns), \(threads) threads")
                let flipped = w.withUnsafeBufferPointer {
                    PackedFilters(flipping: $0.baseAddress!, filters: filters, channels: channels, volume: volume, threads: threads)
                }
                XCTAssertEqual(flipped.filters, channels)
                XCTAssertEqual(flipped.columns, filters * volume)
                XCTAssertEqual(flipped.storage.map(\.bitPattern), flippedSerial.storage.map(\.bitPattern),
                               "flipped \(filters)x\(channels)x\(volume), \(threads) threads")
            }
        }
    }

    /// out(m, n) for every image from the definition, in float64.
    func reference(_ a: [Float], filters: Int, k: Int, b: (Int, Int, Int) -> Float, n: Int, images: Int,
                   bias: [Float]?, relu: Bool) -> [[Double]] {
        (0..<images).map { i in
            var out = [Double](repeating: 0, count: filters * n)
            for m in 0..<filters {
                for j in 0..<n {
                    var sum = 0.0
                    for kk in 0..<k { sum += Double(a[m * k + kk]) * Double(b(i, kk, j)) }
                    sum += Double(bias?[m] ?? 0)
                    out[m * n + j] = relu ? max(sum, 0) : sum
                }
            }
            return out
        }
    }

    /// `manet_packed_gemm` (B read where it lies, as Winograd's GEMMs read it) over row-block
    /// ranges, one per worker.
    func multiplyInPlace(_ w: PackedFilters, _ b: UnsafePointer<Float>, bk: Int, bn: Int, n: Int, images: Int, bi: Int,
                         _ c: UnsafeMutablePointer<Float>, cm: Int, cn: Int, ci: Int, bias: UnsafePointer<Float>?,
                         relu: Bool, threads: Int) {
        let blocks = (w.filters + 15) / 16, workers = min(threads, blocks)
        w.withPointer { a in
            parallelFor(workers, threads: workers) { t in
                manet_packed_gemm(KernelISA.automatic.code, a, w.filters, w.columns, t * blocks / workers, (t + 1) * blocks / workers, b, bk, bn, n,
                                  images, bi, c, cm, cn, ci, bias, relu ? 1 : 0)
            }
        }
    }

    /// Every layout pair the convolution paths use, remainders of 1...5 columns, a partial last
    /// block of rows, wide planes (> 384 columns, chunked) and narrow ones.
    func testProductMatchesFloat64ForEveryLayout() {
        for (filters, k, n, images) in [(32, 70, 49, 2), (20, 9, 13, 1), (16, 300, 7, 3), (48, 27, 500, 2), (17, 5, 1, 1)] {
            let a = pseudoRandom(filters * k, seed: 11)
            let bias = pseudoRandom(filters, seed: 12)
            let packed = a.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: filters, columns: k) }
            // B [images][K][N] (rows contiguous) and the same values as [images][N][K] (columns contiguous).
            let rowsB = pseudoRandom(images * k * n, seed: 13)
            var colsB = [Float](repeating: 0, count: rowsB.count)
            for i in 0..<images { for kk in 0..<k { for j in 0..<n { colsB[(i * n + j) * k + kk] = rowsB[(i * k + kk) * n + j] } } }
            for relu in [false, true] {
                let expected = reference(a, filters: filters, k: k, b: { rowsB[($0 * k + $1) * n + $2] }, n: n, images: images,
                                         bias: bias, relu: relu)
                let scale = max(1, expected.joined().map(abs).max()!)
                for layout in ["rows", "columns", "packed"] {
                    for threads in [1, 2] {
                        // Output [images][M][N] (NCHW) for rows/packed, [images][N][M] for columns.
                        var out = [Float](repeating: .nan, count: images * filters * n)
                        let mn = layout == "columns"
                        bias.withUnsafeBufferPointer { bb in
                            out.withUnsafeMutableBufferPointer { ob in
                                let (cm, cn) = mn ? (1, filters) : (n, 1)
                                switch layout {
                                case "rows":
                                    multiplyInPlace(packed, rowsB, bk: n, bn: 1, n: n, images: images, bi: k * n, ob.baseAddress!,
                                                    cm: cm, cn: cn, ci: filters * n, bias: bb.baseAddress, relu: relu, threads: threads)
                                case "columns":
                                    multiplyInPlace(packed, colsB, bk: 1, bn: k, n: n, images: images, bi: k * n, ob.baseAddress!,
                                                    cm: cm, cn: cn, ci: filters * n, bias: bb.baseAddress, relu: relu, threads: threads)
                                default:
                                    packed.multiplyPackingColumns(rowsB, bk: n, bn: 1, n: n, images: images, bi: k * n,
                                                                  ob.baseAddress!, cm: cm, cn: cn, ci: filters * n,
                                                                  bias: bb.baseAddress, relu: relu, threads: threads)
                                }
                            }
                        }
                        var worst = 0.0
                        for i in 0..<images {
                            for m in 0..<filters {
                                for j in 0..<n {
                                    let got = out[i * filters * n + (mn ? j * filters + m : m * n + j)]
                                    worst = max(worst, abs(Double(got) - expected[i][m * n + j]) / scale)
                                    if relu { XCTAssertGreaterThanOrEqual(got, 0) }
                                }
                            }
                        }
                        XCTAssertLessThan(worst, 1e-6, "M \(filters) K \(k) N \(n) x\(images) \(layout) relu \(relu) threads \(threads)")
                    }
                }
            }
        }
    }

    /// A NaN sum stays NaN through the fused ReLU, like Relu's max(x, 0).
    func testReluKeepsNaN() {
        var a = [Float](repeating: 1, count: 16 * 2)
        a[3 * 2] = .nan
        let packed = a.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: 16, columns: 2) }
        let b: [Float] = [-1, 0.5, -2, 0.25]  // [K = 2][N = 2]
        var out = [Float](repeating: 7, count: 32)
        out.withUnsafeMutableBufferPointer {
            packed.multiplyPackingColumns(b, bk: 2, bn: 1, n: 2, $0.baseAddress!, cm: 2, cn: 1, bias: nil, relu: true, threads: 1)
        }
        XCTAssertTrue(out[3 * 2].isNaN && out[3 * 2 + 1].isNaN)
        XCTAssertEqual(out[0], 0)  // -1 - 2 = -3 -> 0
        XCTAssertEqual(out[1], 0.75)
    }

    func geometry(side: Int, kernel: Int, stride: Int, pad: Int) -> WindowGeometry {
        let out = (side + 2 * pad - kernel) / stride + 1
        return WindowGeometry(input: [side, side], kernel: [kernel, kernel], strides: [stride, stride], padsBegin: [pad, pad],
                              padsEnd: [pad, pad], dilations: [1, 1], output: [out, out])
    }

    /// `manet_im2col_packed` against the definition: interior tiles (one output row, every tap
    /// inside the image: unfolded as vector rows, stride 1 and 2) and the rest (per position), for
    /// two images, in pieces (each piece's last row is stored exactly), nothing past the buffer.
    func testUnfoldingMatchesTheDefinition() {
        let cases: [(channels: Int, side: Int, kernel: Int, stride: Int, pad: Int)] = [
            (3, 40, 7, 2, 3), (4, 20, 3, 1, 1), (5, 23, 3, 2, 1), (6, 16, 1, 2, 0), (2, 9, 3, 1, 0), (8, 7, 3, 1, 1),
        ]
        for c in cases {
            let g = geometry(side: c.side, kernel: c.kernel, stride: c.stride, pad: c.pad)
            var window = ConvolutionForward.packedWindow(ConvolutionShape(batch: 2, channels: c.channels, filters: 1,
                                                                           group: 1, geometry: g))
            let plane = g.inputPlane, n = g.outputPlane, tiles = (n + 5) / 6, kk = c.kernel * c.kernel
            let rows = c.channels * kk, x = pseudoRandom(2 * c.channels * plane, seed: 31)
            let size = manet_packed_columns_size(rows, n, 2)
            var bp = [Float](repeating: .nan, count: size + 8)
            let items = 2 * tiles, cuts = [0, items / 3, items / 3 + 1, items]
            x.withUnsafeBufferPointer { xb in
                bp.withUnsafeMutableBufferPointer { b in
                    for i in 0..<(cuts.count - 1) {
                        manet_im2col_packed(KernelISA.automatic.code, &window, xb.baseAddress!, c.channels * plane, cuts[i], cuts[i + 1], b.baseAddress!)
                    }
                }
            }
            var wrong = 0
            for item in 0..<items {
                let image = item / tiles, q = item % tiles
                for k in 0..<rows {
                    let ch = k / kk, kh = k % kk / c.kernel, kw = k % c.kernel
                    for j in 0..<6 {
                        let p = q * 6 + j
                        var expected: Float = 0
                        if p < n {
                            let ih = p / g.outW * c.stride - c.pad + kh, iw = p % g.outW * c.stride - c.pad + kw
                            if ih >= 0 && ih < c.side && iw >= 0 && iw < c.side {
                                expected = x[(image * c.channels + ch) * plane + ih * c.side + iw]
                            }
                        }
                        if bp[(item * rows + k) * 6 + j].bitPattern != expected.bitPattern { wrong += 1 }
                    }
                }
            }
            XCTAssertEqual(wrong, 0, "\(c)")
            XCTAssertTrue(bp[size...].allSatisfy(\.isNaN), "nothing written past the blocks: \(c)")
        }
    }

    /// The packed convolution against the OpenBLAS one on MA-Net's kinds of layers (3x3 on 7x7,
    /// stride 2, 1x1, the 7x7/2 stem on a wide plane), batch 1 and 3; 1 and 2 threads give the same bits
    /// (at batch 1, 2 threads split the image by output columns).
    func testConvolutionMatchesTheOpenBLASPath() {
        let cases: [(channels: Int, filters: Int, side: Int, kernel: Int, stride: Int, pad: Int)] = [
            (64, 32, 7, 3, 1, 1), (32, 48, 14, 3, 2, 1), (32, 64, 7, 1, 1, 0), (16, 32, 14, 1, 2, 0), (3, 16, 64, 7, 2, 3),
        ]
        for c in cases {
            // Batch 1 reads the input in place (`runImplicit`), batch 3 unfolds it: the same sums
            // in the same order, so image 0 gets the same bits either way.
            var imageZero: [Float] = []
            for batch in [1, 3] {
                let g = geometry(side: c.side, kernel: c.kernel, stride: c.stride, pad: c.pad)
                let s = ConvolutionShape(batch: batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
                let x = pseudoRandom(batch * c.channels * g.inputPlane, seed: 21)
                let w = pseudoRandom(c.filters * s.columnRows, seed: 22)
                let bias = pseudoRandom(c.filters, seed: 23)
                let count = batch * c.filters * g.outputPlane
                var expected = [Float](repeating: 0, count: count)
                x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
                    expected.withUnsafeMutableBufferPointer {
                        ConvolutionForward.run(xb.baseAddress!, wb.baseAddress!, bias: bb.baseAddress, $0.baseAddress!, s,
                                               relu: true, threads: 2)
                    }
                } } }
                var taken = w
                let packed = PackedFilters(taking: &taken, filters: c.filters, columns: s.columnRows)
                var results: [[Float]] = []
                // Batch 1 on several threads splits by columns; 9 tiles (7x7) over 2 or 4 threads
                // leave one tile that the threads split by filter blocks, over 3 threads none.
                for threads in [1, 2, 3, 4] {
                    var y = [Float](repeating: .nan, count: count)
                    x.withUnsafeBufferPointer { xb in bias.withUnsafeBufferPointer { bb in
                        y.withUnsafeMutableBufferPointer {
                            ConvolutionForward.runPacked(xb.baseAddress!, packed, bias: bb.baseAddress, $0.baseAddress!, s,
                                                         relu: true, threads: threads)
                        }
                    } }
                    assertClose(y, expected, rtol: 1e-5, atol: 1e-5)
                    results.append(y)
                }
                for (i, threads) in [2, 3, 4].enumerated() {
                    XCTAssertEqual(results[0], results[i + 1], "same bits for 1 and \(threads) threads: \(c) batch \(batch)")
                }
                if batch == 1 {
                    imageZero = results[0]
                } else {
                    XCTAssertEqual(Array(results[0][..<imageZero.count]), imageZero, "implicit and unfolded: \(c)")
                }
            }
        }
    }

    /// One image read in place (`runImplicit`), its pieces taken by whichever worker is free:
    /// against float64 on MA-Net's kinds of layer (the local branches' 128->128 3x3 on 7x7, a
    /// stride-2 3x3 with odd channel counts and a partial last filter block, a 1x1/2
    /// downsampling, a 7x7/2 stem-like layer on a plane with a partial last tile), split by
    /// columns and by filter blocks, on 1, 2 and 3 threads: the same bits every way.
    func testImplicitPiecesMatchFloat64() {
        let cases: [(channels: Int, filters: Int, side: Int, kernel: Int, stride: Int, pad: Int)] = [
            (128, 128, 7, 3, 1, 1), (67, 40, 15, 3, 2, 1), (64, 128, 14, 1, 2, 0), (3, 64, 41, 7, 2, 3),
        ]
        for c in cases {
            let g = geometry(side: c.side, kernel: c.kernel, stride: c.stride, pad: c.pad)
            let s = ConvolutionShape(batch: 1, channels: c.channels, filters: c.filters, group: 1, geometry: g)
            let x = pseudoRandom(c.channels * g.inputPlane, seed: 81)
            let w = pseudoRandom(c.filters * s.columnRows, seed: 82), bias = pseudoRandom(c.filters, seed: 83)
            let kk = c.kernel * c.kernel, n = g.outputPlane
            let expected = reference(w, filters: c.filters, k: s.columnRows, b: { _, k, j in
                let ch = k / kk, kh = k % kk / c.kernel, kw = k % c.kernel
                let ih = j / g.outW * c.stride - c.pad + kh, iw = j % g.outW * c.stride - c.pad + kw
                return ih >= 0 && ih < c.side && iw >= 0 && iw < c.side ? x[(ch * c.side + ih) * c.side + iw] : 0
            }, n: n, images: 1, bias: bias, relu: false)[0]
            let scale = expected.map(abs).max() ?? 1
            let packed = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: c.filters, columns: s.columnRows) }
            var first: [Float]?
            for split in [ConvolutionSplit.columns, .blocks] {
                for threads in [1, 2, 3] {
                    var y = [Float](repeating: .nan, count: c.filters * n)
                    x.withUnsafeBufferPointer { xb in bias.withUnsafeBufferPointer { bb in
                        y.withUnsafeMutableBufferPointer {
                            ConvolutionForward.runPacked(xb.baseAddress!, packed, bias: bb.baseAddress, $0.baseAddress!, s,
                                                         relu: false, threads: threads,
                                                         options: KernelOptions(convolutionSplit: split))
                        }
                    } }
                    XCTAssertTrue(y.allSatisfy(\.isFinite), "every output written: \(c), \(split), \(threads) threads")
                    let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? .nan
                    XCTAssertLessThanOrEqual(worst / scale, 1e-6, "\(c), \(split), \(threads) threads")
                    if let first {
                        let differing = zip(y, first).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "same bits: \(c), \(split), \(threads) threads")
                    } else {
                        first = y
                    }
                }
            }
        }
    }

    /// 3-D windows take im2col and then the column copy (2-D ones unfold straight into blocks).
    func testThreeDimensionalConvolution() {
        let g = WindowGeometry(input: [4, 5, 6], kernel: [2, 3, 3], strides: [1, 2, 1], padsBegin: [0, 1, 1],
                               padsEnd: [0, 1, 1], dilations: [1, 1, 1], output: [3, 3, 6])
        let s = ConvolutionShape(batch: 2, channels: 5, filters: 18, group: 1, geometry: g)
        let x = pseudoRandom(2 * 5 * g.inputPlane, seed: 51), w = pseudoRandom(18 * s.columnRows, seed: 52)
        var expected = [Float](repeating: 0, count: 2 * 18 * g.outputPlane), y = expected
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                expected.withUnsafeMutableBufferPointer {
                    ConvolutionForward.run(xb.baseAddress!, wb.baseAddress!, bias: nil, $0.baseAddress!, s, relu: false, threads: 2)
                }
            }
            let packed = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: 18, columns: s.columnRows) }
            y.withUnsafeMutableBufferPointer {
                ConvolutionForward.runPacked(xb.baseAddress!, packed, bias: nil, $0.baseAddress!, s, relu: false, threads: 2)
            }
        }
        assertClose(y, expected, rtol: 1e-5, atol: 1e-5)
    }

    /// `runPacked` on 1 and 2 threads against the OpenBLAS path (`ConvolutionForward.run`) for `s`,
    /// without bias or ReLU, inputs and filters from `seed`.
    func assertPackedMatchesOpenBLAS(_ s: ConvolutionShape, seed: UInt64, _ context: String) {
        let g = s.geometry
        let x = pseudoRandom(s.batch * s.channels * g.inputPlane, seed: seed)
        let w = pseudoRandom(s.filters * s.columnRows, seed: seed + 1)
        var expected = [Float](repeating: 0, count: s.batch * s.filters * g.outputPlane)
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                expected.withUnsafeMutableBufferPointer {
                    ConvolutionForward.run(xb.baseAddress!, wb.baseAddress!, bias: nil, $0.baseAddress!, s, relu: false, threads: 1)
                }
            }
            let packed = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: s.filters, columns: s.columnRows) }
            for threads in [1, 2] {
                var y = [Float](repeating: .nan, count: expected.count)
                y.withUnsafeMutableBufferPointer {
                    ConvolutionForward.runPacked(xb.baseAddress!, packed, bias: nil, $0.baseAddress!, s, relu: false,
                                                 threads: threads)
                }
                assertClose(y, expected, rtol: 1e-5, atol: 1e-5, "\(context), batch \(s.batch), \(threads) threads")
            }
        }
    }

    /// Dilated windows with uneven pads, stride 1 and 2, non-square planes, at batch 1 (read in
    /// place, through the padded copy) and 2 (unfolded), 1 and 2 threads: against the OpenBLAS path.
    func testDilatedUnevenlyPaddedConvolution() {
        for stride in [1, 2] {
            let (inH, inW, k, d) = (9, 11, 3, 2)
            let (pt, pl, pb, pr) = (2, 1, 1, 3)
            let outH = (inH + pt + pb - d * (k - 1) - 1) / stride + 1, outW = (inW + pl + pr - d * (k - 1) - 1) / stride + 1
            let g = WindowGeometry(input: [inH, inW], kernel: [k, k], strides: [stride, stride], padsBegin: [pt, pl],
                                   padsEnd: [pb, pr], dilations: [d, d], output: [outH, outW])
            for batch in [1, 2] {
                assertPackedMatchesOpenBLAS(ConvolutionShape(batch: batch, channels: 8, filters: 24, group: 1, geometry: g),
                                            seed: 71, "dilated, stride \(stride)")
            }
        }
    }

    /// A 1x1x1 convolution over a 3-D volume (pointwise, so its planes are copied rather than
    /// unfolded) at batch 1 and 3, 1 and 2 threads: each channel's plane is the whole volume.
    func testThreeDimensionalPointwiseConvolution() {
        let g = WindowGeometry(input: [3, 4, 5], kernel: [1, 1, 1], strides: [1, 1, 1], padsBegin: [0, 0, 0],
                               padsEnd: [0, 0, 0], dilations: [1, 1, 1], output: [3, 4, 5])
        for batch in [1, 3] {
            assertPackedMatchesOpenBLAS(ConvolutionShape(batch: batch, channels: 6, filters: 20, group: 1, geometry: g),
                                        seed: 61, "3-D pointwise")
        }
    }

    /// Winograd with packed filters: transforms them to the same values as from [M, C, 3, 3], and
    /// its results agree with the OpenBLAS path; kept filters give the per-call bits.
    func testWinogradReadsPackedFilters() {
        let g = geometry(side: 7, kernel: 3, stride: 1, pad: 1)
        let s = ConvolutionShape(batch: 2, channels: 24, filters: 32, group: 1, geometry: g)
        let x = pseudoRandom(2 * 24 * 49, seed: 31), w = pseudoRandom(32 * 24 * 9, seed: 32)
        var taken = w
        let packed = PackedFilters(taking: &taken, filters: 32, columns: 24 * 9)
        for tile in [WinogradTile.f2x2, .f4x4] {
            var plain = [Float](repeating: 0, count: 2 * 32 * 49), fromPacked = plain
            x.withUnsafeBufferPointer { xb in
                w.withUnsafeBufferPointer { wb in
                    plain.withUnsafeMutableBufferPointer {
                        Winograd.run(xb.baseAddress!, wb.baseAddress!, tile: tile, bias: nil, $0.baseAddress!, s, relu: false, threads: 2)
                    }
                }
                packed.withPointer { wp in
                    fromPacked.withUnsafeMutableBufferPointer {
                        Winograd.run(xb.baseAddress!, wp, tile: tile, bias: nil, $0.baseAddress!, s, relu: false, threads: 2,
                                     filtersPacked: true)
                    }
                }
            }
            // The packed-filter GEMM sums in another order than OpenBLAS: equal within the
            // rounding of the transforms (WinogradTests' limit against float64: 1e-5 of max |y|).
            let scale = plain.map(abs).max()!
            let worst = zip(fromPacked, plain).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst / scale, 1e-5, "\(tile)")
            let kept = packed.withPointer {
                Winograd.transformFilters($0, filters: 32, channels: 24, tile: tile, threads: 1, packed: true)
            }
            let keptPlain = w.withUnsafeBufferPointer {
                Winograd.transformFilters($0.baseAddress!, filters: 32, channels: 24, tile: tile, threads: 1)
            }
            // Packed filters give each point's [M, C] matrix in 16-row blocks, the same values.
            var blocks = [Float](repeating: 0, count: keptPlain.count)
            for p in 0..<(tile.alpha * tile.alpha) {
                for m in 0..<32 { for c in 0..<24 { blocks[p * 768 + (m / 16) * 24 * 16 + c * 16 + m % 16] = keptPlain[p * 768 + m * 24 + c] } }
            }
            XCTAssertEqual(kept, blocks)
            // Kept (transformed, blocked) filters give the per-call result.
            var fromKept = plain
            x.withUnsafeBufferPointer { xb in
                packed.withPointer { wp in
                    kept.withUnsafeBufferPointer { kb in
                        fromKept.withUnsafeMutableBufferPointer {
                            Winograd.run(xb.baseAddress!, wp, tile: tile, transformed: kb.baseAddress, bias: nil, $0.baseAddress!, s,
                                         relu: false, threads: 1, filtersPacked: true)
                        }
                    }
                }
            }
            XCTAssertEqual(fromKept, fromPacked)
        }
    }

    /// Wide planes on the packed path go through Winograd in chunks of images (transformed inputs
    /// and results within 4 MiB): 64->64 at 48x48, batch 3, is three chunks; the result agrees
    /// with the OpenBLAS path (one chunk) within the transforms' rounding.
    func testWinogradImageChunks() {
        let g = geometry(side: 48, kernel: 3, stride: 1, pad: 1)
        let s = ConvolutionShape(batch: 3, channels: 64, filters: 64, group: 1, geometry: g)
        XCTAssertLessThan(KernelOptions.default.winogradCacheChunkFloats / (36 * 128 * 144), 2, "one image per chunk")
        let x = pseudoRandom(3 * 64 * g.inputPlane, seed: 61).map { ($0 + 1) / 2 }
        let w = pseudoRandom(64 * 64 * 9, seed: 62).map { $0 / 24 }
        var taken = w
        let packed = PackedFilters(taking: &taken, filters: 64, columns: 576)
        var plain = [Float](repeating: 0, count: 3 * 64 * g.outputPlane), chunked = plain
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                plain.withUnsafeMutableBufferPointer {
                    Winograd.run(xb.baseAddress!, wb.baseAddress!, tile: .f4x4, bias: nil, $0.baseAddress!, s, relu: false, threads: 2)
                }
            }
            packed.withPointer { wp in
                chunked.withUnsafeMutableBufferPointer {
                    Winograd.run(xb.baseAddress!, wp, tile: .f4x4, bias: nil, $0.baseAddress!, s, relu: false, threads: 2,
                                 filtersPacked: true)
                }
            }
        }
        let scale = plain.map(abs).max()!
        XCTAssertLessThan(zip(chunked, plain).map { abs($0 - $1) }.max()! / scale, 1e-5)
    }
}
