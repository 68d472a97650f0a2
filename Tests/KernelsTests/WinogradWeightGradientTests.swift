// dW of a stride-1 3x3 convolution by Winograd F(3x3,2x2) and F(3x3,4x4): against float64 on
// MA-Net's layer shapes (partial tiles on the 7x7 planes) and odd channel counts, pads and plane
// sizes; the same bits for 1, 2 and 3 threads and for every instruction set (our GEMM's and the
// transforms' clones); which shapes take which tile; and ConvolutionBackward taking it on
// training's path.

import Kernels
import TestSupport
import XCTest

final class WinogradWeightGradientTests: XCTestCase {
    struct Case {
        var batch: Int, channels: Int, filters: Int, height: Int, width: Int, top: Int, left: Int, bottom: Int, right: Int
    }

    func shape(_ c: Case) -> ConvolutionShape {
        let g = WindowGeometry(input: [c.height, c.width], kernel: [3, 3], strides: [1, 1], padsBegin: [c.top, c.left],
                               padsEnd: [c.bottom, c.right], dilations: [1, 1],
                               output: [c.height + c.top + c.bottom - 2, c.width + c.left + c.right - 2])
        return ConvolutionShape(batch: c.batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
    }

    /// dW[m, c, u, v] = sum over n, y, x of dY[n, m, y, x] x[n, c, y + u - top, x + v - left], in float64.
    func reference(_ x: [Float], _ dy: [Float], _ s: ConvolutionShape) -> [Double] {
        let g = s.geometry
        var dw = [Double](repeating: 0, count: s.filters * s.channels * 9)
        var plane = [Double](repeating: 0, count: g.outputPlane)
        for n in 0..<s.batch {
            for m in 0..<s.filters {
                for p in 0..<g.outputPlane { plane[p] = Double(dy[(n * s.filters + m) * g.outputPlane + p]) }
                for c in 0..<s.channels {
                    let xc = (n * s.channels + c) * g.inputPlane
                    for u in 0..<3 {
                        for v in 0..<3 {
                            var sum = 0.0
                            for y in 0..<g.outH {
                                let ih = y + u - g.pH
                                if ih < 0 || ih >= g.inH { continue }
                                for xo in 0..<g.outW {
                                    let iw = xo + v - g.pW
                                    if iw < 0 || iw >= g.inW { continue }
                                    sum += plane[y * g.outW + xo] * Double(x[xc + ih * g.inW + iw])
                                }
                            }
                            dw[((m * s.channels + c) * 3 + u) * 3 + v] += sum
                        }
                    }
                }
            }
        }
        return dw
    }

    func run(_ x: [Float], _ dy: [Float], _ s: ConvolutionShape, tile: WinogradTile = .f2x2, threads: Int,
             options: KernelOptions = KernelOptions(gemm: .own), chunkBytes: Int = WinogradWeightGradient.chunkBytes) -> [Float] {
        var dw = [Float](repeating: .nan, count: s.filters * s.channels * 9)
        dw.withUnsafeMutableBufferPointer { out in
            XCTAssertTrue(WinogradWeightGradient.run(x, dy, s, dW: out.baseAddress!, tile: tile, threads: threads,
                                                     options: options, chunkBytes: chunkBytes))
        }
        return dw
    }

    /// Post-ReLU-like inputs, zero-mean gradients.
    func data(_ s: ConvolutionShape, seed: UInt64) -> (x: [Float], dy: [Float]) {
        (pseudoRandom(s.batch * s.channels * s.geometry.inputPlane, seed: seed).map { ($0 + 1) / 2 },
         pseudoRandom(s.batch * s.filters * s.geometry.outputPlane, seed: seed + 1))
    }

    static let manetShapes = [Case(batch: 2, channels: 512, filters: 512, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 2, channels: 256, filters: 256, height: 14, width: 14, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 2, channels: 128, filters: 128, height: 28, width: 28, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 3, channels: 128, filters: 128, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1)]
    static let oddShapes = [Case(batch: 1, channels: 3, filters: 5, height: 10, width: 9, top: 0, left: 0, bottom: 0, right: 0),
                            Case(batch: 2, channels: 7, filters: 13, height: 5, width: 6, top: 2, left: 1, bottom: 0, right: 2),
                            Case(batch: 3, channels: 1, filters: 1, height: 3, width: 3, top: 1, left: 1, bottom: 1, right: 1),
                            Case(batch: 2, channels: 33, filters: 17, height: 11, width: 4, top: 1, left: 2, bottom: 2, right: 0)]

    /// Against float64, error relative to max |dW| (printed, with the im2col + GEMM path's for
    /// comparison): under 1e-5 for both tiles, like the forward's F(2x2) and F(4x4) tests.
    func testMatchesFloat64OnMANetAndOddShapes() {
        for (i, c) in (Self.manetShapes + Self.training7x7 + Self.oddShapes).enumerated() {
            let s = shape(c)
            let (x, dy) = data(s, seed: UInt64(100 + 3 * i))
            let ref = reference(x, dy, s)
            let scale = max(1e-30, ref.map(abs).max()!)
            func relative(_ got: [Float]) -> Double { zip(got, ref).map { abs(Double($0) - $1) }.max()! / scale }
            let direct = relative(directDW(x, dy, s))
            for tile in [WinogradTile.f2x2, .f4x4] {
                let e = relative(run(x, dy, s, tile: tile, threads: 2))
                print(String(format: "Winograd dW %@ %d->%d %dx%d x%d: max error / max |dW| = %.2e (im2col + GEMM %.2e)",
                             tile == .f2x2 ? "F(3x3,2x2)" : "F(3x3,4x4)", c.channels, c.filters, c.height, c.width,
                             c.batch, e, direct))
                XCTAssertLessThan(e, 1e-5, "\(tile) \(c)")
            }
        }
    }

    /// Training's 7x7 layers (4 tiles of 4x4 per image), where F(3x3,4x4) runs: MA-Net's four
    /// shapes at batch 16, 1 and 2, and counts of channels and filters that leave partial
    /// register tiles in every variant (12 x 32, 6 x 16, 4 x 8).
    static let training7x7 = [Case(batch: 16, channels: 512, filters: 512, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 16, channels: 128, filters: 128, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 1, channels: 256, filters: 256, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 2, channels: 256, filters: 512, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 2, channels: 131, filters: 133, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                              Case(batch: 1, channels: 5, filters: 7, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1)]

    /// dW by the im2col + GEMM path (our GEMM), for the error comparison.
    func directDW(_ x: [Float], _ dy: [Float], _ s: ConvolutionShape) -> [Float] {
        let w = [Float](repeating: 0, count: s.filters * s.channels * 9)
        var dw = [Float](repeating: .nan, count: s.filters * s.channels * 9)
        dw.withUnsafeMutableBufferPointer { out in
            ConvolutionBackward.run(x, w, dy, s, dX: nil, dW: out.baseAddress!, dB: nil, winograd: nil, threads: 2,
                                    options: KernelOptions(gemm: .own))
        }
        return dw
    }

    /// The same bits for 1, 2 and 3 threads, our GEMM's variants (AVX-512, AVX2, portable), and
    /// chunks of images (a batch larger than one chunk).
    func testSameBitsForThreadsAndInstructionSets() {
        let cases = [Case(batch: 2, channels: 128, filters: 128, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                     Case(batch: 3, channels: 131, filters: 133, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1),
                     Case(batch: 2, channels: 33, filters: 17, height: 11, width: 4, top: 1, left: 2, bottom: 2, right: 0),
                     // 13 images of 64 -> 64 56x56: 16 * 128 * 784 * 4 bytes per image, so several chunks.
                     Case(batch: 13, channels: 64, filters: 64, height: 56, width: 56, top: 1, left: 1, bottom: 1, right: 1)]
        for (i, c) in cases.enumerated() {
            let s = shape(c)
            let (x, dy) = data(s, seed: UInt64(7 + i))
            for tile in [WinogradTile.f2x2, .f4x4] {
                let base = run(x, dy, s, tile: tile, threads: 1)
                for isa in [KernelISA.automatic, .avx512, .avx2, .portable] {
                    for threads in [1, 2, 3] where (isa, threads) != (.automatic, 1) {
                        let y = run(x, dy, s, tile: tile, threads: threads, options: KernelOptions(isa: isa, gemm: .own))
                        XCTAssertEqual(y.map(\.bitPattern), base.map(\.bitPattern), "\(tile) \(c): \(isa) on \(threads) threads")
                    }
                }
                // OpenBLAS: each point's GEMM on one thread, so the thread count does not change it either.
                let blas = run(x, dy, s, tile: tile, threads: 1, options: KernelOptions(gemm: .openBLAS))
                for threads in [2, 3] {
                    XCTAssertEqual(run(x, dy, s, tile: tile, threads: threads, options: KernelOptions(gemm: .openBLAS)).map(\.bitPattern),
                                   blas.map(\.bitPattern), "\(tile) \(c): OpenBLAS on \(threads) threads")
                }
            }
        }
    }

    /// F(3x3,4x4) over several chunks of images (the first writes dW, the others add to it):
    /// within rounding of one chunk and of float64, and the same bits for every thread count and
    /// variant, since the chunks' size depends on neither.
    func testF4x4ChunksOfImages() {
        let c = Case(batch: 5, channels: 131, filters: 133, height: 7, width: 7, top: 1, left: 1, bottom: 1, right: 1)
        let s = shape(c)
        let (x, dy) = data(s, seed: 71)
        let twoImages = 36 * (c.channels + c.filters + 64) * 4 * 4 * 2
        let chunked = run(x, dy, s, tile: .f4x4, threads: 1, chunkBytes: twoImages)
        let whole = run(x, dy, s, tile: .f4x4, threads: 1)
        XCTAssertNotEqual(chunked.map(\.bitPattern), whole.map(\.bitPattern), "three chunks sum in another order")
        let ref = reference(x, dy, s)
        let scale = ref.map(abs).max()!
        XCTAssertLessThan(zip(chunked, ref).map { abs(Double($0) - $1) }.max()! / scale, 1e-5)
        for isa in [KernelISA.avx512, .avx2, .portable] {
            for threads in [2, 3] {
                XCTAssertEqual(run(x, dy, s, tile: .f4x4, threads: threads, options: KernelOptions(isa: isa), chunkBytes: twoImages)
                                   .map(\.bitPattern), chunked.map(\.bitPattern), "\(isa) on \(threads) threads")
            }
        }
    }

    /// Training's path takes stride-1 3x3 convolutions of at least its channels; not strides,
    /// dilations, groups, other kernels, nor a nil path (`MANET_CONV=direct`).
    func testWhichShapesTakeIt() {
        let path = WinogradPath.training()
        XCTAssertTrue(WinogradWeightGradient.applies(shape(Self.manetShapes[0]), path))
        XCTAssertFalse(WinogradWeightGradient.applies(shape(Self.manetShapes[0]), nil))
        XCTAssertFalse(WinogradWeightGradient.applies(shape(Case(batch: 16, channels: 64, filters: 64, height: 56, width: 56,
                                                                 top: 1, left: 1, bottom: 1, right: 1)), path))
        let strided = ConvolutionShape(batch: 2, channels: 128, filters: 256, group: 1,
                                       geometry: WindowGeometry(input: [28, 28], kernel: [3, 3], strides: [2, 2], padsBegin: [1, 1],
                                                                padsEnd: [1, 1], dilations: [1, 1], output: [14, 14]))
        XCTAssertFalse(WinogradWeightGradient.applies(strided, path))
        var grouped = shape(Self.manetShapes[0])
        grouped.group = 2
        XCTAssertFalse(WinogradWeightGradient.applies(grouped, path))
        // Training's path: 4x4 tiles of dY on the planes where it takes F(4x4,3x3) (7x7 here), at
        // any batch; 2x2 on larger planes, with `.winograd2`, and with the option off.
        XCTAssertEqual(WinogradWeightGradient.tile(shape(Self.manetShapes[0]), path), .f4x4)
        XCTAssertEqual(WinogradWeightGradient.tile(shape(Self.manetShapes[3]), path), .f4x4)
        XCTAssertEqual(WinogradWeightGradient.tile(shape(Self.manetShapes[1]), path), .f2x2)
        XCTAssertEqual(WinogradWeightGradient.tile(shape(Self.manetShapes[0]), WinogradPath.training(.winograd2)), .f2x2)
        XCTAssertEqual(WinogradWeightGradient.tile(shape(Self.manetShapes[0]), path,
                                                   options: KernelOptions(weightGradientF4x4: false)), .f2x2)
    }

    /// ConvolutionBackward on training's path gives this dW, within float rounding of the direct path's.
    func testConvolutionBackwardTakesIt() {
        let s = shape(Self.manetShapes[3])
        let (x, dy) = data(s, seed: 41)
        let w = pseudoRandom(s.filters * s.channels * 9, seed: 43)
        func backward(_ path: WinogradPath?, options: KernelOptions = KernelOptions(gemm: .own)) -> [Float] {
            var dw = [Float](repeating: .nan, count: s.filters * s.channels * 9)
            dw.withUnsafeMutableBufferPointer { out in
                ConvolutionBackward.run(x, w, dy, s, dX: nil, dW: out.baseAddress!, dB: nil, winograd: path, threads: 2,
                                        options: options)
            }
            return dw
        }
        let winograd = backward(WinogradPath.training()), direct = backward(nil)
        XCTAssertEqual(winograd.map(\.bitPattern), run(x, dy, s, tile: .f4x4, threads: 2).map(\.bitPattern))
        XCTAssertEqual(backward(WinogradPath.training(), options: KernelOptions(gemm: .own, weightGradientF4x4: false))
                           .map(\.bitPattern), run(x, dy, s, threads: 2).map(\.bitPattern))
        let ref = reference(x, dy, s)
        let scale = ref.map(abs).max()!
        XCTAssertLessThan(zip(direct, ref).map { abs(Double($0) - $1) }.max()! / scale, 1e-5)
        XCTAssertNotEqual(winograd.map(\.bitPattern), direct.map(\.bitPattern))
    }
}
