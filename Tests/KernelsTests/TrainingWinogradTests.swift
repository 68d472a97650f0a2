// Training's Winograd path on every plane (`TrainingWinograd.all`, a superset of the default
// `.planesTo14`): the F(4x4,3x3) forward with filters packed per call on MA-Net's 56x56, 28x28
// and 14x14 layers, dX and dW by F(2x2) on the 64-channel 14x14 ones. Each gradient against float64 straight from the definition, the same
// bits on 1, 2 and 3 threads and every instruction set, and which shapes take what.

import Foundation
import Kernels
import TestSupport
import XCTest

final class TrainingWinogradTests: XCTestCase {
    struct Case {
        var batch: Int, channels: Int, filters: Int, height: Int, width: Int
    }

    func shape(_ c: Case) -> ConvolutionShape {
        let g = WindowGeometry(input: [c.height, c.width], kernel: [3, 3], strides: [1, 1], padsBegin: [1, 1],
                               padsEnd: [1, 1], dilations: [1, 1], output: [c.height, c.width])
        return ConvolutionShape(batch: c.batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
    }

    /// MA-Net's stride-1 3x3 layers below the 7x7 stage at their training batch or a smaller one
    /// (the float64 reference is slow), with partial 4x4 tiles (14x14), an odd channel count and
    /// odd planes, and filters not a multiple of 16 (F(4x4) without packing).
    static let cases = [Case(batch: 16, channels: 64, filters: 64, height: 14, width: 14),
                        Case(batch: 1, channels: 64, filters: 64, height: 56, width: 56),
                        Case(batch: 2, channels: 128, filters: 128, height: 28, width: 28),
                        Case(batch: 2, channels: 256, filters: 256, height: 14, width: 14),
                        Case(batch: 2, channels: 67, filters: 80, height: 15, width: 13),
                        Case(batch: 4, channels: 64, filters: 72, height: 9, width: 11)]

    /// Post-ReLU-like inputs, He-scaled weights, dY of either sign.
    func data(_ s: ConvolutionShape, seed: UInt64) -> (x: [Float], w: [Float], dy: [Float]) {
        let scale = Float((2.0 / Double(9 * s.channels)).squareRoot() * 3.0.squareRoot())
        return (pseudoRandom(s.batch * s.channels * s.geometry.inputPlane, seed: seed).map { ($0 + 1) / 2 },
                pseudoRandom(s.filters * s.channels * 9, seed: seed + 1).map { $0 * scale },
                pseudoRandom(s.batch * s.filters * s.geometry.outputPlane, seed: seed + 2))
    }

    /// y, dX and dW in float64 from the definition (pads 1): every product x * w of a window
    /// added to y, w * dy to dX and dy * x to dW.
    func reference(_ x: [Float], _ w: [Float], _ dy: [Float], _ s: ConvolutionShape) -> (y: [Double], dX: [Double], dW: [Double]) {
        let g = s.geometry, (C, M, H, W) = (s.channels, s.filters, g.inH, g.inW)
        var y = [Double](repeating: 0, count: s.batch * M * H * W)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        let xd = x.map(Double.init), wd = w.map(Double.init), dyd = dy.map(Double.init)
        for n in 0..<s.batch {
            for m in 0..<M {
                for c in 0..<C {
                    let xp = (n * C + c) * H * W, op = (n * M + m) * H * W, wp = (m * C + c) * 9
                    for kh in 0..<3 {
                        for kw in 0..<3 {
                            let wv = wd[wp + kh * 3 + kw]
                            var dwSum = 0.0
                            for oh in max(0, 1 - kh)..<min(H, H + 1 - kh) {
                                let ih = oh + kh - 1
                                for ow in max(0, 1 - kw)..<min(W, W + 1 - kw) {
                                    let xi = xp + ih * W + ow + kw - 1, o = op + oh * W + ow
                                    y[o] += wv * xd[xi]
                                    dx[xi] += wv * dyd[o]
                                    dwSum += dyd[o] * xd[xi]
                                }
                            }
                            dw[wp + kh * 3 + kw] += dwSum
                        }
                    }
                }
            }
        }
        return (y, dx, dw)
    }

    /// The training convolution's forward, dX and dW as `Conv` runs them (filters as written,
    /// packed per call).
    func run(_ d: (x: [Float], w: [Float], dy: [Float]), _ s: ConvolutionShape, path: WinogradPath?, threads: Int,
             isa: KernelISA = .automatic) -> (y: [Float], dX: [Float], dW: [Float]) {
        let options = KernelOptions(isa: isa)
        let plan = ConvolutionPlan(filters: .plain(d.w), winograd: path, packsPerCall: true)
        var y = [Float](repeating: .nan, count: s.batch * s.filters * s.geometry.outputPlane)
        var dx = [Float](repeating: .nan, count: d.x.count), dw = [Float](repeating: .nan, count: d.w.count)
        d.x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                plan.forward(xb.baseAddress!, bias: nil, yb.baseAddress!, s, relu: false, threads: threads, options: options)
            }
            dx.withUnsafeMutableBufferPointer { dxb in
                dw.withUnsafeMutableBufferPointer { dwb in
                    ConvolutionBackward.run(xb.baseAddress!, d.w, d.dy, s, dX: dxb.baseAddress!, dW: dwb.baseAddress!, dB: nil,
                                            winograd: path, packsPerCall: true, threads: threads, options: options)
                }
            }
        }
        return (y, dx, dw)
    }

    /// max |a - ref| / max |ref|.
    func relative(_ a: [Float], _ ref: [Double]) -> Double {
        let worst = zip(a, ref).map { abs(Double($0) - $1) }.max() ?? 0
        return worst / max(ref.map(abs).max() ?? 0, 1e-30)
    }

    func testAgainstFloat64OnEveryThreadCountAndInstructionSet() {
        let path = WinogradPath.training(reach: .all)
        for (i, c) in Self.cases.enumerated() {
            let s = shape(c)
            XCTAssertEqual(path?.tile(for: s), .f4x4, "\(c): forward by F(4x4)")
            XCTAssertEqual(path?.packsFilters(s, tile: .f4x4), c.filters % 16 == 0, "\(c): packed when whole blocks")
            let smallPlane = c.height <= 14 && c.width <= 14, wide = c.channels >= 128 && c.filters >= 128
            XCTAssertEqual(ConvolutionBackward.transposedWinograd(s, path)?.1, smallPlane || wide ? .f2x2 : nil, "\(c): dX")
            XCTAssertEqual(WinogradWeightGradient.applies(s, path), smallPlane || wide, "\(c): dW")
            let d = data(s, seed: UInt64(700 + 10 * i))
            let ref = reference(d.x, d.w, d.dy, s)
            let first = run(d, s, path: path, threads: 1)
            let direct = run(d, s, path: nil, threads: 2)
            let e = (y: relative(first.y, ref.y), dX: relative(first.dX, ref.dX), dW: relative(first.dW, ref.dW))
            print(String(format: "training winograd %d->%d %dx%d x%d vs float64: y %.2e (direct %.2e), dX %.2e (direct %.2e), dW %.2e (direct %.2e)",
                         c.channels, c.filters, c.height, c.width, c.batch, e.y, relative(direct.y, ref.y),
                         e.dX, relative(direct.dX, ref.dX), e.dW, relative(direct.dW, ref.dW)))
            XCTAssertLessThan(e.y, 1e-5, "y \(c)")
            XCTAssertLessThan(e.dX, 1e-5, "dX \(c)")
            XCTAssertLessThan(e.dW, 1e-5, "dW \(c)")
            XCTAssertNotEqual(first.y.map(\.bitPattern), direct.y.map(\.bitPattern), "\(c): the forward took another path")
            for threads in [1, 2, 3] {
                for isa in [KernelISA.avx512, .avx2, .portable] where !(threads == 1 && isa == .avx512) {
                    let again = run(d, s, path: path, threads: threads, isa: isa)
                    let what = "\(c), \(threads) threads, \(isa)"
                    XCTAssertEqual(again.y.map(\.bitPattern), first.y.map(\.bitPattern), "y: same bits, \(what)")
                    XCTAssertEqual(again.dX.map(\.bitPattern), first.dX.map(\.bitPattern), "dX: same bits, \(what)")
                    XCTAssertEqual(again.dW.map(\.bitPattern), first.dW.map(\.bitPattern), "dW: same bits, \(what)")
                }
            }
        }
    }

    /// Which path each layer takes with each reach: `.all` forward from 64 channels on every
    /// plane (F(2x2) where the batch has too few 4x4 tiles), dX and dW from 128 channels and on
    /// planes of at most 14x14 from 64 (dX F(4x4) on 7x7 planes only); the default
    /// `.planesTo14` the same but the forward F(4x4) only on planes of at most 14x14, F(2x2) on
    /// 28x28 from 128 channels, nothing on the 64-channel 56x56 planes; `.lastStage` forward and
    /// dX F(4x4) on 7x7 planes and F(2x2) elsewhere, from 128 channels.
    func testWhichLayersTakeWhat() {
        let all = WinogradPath.training(reach: .all), last = WinogradPath.training(reach: .lastStage)
        let standard = WinogradPath.training()
        let wide = shape(Case(batch: 16, channels: 64, filters: 64, height: 56, width: 56))
        let mid = shape(Case(batch: 16, channels: 128, filters: 128, height: 28, width: 28))
        let small = shape(Case(batch: 16, channels: 64, filters: 64, height: 14, width: 14))
        let last7 = shape(Case(batch: 16, channels: 512, filters: 512, height: 7, width: 7))
        func dX(_ s: ConvolutionShape, _ path: WinogradPath?) -> WinogradTile? { ConvolutionBackward.transposedWinograd(s, path)?.1 }
        XCTAssertEqual(all?.tile(for: wide), .f4x4)
        XCTAssertNil(dX(wide, all), "56x56 dX stays in place")
        XCTAssertFalse(WinogradWeightGradient.applies(wide, all), "56x56 dW stays in place")
        XCTAssertEqual(all?.tile(for: mid), .f4x4)
        XCTAssertEqual(dX(mid, all), .f2x2)
        XCTAssertTrue(WinogradWeightGradient.applies(mid, all))
        XCTAssertEqual(all?.tile(for: small), .f4x4)
        XCTAssertEqual(dX(small, all), .f2x2)
        XCTAssertTrue(WinogradWeightGradient.applies(small, all))
        XCTAssertEqual(all?.tile(for: last7), .f4x4)
        XCTAssertEqual(dX(last7, all), .f4x4)
        XCTAssertEqual(dX(last7, last), .f4x4)
        XCTAssertEqual(dX(mid, last), .f2x2)
        XCTAssertNil(dX(small, last))
        // Batch 1 on 14x14 planes: 16 4x4 tiles, too few; 49 2x2 ones.
        XCTAssertEqual(all?.tile(for: shape(Case(batch: 1, channels: 64, filters: 64, height: 14, width: 14))), .f2x2)
        XCTAssertNil(all?.tile(for: shape(Case(batch: 16, channels: 32, filters: 64, height: 14, width: 14))))
        XCTAssertNil(last?.tile(for: wide))
        XCTAssertEqual(last?.tile(for: mid), .f2x2)
        XCTAssertNil(last?.tile(for: small))
        XCTAssertFalse(WinogradWeightGradient.applies(small, last))
        XCTAssertEqual(last?.tile(for: last7), .f4x4)
        XCTAssertEqual(WinogradPath.training(.winograd2, reach: .all)?.tile(for: mid), .f2x2)
        XCTAssertNil(WinogradPath.training(.direct))
        XCTAssertEqual(KernelOptions.default.trainingWinograd, .planesTo14)
        let small256 = shape(Case(batch: 16, channels: 256, filters: 256, height: 14, width: 14))
        XCTAssertNil(standard?.tile(for: wide), "56x56 forward stays in place")
        XCTAssertNil(dX(wide, standard))
        XCTAssertFalse(WinogradWeightGradient.applies(wide, standard))
        XCTAssertEqual(standard?.tile(for: mid), .f2x2, "28x28: F(4x4)'s rounding reaches layer 4 beyond PyTorch's spread")
        XCTAssertEqual(dX(mid, standard), .f2x2)
        XCTAssertTrue(WinogradWeightGradient.applies(mid, standard))
        XCTAssertEqual(standard?.tile(for: small), .f4x4)
        XCTAssertEqual(dX(small, standard), .f2x2)
        XCTAssertTrue(WinogradWeightGradient.applies(small, standard))
        XCTAssertEqual(standard?.tile(for: small256), .f4x4)
        XCTAssertEqual(standard?.tile(for: last7), .f4x4)
        XCTAssertEqual(dX(last7, standard), .f4x4)
        XCTAssertEqual(WinogradWeightGradient.tile(last7, standard), .f4x4)
        XCTAssertNil(standard?.tile(for: shape(Case(batch: 16, channels: 32, filters: 64, height: 14, width: 14))))
    }
}
