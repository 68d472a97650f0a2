// Training's wide-plane convolutions read in place (`ConvolutionForward.runImplicitImages`, filters
// packed per call; `ConvolutionBackward.implicitWeightGradient`): the forward, dX (the convolution
// of dY with the filters transposed and flipped) and dW against float64 on MA-Net's 64->64 56x56
// layer, a 7x7/2 stem-like layer and odd shapes (partial tiles and filter blocks, uneven pads);
// the same bits on 1, 2 and 3 threads and in every variant of the kernels; which shapes take
// them, and that the plan and the backward take them only when asked to.

import _CKernels
import Kernels
import TestSupport
import XCTest

final class TrainingImplicitConvolutionTests: XCTestCase {
    struct Case {
        var batch: Int, channels: Int, filters: Int, height: Int, width: Int, kernel: Int, stride: Int
        var top: Int, left: Int, bottom: Int, right: Int
    }

    func shape(_ c: Case) -> ConvolutionShape {
        let outH = (c.height + c.top + c.bottom - c.kernel) / c.stride + 1
        let outW = (c.width + c.left + c.right - c.kernel) / c.stride + 1
        let g = WindowGeometry(input: [c.height, c.width], kernel: [c.kernel, c.kernel], strides: [c.stride, c.stride],
                               padsBegin: [c.top, c.left], padsEnd: [c.bottom, c.right], dilations: [1, 1],
                               output: [outH, outW])
        return ConvolutionShape(batch: c.batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
    }

    static let manet = Case(batch: 2, channels: 64, filters: 64, height: 56, width: 56, kernel: 3, stride: 1,
                            top: 1, left: 1, bottom: 1, right: 1)
    static let stem = Case(batch: 2, channels: 3, filters: 64, height: 75, width: 71, kernel: 7, stride: 2,
                           top: 3, left: 3, bottom: 3, right: 3)
    /// Odd channel and filter counts (a partial last filter block), uneven pads, a partial last tile.
    static let odd = Case(batch: 3, channels: 7, filters: 21, height: 33, width: 37, kernel: 3, stride: 1,
                          top: 2, left: 1, bottom: 0, right: 2)

    /// y[n, m, p] = sum over c, taps of w[m, c, tap] x[n, c, window(p, tap)] + bias[m], in float64.
    func reference(_ x: [Float], _ w: [Float], bias: [Float]?, _ s: ConvolutionShape) -> [Double] {
        let g = s.geometry, k = g.kH
        var y = [Double](repeating: 0, count: s.batch * s.filters * g.outputPlane)
        for n in 0..<s.batch {
            for m in 0..<s.filters {
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        var sum = Double(bias?[m] ?? 0)
                        for c in 0..<s.channels {
                            for kh in 0..<k {
                                let ih = oh * g.sH - g.pH + kh
                                if ih < 0 || ih >= g.inH { continue }
                                for kw in 0..<k {
                                    let iw = ow * g.sW - g.pW + kw
                                    if iw < 0 || iw >= g.inW { continue }
                                    sum += Double(w[((m * s.channels + c) * k + kh) * k + kw])
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

    /// dX[n, c, i] = sum over m, taps, outputs p reading i of w[m, c, tap] dY[n, m, p], in float64.
    func referenceDX(_ w: [Float], _ dy: [Float], _ s: ConvolutionShape) -> [Double] {
        let g = s.geometry, k = g.kH
        var dx = [Double](repeating: 0, count: s.batch * s.channels * g.inputPlane)
        for n in 0..<s.batch {
            for m in 0..<s.filters {
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        let d = Double(dy[((n * s.filters + m) * g.outH + oh) * g.outW + ow])
                        for c in 0..<s.channels {
                            for kh in 0..<k {
                                let ih = oh * g.sH - g.pH + kh
                                if ih < 0 || ih >= g.inH { continue }
                                for kw in 0..<k {
                                    let iw = ow * g.sW - g.pW + kw
                                    if iw < 0 || iw >= g.inW { continue }
                                    dx[((n * s.channels + c) * g.inH + ih) * g.inW + iw]
                                        += Double(w[((m * s.channels + c) * k + kh) * k + kw]) * d
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    func forward(_ x: [Float], _ w: [Float], bias: [Float], _ s: ConvolutionShape, threads: Int, isa: KernelISA) -> [Float] {
        let packed = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: s.filters, columns: s.columnRows) }
        var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
        x.withUnsafeBufferPointer { xb in bias.withUnsafeBufferPointer { bb in y.withUnsafeMutableBufferPointer { yb in
            XCTAssertNotNil(ConvolutionForward.runImplicitImages(xb.baseAddress!, packed, bias: bb.baseAddress, yb.baseAddress!,
                                                                 s, relu: false, threads: threads, isa: isa))
        } } }
        return y
    }

    func assertClose(_ got: [Float], _ expected: [Double], _ bound: Double, _ context: String) {
        XCTAssertTrue(got.allSatisfy(\.isFinite), "every element written: \(context)")
        let scale = expected.map(abs).max() ?? 1
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? .nan
        XCTAssertLessThanOrEqual(worst / scale, bound, context)
        print("\(context): max error / max |reference| \(worst / scale)")
    }

    /// Against float64 (relative to the largest output: under 1e-6), the same bits on 1, 2 and
    /// 3 threads and in the AVX2 and portable tiles.
    func testForwardMatchesFloat64AndIsTheSameBitsEveryWay() {
        for (i, c) in [Self.manet, Self.stem, Self.odd].enumerated() {
            let s = shape(c)
            XCTAssertTrue(ConvolutionForward.trainingImplicit(s, options: .default), "\(c)")
            let x = pseudoRandom(s.batch * s.channels * s.geometry.inputPlane, seed: UInt64(100 + i))
            let w = pseudoRandom(s.filters * s.columnRows, seed: UInt64(200 + i))
            let bias = pseudoRandom(s.filters, seed: UInt64(300 + i))
            let first = forward(x, w, bias: bias, s, threads: 1, isa: .automatic)
            assertClose(first, reference(x, w, bias: bias, s), 1e-6, "forward \(c)")
            for threads in [1, 2, 3] {
                for isa in [KernelISA.avx2, .portable] {
                    let y = forward(x, w, bias: bias, s, threads: threads, isa: isa)
                    XCTAssertEqual(zip(y, first).filter { $0.bitPattern != $1.bitPattern }.count, 0,
                                   "same bits: \(c), \(threads) threads, \(isa)")
                }
            }
        }
    }

    /// The plan with `packsPerCall` runs it (the portable tiles' counter moves when forced) and
    /// gives its bits; without, the im2col path runs.
    func testPlanTakesItOnlyWhenAsked() {
        let s = shape(Self.odd)
        let x = pseudoRandom(s.batch * s.channels * s.geometry.inputPlane, seed: 7)
        let w = pseudoRandom(s.filters * s.columnRows, seed: 8)
        func run(_ packsPerCall: Bool) -> (y: [Float], portableRuns: UInt) {
            let plan = ConvolutionPlan(filters: .plain(w), winograd: WinogradPath.training(), packsPerCall: packsPerCall)
            var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
            let before = manet_variant_runs(KernelISA.portable.code)
            x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                plan.forward(xb.baseAddress!, bias: nil, yb.baseAddress!, s, relu: false, threads: 2,
                             options: KernelOptions(isa: .portable, gemm: .own))
            } }
            return (y, UInt(manet_variant_runs(KernelISA.portable.code) - before))
        }
        let packed = run(true), plain = run(false)
        XCTAssertGreaterThan(packed.portableRuns, 0)
        XCTAssertEqual(plain.portableRuns, 0)
        XCTAssertEqual(packed.y.map(\.bitPattern),
                       forward(x, w, bias: [Float](repeating: 0, count: s.filters), s, threads: 2, isa: .portable).map(\.bitPattern))
        let expected = reference(x, w, bias: nil, s)
        assertClose(plain.y, expected, 1e-6, "im2col path")
        // Options that turn the in-place reading off keep the im2col path.
        XCTAssertFalse(ConvolutionForward.trainingImplicit(s, options: KernelOptions(implicitConvolution: false)))
    }

    /// dX through ConvolutionBackward with `packsPerCall`: against float64, the same bits on 1, 2
    /// and 3 threads and both tile variants; the plain path (im2col + GEMM + col2im) within
    /// float rounding of it.
    func testBackwardDXMatchesFloat64() {
        for (i, c) in [Self.manet, Self.odd].enumerated() {
            let s = shape(c)
            let x = pseudoRandom(s.batch * s.channels * s.geometry.inputPlane, seed: UInt64(400 + i))
            let w = pseudoRandom(s.filters * s.columnRows, seed: UInt64(500 + i))
            let dy = pseudoRandom(s.batch * s.filters * s.geometry.outputPlane, seed: UInt64(600 + i))
            guard let t = ConvolutionBackward.transposedShape(s) else { return XCTFail("\(c) has a transposed shape") }
            XCTAssertTrue(ConvolutionForward.trainingImplicit(t, options: .default))
            func dX(_ packsPerCall: Bool, threads: Int, isa: KernelISA) -> [Float] {
                var dx = [Float](repeating: .nan, count: x.count)
                dx.withUnsafeMutableBufferPointer { out in
                    ConvolutionBackward.run(x, w, dy, s, dX: out.baseAddress!, dW: nil, dB: nil, winograd: nil,
                                            packsPerCall: packsPerCall, threads: threads,
                                            options: KernelOptions(isa: isa, gemm: .own))
                }
                return dx
            }
            let expected = referenceDX(w, dy, s)
            let first = dX(true, threads: 1, isa: .automatic)
            assertClose(first, expected, 1e-6, "dX \(c)")
            assertClose(dX(false, threads: 2, isa: .automatic), expected, 1e-6, "dX im2col \(c)")
            for threads in [1, 2, 3] {
                for isa in [KernelISA.avx2, .portable] {
                    XCTAssertEqual(zip(dX(true, threads: threads, isa: isa), first).filter { $0.bitPattern != $1.bitPattern }.count,
                                   0, "same bits: \(c), \(threads) threads, \(isa)")
                }
            }
        }
    }

    /// dW[m, c, tap] = sum over n, p of dY[n, m, p] x[n, c, window(p, tap)], in float64.
    func referenceDW(_ x: [Float], _ dy: [Float], _ s: ConvolutionShape) -> [Double] {
        let g = s.geometry, k = g.kH
        var dw = [Double](repeating: 0, count: s.filters * s.columnRows)
        for n in 0..<s.batch {
            for m in 0..<s.filters {
                for c in 0..<s.channels {
                    for kh in 0..<k {
                        for kw in 0..<k {
                            var sum = 0.0
                            for oh in 0..<g.outH {
                                let ih = oh * g.sH - g.pH + kh
                                if ih < 0 || ih >= g.inH { continue }
                                for ow in 0..<g.outW {
                                    let iw = ow * g.sW - g.pW + kw
                                    if iw < 0 || iw >= g.inW { continue }
                                    sum += Double(dy[((n * s.filters + m) * g.outH + oh) * g.outW + ow])
                                        * Double(x[((n * s.channels + c) * g.inH + ih) * g.inW + iw])
                                }
                            }
                            dw[((m * s.channels + c) * k + kh) * k + kw] += sum
                        }
                    }
                }
            }
        }
        return dw
    }

    /// dW read in place: against float64 (relative to the largest element: under 1e-6), the
    /// same bits on 1, 2 and 3 threads and in the AVX-512, AVX2 and portable variants (each
    /// counted running), and ConvolutionBackward with `packsPerCall` giving those bits (the
    /// im2col path within float rounding of them).
    func testWeightGradientMatchesFloat64AndIsTheSameBitsEveryWay() {
        var odd = Self.odd
        odd.filters = 13  // not a multiple of the AVX-512 tile's 8 filters
        for (i, c) in [Self.manet, odd].enumerated() {
            let s = shape(c)
            XCTAssertTrue(ConvolutionBackward.implicitWeightGradientApplies(s, options: .default), "\(c)")
            let x = pseudoRandom(s.batch * s.channels * s.geometry.inputPlane, seed: UInt64(700 + i)).map { ($0 + 1) / 2 }
            let dy = pseudoRandom(s.batch * s.filters * s.geometry.outputPlane, seed: UInt64(800 + i))
            let w = pseudoRandom(s.filters * s.columnRows, seed: UInt64(900 + i))
            func dW(threads: Int, isa: KernelISA) -> [Float] {
                var dw = [Float](repeating: 0, count: s.filters * s.columnRows)
                let before = manet_variant_runs(GEMM.resolved(isa).code)
                dw.withUnsafeMutableBufferPointer { out in
                    XCTAssertTrue(ConvolutionBackward.implicitWeightGradient(x, dy, s, dW: out.baseAddress!, threads: threads,
                                                                            options: KernelOptions(isa: isa)))
                }
                XCTAssertGreaterThan(manet_variant_runs(GEMM.resolved(isa).code), before, "\(isa) ran")
                return dw
            }
            let expected = referenceDW(x, dy, s)
            let first = dW(threads: 1, isa: .automatic)
            assertClose(first, expected, 1e-6, "dW \(c)")
            for threads in [1, 2, 3] {
                for isa in [KernelISA.avx512, .avx2, .portable] {
                    XCTAssertEqual(zip(dW(threads: threads, isa: isa), first).filter { $0.bitPattern != $1.bitPattern }.count,
                                   0, "same bits: \(c), \(threads) threads, \(isa)")
                }
            }
            func backward(_ packsPerCall: Bool) -> [Float] {
                var dw = [Float](repeating: .nan, count: s.filters * s.columnRows)
                dw.withUnsafeMutableBufferPointer { out in
                    ConvolutionBackward.run(x, w, dy, s, dX: nil, dW: out.baseAddress!, dB: nil, winograd: nil,
                                            packsPerCall: packsPerCall, threads: 2, options: KernelOptions(gemm: .own))
                }
                return dw
            }
            XCTAssertEqual(backward(true).map(\.bitPattern), first.map(\.bitPattern))
            assertClose(backward(false), expected, 1e-6, "dW im2col \(c)")
        }
        XCTAssertFalse(ConvolutionBackward.implicitWeightGradientApplies(shape(Self.stem), options: .default), "stride 2")
    }

    /// Which shapes take it: wide 2-D planes, ungrouped, wider than 1x1.
    func testWhichShapesTakeIt() {
        XCTAssertTrue(ConvolutionForward.trainingImplicit(shape(Self.manet), options: .default))
        var narrow = Self.manet
        narrow.height = 14
        narrow.width = 14
        XCTAssertFalse(ConvolutionForward.trainingImplicit(shape(narrow), options: .default))
        var pointwise = Self.manet
        (pointwise.kernel, pointwise.top, pointwise.left, pointwise.bottom, pointwise.right) = (1, 0, 0, 0, 0)
        XCTAssertFalse(ConvolutionForward.trainingImplicit(shape(pointwise), options: .default))
        var grouped = shape(Self.manet)
        grouped.group = 2
        XCTAssertFalse(ConvolutionForward.trainingImplicit(grouped, options: .default))
        XCTAssertNil(ConvolutionBackward.transposedShape(shape(Self.stem)), "stride 2 has no transposed convolution")
    }
}
