// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: inline cases (ONNX's documented
// examples), failure texts, and finite-difference gradients.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class PoolingTests: XCTestCase {
    let x4 = Tensor(shape: [1, 1, 4, 4], floats: (1...16).map(Float.init))
    let x5 = Tensor(shape: [1, 1, 5, 5], floats: (1...25).map(Float.init))

    func testMaxPoolPads() throws {
        let y = try runNode("MaxPool", [("x", x5)], attributes: [attr("kernel_shape", [5, 5]), attr("pads", [2, 2, 2, 2])])["y"]!
        XCTAssertEqual(y.shape, [1, 1, 5, 5])
        assertClose(y.floats, [13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25])
    }

    func testMaxPoolCeilAndDilations() throws {
        let ceil = try runNode("MaxPool", [("x", x4)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("ceil_mode", 1)])["y"]!
        XCTAssertEqual(ceil.shape, [1, 1, 2, 2])
        assertClose(ceil.floats, [11, 12, 15, 16])
        let dilated = try runNode("MaxPool", [("x", x4)], attributes: [attr("kernel_shape", [2, 2]), attr("dilations", [2, 2])])["y"]!
        assertClose(dilated.floats, [11, 12, 15, 16])
    }

    func testMaxPoolSameUpperAndIndices() throws {
        let out = try runNode("MaxPool", [("x", x5)], outputs: ["y", "i"],
                              attributes: [attr("kernel_shape", [2, 2]), attr("strides", [2, 2]), attr("auto_pad", "SAME_UPPER")])
        assertClose(out["y"]!.floats, [7, 9, 10, 17, 19, 20, 22, 24, 25])
        XCTAssertEqual(out["i"]!.ints, [6, 8, 9, 16, 18, 19, 21, 23, 24])
        let columnMajor = try runNode("MaxPool", [("x", x4)], outputs: ["y", "i"],
                                      attributes: [attr("kernel_shape", [2, 2]), attr("strides", [2, 2]), attr("storage_order", 1)])
        // Maxima at (1,1), (1,3), (3,1), (3,3): column-major index h + 4 * w.
        XCTAssertEqual(columnMajor["i"]!.ints, [5, 13, 7, 15])
    }

    func testMaxPoolTiesGoToFirst() throws {
        // All equal: PyTorch sends the gradient to the first element of each window.
        let x = Tensor(shape: [1, 1, 2, 4], floats: [Float](repeating: 1, count: 8))
        let model = oneNodeModel("MaxPool", inputs: ["x"], attributes: [attr("kernel_shape", [2, 2]), attr("strides", [2, 2])])
        let executor = try Executor(model: model)
        let pass = try executor.forward(inputs: ["x": x])
        let g = try executor.backward(pass, outputGradients: ["y": Tensor(shape: [1, 1, 1, 2], floats: [1, 2])], wrt: ["x"])
        XCTAssertEqual(g["x"]!.floats, [1, 0, 2, 0, 0, 0, 0, 0])
    }

    func testAveragePoolPadsAndCeil() throws {
        let exclude = try runNode("AveragePool", [("x", x4)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("ceil_mode", 1)])["y"]!
        assertClose(exclude.floats, [6, 7.5, 12, 13.5])
        // k3 s2 p1 with and without the padding counted: corner window covers 4 real values.
        let excl = try runNode("AveragePool", [("x", x4)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1])])["y"]!
        assertClose(excl.floats, [3.5, 5, 9.5, 11])
        let incl = try runNode("AveragePool", [("x", x4)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1]), attr("count_include_pad", 1)])["y"]!
        assertClose(incl.floats, [14.0 / 9, 30.0 / 9, 57.0 / 9, 99.0 / 9])
        // ceil_mode with count_include_pad: the last window hangs past the end padding, and
        // only the padded positions inside [-1, 5) count (PyTorch's divisor).
        let hang = try runNode("AveragePool", [("x", x4)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1]),
                                                                         attr("count_include_pad", 1), attr("ceil_mode", 1)])["y"]!
        XCTAssertEqual(hang.shape, [1, 1, 3, 3])
        assertClose(hang.floats, [14.0 / 9, 30.0 / 9, 12.0 / 6, 57.0 / 9, 99.0 / 9, 36.0 / 6, 27.0 / 6, 45.0 / 6, 16.0 / 4])
    }

    func testGlobalPools() throws {
        let x = Tensor(shape: [2, 2, 1, 3], floats: [1, 5, 3, -1, -2, -3, 0, 0, 9, 4, 4, 4])
        assertClose(try runNode("GlobalAveragePool", [("x", x)])["y"]!.floats, [3, -2, 3, 4])
        let m = try runNode("GlobalMaxPool", [("x", x)])["y"]!
        XCTAssertEqual(m.shape, [2, 2, 1, 1])
        assertClose(m.floats, [5, -1, 9, 4])
    }

    /// GlobalMaxPool's vector pass finds what the scalar scan it replaced finds: the first NaN,
    /// else the first maximum (+0 and -0 equal), on planes of 1 to 50 values (CBAM's 49 and the
    /// tails past whole vectors) with repeats, signed zeros, infinities and NaNs at random places.
    func testGlobalMaxPoolFindsTheFirstMaximum() {
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 1, 1, -1]
        for count in 1...50 {
            for _ in 0..<40 {
                let plane: [Float] = (0..<count).map { _ in
                    next() % 4 == 0 ? specials[Int(next() % UInt64(specials.count))] : Float(Int(next() % 7)) - 3
                }
                var best = plane[0], expected = 0
                for i in 1..<count where plane[i] > best || (plane[i].isNaN && !best.isNaN) { best = plane[i]; expected = i }
                let at = plane.withUnsafeBufferPointer { GlobalMaxPool.firstMaximum($0.baseAddress!, count: count) }
                XCTAssertEqual(at, expected, "\(plane)")
            }
        }
    }

    func testErrors() {
        XCTAssertEqual(errorText { _ = try runNode("MaxPool", [("x", self.x4)], attributes: [attr("strides", [2, 2])]) },
                       "node node (MaxPool): attribute 'kernel_shape': is required")
        XCTAssertEqual(errorText { _ = try runNode("AveragePool", [("x", self.x4)], attributes: [attr("kernel_shape", [2, 2]), attr("ceil", 1)]) },
                       "node node (AveragePool): attribute 'ceil': unknown attribute for AveragePool")
        XCTAssertEqual(errorText { _ = try runNode("MaxPool", [("x", self.x4)], attributes: [attr("kernel_shape", [2, 2]), attr("storage_order", 2)]) },
                       "node node (MaxPool): attribute 'storage_order': must be 0 or 1, got 2")
        XCTAssertEqual(errorText { _ = try runNode("AveragePool", [("x", self.x4)], attributes: [attr("kernel_shape", [2, 2]), attr("pads", [1, 1])]) },
                       "node node (AveragePool): attribute 'pads': has 2 values for 2 spatial dims (needs 4)")
    }

    func testGradients() throws {
        // Distinct values 0.1 apart (a shuffled ramp), so a 1e-2 step never changes an argmax.
        var ramp = (0..<120).map { Float($0) * 0.1 }
        for i in stride(from: ramp.count - 1, to: 0, by: -1) { ramp.swapAt(i, (i * 37 + 11) % (i + 1)) }
        let x = Tensor(shape: [2, 3, 4, 5], floats: ramp)
        try checkGradients("MaxPool", [("x", x)], attributes: [attr("kernel_shape", [3, 2]), attr("strides", [2, 2]), attr("pads", [1, 0, 1, 1]), attr("ceil_mode", 1)])
        try checkGradients("MaxPool", [("x", x)], attributes: [attr("kernel_shape", [2, 2]), attr("dilations", [2, 1])])
        try checkGradients("GlobalMaxPool", [("x", x)])
        // Average pooling is linear: any step is exact up to rounding.
        try checkGradients("AveragePool", [("x", x)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1]), attr("ceil_mode", 1)], step: 0.5)
        try checkGradients("AveragePool", [("x", x)], attributes: [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1]), attr("count_include_pad", 1)], step: 0.5)
        try checkGradients("GlobalAveragePool", [("x", x)], step: 0.5)
    }
}
