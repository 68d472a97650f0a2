// KernelOptions.isa reaches every multiversioned kernel of the convolution paths: each variant
// the CPU has is run by name (the C layer counts which variant each call ran, so a kernel that
// ignored the switch would show up as runs of another variant) and gives the same bits as the
// others, within float64's limit of the definition.

import _CKernels
import Foundation
import Kernels
import TestSupport
import XCTest

final class InstructionSetSwitchTests: XCTestCase {
    /// The variants this CPU has (each resolving to itself).
    var supported: [KernelISA] { [KernelISA.avx512, .avx2, .portable].filter { GEMM.resolved($0) == $0 } }

    /// Runs of each variant (`manet_variant_runs`) during `body`.
    func runs(_ body: () -> Void) -> [KernelISA: UInt] {
        let variants = [KernelISA.avx512, .avx2, .portable]
        let before = variants.map { UInt(manet_variant_runs($0.code)) }
        body()
        var out: [KernelISA: UInt] = [:]
        for (i, v) in variants.enumerated() { out[v] = UInt(manet_variant_runs(v.code)) - before[i] }
        return out
    }

    /// Checks that `counted` holds runs of `ran` and none of the variants outside `allowed`.
    func assertRan(_ counted: [KernelISA: UInt], _ ran: KernelISA, allowed: Set<KernelISA>, _ what: String,
                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThan(counted[ran] ?? 0, 0, "\(what): \(ran) ran (\(counted))", file: file, line: line)
        for (v, n) in counted where !allowed.contains(v) {
            XCTAssertEqual(n, 0, "\(what): no \(v) runs (\(counted))", file: file, line: line)
        }
    }

    /// The packed tiles' variant for `isa`: AVX2 for AVX-512 (they have no AVX-512 form).
    func packedVariant(_ isa: KernelISA) -> KernelISA { isa == .avx512 ? .avx2 : isa }

    func geometry(side: Int, kernel: Int, stride: Int, pad: Int) -> WindowGeometry {
        let out = (side + 2 * pad - kernel) / stride + 1
        return WindowGeometry(input: [side, side], kernel: [kernel, kernel], strides: [stride, stride], padsBegin: [pad, pad],
                              padsEnd: [pad, pad], dilations: [1, 1], output: [out, out])
    }

    func testMachineHasSeveralVariants() throws {
        // Everything below compares variants: on a CPU with one the tests say so.
        if supported.count < 2 { throw XCTSkip("only \(supported) on this CPU") }
        XCTAssertEqual(supported.last, .portable)
    }

    /// The packed-filter convolution on every path (one image read in place, split by columns
    /// and by blocks; unfolded into blocks at batch 3; a 1x1 copying columns; the stem-like
    /// 7x7/2 whose interior tiles im2col unfolds with vector loads), 2 threads: each variant
    /// runs only itself, the same bits as the others, and agrees with the OpenBLAS path.
    func testPackedConvolutionRunsTheForcedVariant() {
        let cases: [(batch: Int, channels: Int, filters: Int, side: Int, kernel: Int, stride: Int, pad: Int)] = [
            (1, 64, 32, 7, 3, 1, 1), (3, 32, 48, 14, 3, 2, 1), (2, 32, 64, 7, 1, 1, 0), (3, 3, 16, 40, 7, 2, 3),
        ]
        for c in cases {
            let g = geometry(side: c.side, kernel: c.kernel, stride: c.stride, pad: c.pad)
            let s = ConvolutionShape(batch: c.batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
            let x = pseudoRandom(c.batch * c.channels * g.inputPlane, seed: 91)
            let w = pseudoRandom(c.filters * s.columnRows, seed: 92), bias = pseudoRandom(c.filters, seed: 93)
            let count = c.batch * c.filters * g.outputPlane
            var expected = [Float](repeating: 0, count: count)
            x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
                expected.withUnsafeMutableBufferPointer {
                    ConvolutionForward.run(xb.baseAddress!, wb.baseAddress!, bias: bb.baseAddress, $0.baseAddress!, s,
                                           relu: true, threads: 2, options: KernelOptions(gemm: .openBLAS))
                }
            } } }
            let packed = w.withUnsafeBufferPointer { PackedFilters($0.baseAddress!, filters: c.filters, columns: s.columnRows) }
            var first: [Float]?
            for isa in supported {
                for options in [KernelOptions(isa: isa), KernelOptions(isa: isa, implicitConvolution: false),
                                KernelOptions(isa: isa, convolutionSplit: .blocks)] {
                    var y = [Float](repeating: .nan, count: count)
                    let counted = runs {
                        x.withUnsafeBufferPointer { xb in bias.withUnsafeBufferPointer { bb in
                            y.withUnsafeMutableBufferPointer {
                                ConvolutionForward.runPacked(xb.baseAddress!, packed, bias: bb.baseAddress, $0.baseAddress!,
                                                             s, relu: true, threads: 2, options: options)
                            }
                        } }
                    }
                    let what = "\(c), \(isa), implicit \(options.implicitConvolution), \(String(describing: options.convolutionSplit))"
                    assertRan(counted, packedVariant(isa), allowed: [packedVariant(isa)], what)
                    assertClose(y, expected, rtol: 1e-5, atol: 1e-5)
                    if let first {
                        let differing = zip(y, first).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "\(what): same bits as \(supported[0])")
                    } else {
                        first = y
                    }
                }
            }
        }
    }

    /// Winograd convolutions on every path: filters transformed per call or kept, plain or
    /// packed filters (the packed-filter GEMM per point, per filter block, or the chunked GEMMs
    /// with their AVX-512 tile), F(2x2) and F(4x4). Each variant's input, output and filter
    /// transforms run only that variant (the GEMM tiles theirs), the same bits every way, within
    /// float64's limit.
    func testWinogradTransformsRunTheForcedVariant() {
        struct Case { var batch, channels, filters, side: Int; var tile: WinogradTile; var packed, kept: Bool }
        let cases = [Case(batch: 1, channels: 64, filters: 64, side: 14, tile: .f2x2, packed: true, kept: false),   // chunked
                     Case(batch: 2, channels: 24, filters: 32, side: 9, tile: .f4x4, packed: true, kept: false),
                     Case(batch: 2, channels: 24, filters: 32, side: 9, tile: .f2x2, packed: true, kept: true),
                     Case(batch: 2, channels: 20, filters: 24, side: 8, tile: .f4x4, packed: false, kept: false),
                     Case(batch: 1, channels: 16, filters: 40, side: 11, tile: .f2x2, packed: false, kept: true)]
        for (i, c) in cases.enumerated() {
            let g = geometry(side: c.side, kernel: 3, stride: 1, pad: 1)
            let s = ConvolutionShape(batch: c.batch, channels: c.channels, filters: c.filters, group: 1, geometry: g)
            let x = pseudoRandom(c.batch * c.channels * g.inputPlane, seed: UInt64(500 + i)).map { ($0 + 1) / 2 }
            var w = pseudoRandom(c.filters * c.channels * 9, seed: UInt64(600 + i)).map { $0 * 0.1 }
            let bias = pseudoRandom(c.filters, seed: UInt64(700 + i)).map { $0 * 0.1 }
            var ref = [Float](repeating: 0, count: c.batch * c.filters * g.outputPlane)
            x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
                ref.withUnsafeMutableBufferPointer {
                    ConvolutionForward.run(xb.baseAddress!, wb.baseAddress!, bias: bb.baseAddress, $0.baseAddress!, s,
                                           relu: false, threads: 1, options: KernelOptions(gemm: .openBLAS))
                }
            } } }
            let plain = w
            let packed = c.packed ? PackedFilters(taking: &w, filters: c.filters, columns: c.channels * 9) : nil
            var first: [Float]?
            for isa in supported {
                let options = KernelOptions(isa: isa, gemm: .own)
                var y = [Float](repeating: .nan, count: ref.count)
                let counted = runs {
                    let run = { (wp: UnsafePointer<Float>) in
                        let kept = c.kept ? Winograd.transformFilters(wp, filters: c.filters, channels: c.channels, tile: c.tile,
                                                                      threads: 2, packed: c.packed, isa: isa) : nil
                        let yp = UnsafeMutablePointer<Float>.allocate(capacity: y.count)
                        defer { yp.deallocate() }
                        x.withUnsafeBufferPointer { xb in bias.withUnsafeBufferPointer { bb in
                            let go = { (kp: UnsafePointer<Float>?) in
                                Winograd.run(xb.baseAddress!, wp, tile: c.tile, transformed: kp, bias: bb.baseAddress,
                                             yp, s, relu: false, threads: 2, filtersPacked: c.packed, options: options)
                            }
                            if let kept { kept.withUnsafeBufferPointer { go($0.baseAddress!) } } else { go(nil) }
                        } }
                        y = Array(UnsafeBufferPointer(start: yp, count: y.count))
                    }
                    if let packed { packed.withPointer(run) } else { plain.withUnsafeBufferPointer { run($0.baseAddress!) } }
                }
                let what = "\(c), \(isa)"
                // The transforms run `isa`; our sgemm too; the packed tiles their own variant.
                assertRan(counted, isa, allowed: [isa, packedVariant(isa)], what)
                assertClose(y, ref, rtol: 1e-4, atol: 1e-4)
                if let first {
                    let differing = zip(y, first).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(differing, 0, "\(what): same bits as \(supported[0])")
                } else {
                    first = y
                }
            }
        }
    }
}
