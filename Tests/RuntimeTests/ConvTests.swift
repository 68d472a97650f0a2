// Conv: inline examples (ONNX's documented cases), a direct-loop reference over many
// geometries, failure texts, and finite-difference gradients.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ConvTests: XCTestCase {
    // x = 0..24 as [1, 1, 5, 5], W = ones [1, 1, 3, 3] (the ONNX Conv documentation example).
    let x = Tensor(shape: [1, 1, 5, 5], floats: (0..<25).map(Float.init))
    let w = Tensor(shape: [1, 1, 3, 3], floats: [Float](repeating: 1, count: 9))

    func testPaddedSameSize() throws {
        let y = try runNode("Conv", [("x", x), ("w", w)], attributes: [attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])])["y"]!
        XCTAssertEqual(y.shape, [1, 1, 5, 5])
        assertClose(y.floats, [12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81,
                               93, 144, 153, 162, 111, 72, 111, 117, 123, 84])
    }

    func testNoPadding() throws {
        let y = try runNode("Conv", [("x", x), ("w", w)], attributes: [attr("kernel_shape", [3, 3])])["y"]!
        XCTAssertEqual(y.shape, [1, 1, 3, 3])
        assertClose(y.floats, [54, 63, 72, 99, 108, 117, 144, 153, 162])
    }

    func testStridesWithPadding() throws {
        let y = try runNode("Conv", [("x", x), ("w", w)], attributes: [attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1])])["y"]!
        XCTAssertEqual(y.shape, [1, 1, 3, 3])
        assertClose(y.floats, [12, 27, 24, 63, 108, 81, 72, 117, 84])
    }

    func testStridesAsymmetricPadding() throws {
        // pads [1, 0, 1, 0] on a 7x5 input with strides 2 (ONNX conv_with_strides_and_asymmetric_padding).
        let x7 = Tensor(shape: [1, 1, 7, 5], floats: (0..<35).map(Float.init))
        let y = try runNode("Conv", [("x", x7), ("w", w)], attributes: [attr("strides", [2, 2]), attr("pads", [1, 0, 1, 0])])["y"]!
        XCTAssertEqual(y.shape, [1, 1, 4, 2])
        assertClose(y.floats, [21, 33, 99, 117, 189, 207, 171, 183])
    }

    func testAutoPadSameLower() throws {
        let y = try runNode("Conv", [("x", x), ("w", w)], attributes: [attr("auto_pad", "SAME_LOWER"), attr("strides", [2, 2])])["y"]!
        XCTAssertEqual(y.shape, [1, 1, 3, 3])
        assertClose(y.floats, [12, 27, 24, 63, 108, 81, 72, 117, 84])
    }

    func testBiasAndGroups() throws {
        // Two groups of one channel each; filter g sees only channel g; bias per filter.
        let x2 = Tensor(shape: [1, 2, 2, 2], floats: [1, 2, 3, 4, 10, 20, 30, 40])
        let w2 = Tensor(shape: [2, 1, 1, 1], floats: [2, -1])
        let b = Tensor(shape: [2], floats: [0.5, 1])
        let y = try runNode("Conv", [("x", x2), ("w", w2), ("b", b)], attributes: [attr("group", 2)])["y"]!
        assertClose(y.floats, [2.5, 4.5, 6.5, 8.5, -9, -19, -29, -39])
    }

    /// Direct-loop convolution in Double: the definition, with nothing shared with the kernels.
    func reference(_ x: Tensor, _ w: Tensor, _ b: Tensor?, strides: [Int], pads: [Int], dilations: [Int], group: Int) -> ([Int], [Float]) {
        let r = x.rank - 2
        let n = x.shape[0], c = x.shape[1], m = w.shape[0], cg = c / group, mg = m / group
        let ins = Array(x.shape[2...]), ks = Array(w.shape[2...])
        var outs = [Int]()
        for i in 0..<r { outs.append((ins[i] + pads[i] + pads[i + r] - (ks[i] - 1) * dilations[i] - 1) / strides[i] + 1) }
        let outCount = outs.reduce(1, *), kCount = ks.reduce(1, *), inCount = ins.reduce(1, *)
        func unravel(_ i: Int, _ dims: [Int]) -> [Int] {
            var i = i; var idx = [Int](repeating: 0, count: dims.count)
            for d in stride(from: dims.count - 1, through: 0, by: -1) { idx[d] = i % dims[d]; i /= dims[d] }
            return idx
        }
        var y = [Float](repeating: 0, count: n * m * outCount)
        for ni in 0..<n { for mi in 0..<m { for o in 0..<outCount {
            let oi = unravel(o, outs)
            var s = Double(b?.floats[mi] ?? 0)
            let grp = mi / mg
            for ci in 0..<cg { for k in 0..<kCount {
                let ki = unravel(k, ks)
                var flat = 0, inside = true
                for d in 0..<r {
                    let p = oi[d] * strides[d] - pads[d] + ki[d] * dilations[d]
                    if p < 0 || p >= ins[d] { inside = false }
                    flat = flat * ins[d] + p
                }
                if inside {
                    s += Double(x.floats[(ni * c + grp * cg + ci) * inCount + flat]) * Double(w.floats[(mi * cg + ci) * kCount + k])
                }
            }}
            y[(ni * m + mi) * outCount + o] = Float(s)
        }}}
        return ([n, m] + outs, y)
    }

    func testAgainstDirectLoops() throws {
        struct Case { var x: [Int]; var w: [Int]; var strides: [Int]; var pads: [Int]; var dilations: [Int]; var group: Int; var bias: Bool }
        let cases = [
            Case(x: [2, 3, 9, 8], w: [4, 3, 3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1, bias: true),
            Case(x: [2, 4, 11, 10], w: [6, 2, 3, 2], strides: [2, 3], pads: [0, 1, 2, 0], dilations: [2, 1], group: 2, bias: false),
            Case(x: [3, 6, 7, 7], w: [6, 1, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 6, bias: true), // depthwise
            Case(x: [2, 8, 5, 6], w: [5, 8, 1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, bias: true), // pointwise GEMM
            Case(x: [1, 3, 14, 14], w: [4, 3, 7, 7], strides: [2, 2], pads: [3, 3, 3, 3], dilations: [1, 1], group: 1, bias: false), // stem-like
            Case(x: [2, 4, 6, 5], w: [4, 4, 1, 1], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, bias: false), // strided 1x1
            Case(x: [2, 3, 10], w: [2, 3, 3], strides: [2], pads: [1, 2], dilations: [2], group: 1, bias: true), // 1-D
            Case(x: [1, 2, 4, 5, 6], w: [3, 2, 2, 3, 2], strides: [1, 2, 1], pads: [1, 0, 1, 0, 1, 1], dilations: [1, 1, 2], group: 1, bias: true), // 3-D
        ]
        for (i, c) in cases.enumerated() {
            let x = Tensor(shape: c.x, floats: pseudoRandom(c.x.reduce(1, *), seed: UInt64(i)))
            let w = Tensor(shape: c.w, floats: pseudoRandom(c.w.reduce(1, *), seed: UInt64(100 + i)))
            let b = c.bias ? Tensor(shape: [c.w[0]], floats: pseudoRandom(c.w[0], seed: UInt64(200 + i))) : nil
            let (shape, expected) = reference(x, w, b, strides: c.strides, pads: c.pads, dilations: c.dilations, group: c.group)
            var inputs = [("x", x), ("w", w)]
            if let b { inputs.append(("b", b)) }
            for threads in [1, 2] {
                let y = try runNode("Conv", inputs, attributes: [attr("strides", c.strides), attr("pads", c.pads),
                                                                  attr("dilations", c.dilations), attr("group", c.group)],
                                    context: ExecutionContext(threads: threads))["y"]!
                XCTAssertEqual(y.shape, shape, "case \(i)")
                assertClose(y.floats, expected, rtol: 1e-5, atol: 1e-5, "case \(i), \(threads) threads")
            }
        }
    }

    func testErrors() throws {
        XCTAssertEqual(errorText { _ = try runNode("Conv", [("x", self.x), ("w", self.w)], attributes: [attr("padding", [1])]) },
                       "node node (Conv): attribute 'padding': unknown attribute for Conv")
        XCTAssertEqual(errorText { _ = try runNode("Conv", [("x", self.x), ("w", self.w)], attributes: [attr("auto_pad", "SAME")]) },
                       "node node (Conv): attribute 'auto_pad': unsupported value 'SAME' (NOTSET, SAME_UPPER, SAME_LOWER or VALID)")
        XCTAssertEqual(errorText { _ = try runNode("Conv", [("x", self.x), ("w", self.w)], attributes: [attr("strides", [1])]) },
                       "node node (Conv): attribute 'strides': has 1 values for 2 spatial dims")
        let w2 = Tensor(shape: [1, 2, 3, 3], floats: [Float](repeating: 1, count: 18))
        XCTAssertEqual(errorText { _ = try runNode("Conv", [("x", self.x), ("w", w2)]) },
                       "node node (Conv): weight W [1, 2, 3, 3] expects 2 input channels for group 1, X [1, 1, 5, 5] has 1")
        let big = Tensor(shape: [1, 1, 7, 7], floats: [Float](repeating: 1, count: 49))
        XCTAssertEqual(errorText { _ = try runNode("Conv", [("x", self.x), ("w", big)]) },
                       "node node (Conv): window extent 7 is larger than the padded input (5) on spatial dim 0")
    }

    func testGradients() throws {
        let x = Tensor(shape: [2, 4, 6, 5], floats: pseudoRandom(240, seed: 1))
        let w = Tensor(shape: [6, 2, 3, 2], floats: pseudoRandom(72, seed: 2))
        let b = Tensor(shape: [6], floats: pseudoRandom(6, seed: 3))
        // Conv is linear in each input, so central differences are exact up to rounding.
        try checkGradients("Conv", [("x", x), ("w", w), ("b", b)],
                           attributes: [attr("strides", [2, 1]), attr("pads", [1, 0, 2, 1]), attr("dilations", [1, 2]), attr("group", 2)],
                           step: 0.5)
        let w1 = Tensor(shape: [3, 4, 1, 1], floats: pseudoRandom(12, seed: 4))
        try checkGradients("Conv", [("x", x), ("w", w1)], step: 0.5)
        let wd = Tensor(shape: [4, 1, 3, 3], floats: pseudoRandom(36, seed: 5))
        try checkGradients("Conv", [("x", x), ("w", wd)], attributes: [attr("group", 4), attr("pads", [1, 1, 1, 1])], step: 0.5)
        let x1 = Tensor(shape: [2, 2, 9], floats: pseudoRandom(36, seed: 6))
        let w1d = Tensor(shape: [3, 2, 3], floats: pseudoRandom(18, seed: 7))
        try checkGradients("Conv", [("x", x1), ("w", w1d)], attributes: [attr("strides", [2]), attr("auto_pad", "SAME_UPPER")], step: 0.5)
    }
}
