// Activations and broadcasting arithmetic: inline examples, int64 paths, exact error texts,
// and the broadcasting helper itself.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ElementwiseTests: XCTestCase {
    func testRelu() throws {
        let y = try run1("Relu", [floats([2, 2], [-1, 0, 2.5, -0.5])])
        XCTAssertEqual(y, floats([2, 2], [0, 0, 2.5, 0]))
        XCTAssertEqual(try run1("Relu", [ints([3], [-4, 0, 7])]), ints([3], [0, 0, 7]))
    }

    func testSigmoidIsStableAtExtremes() throws {
        let y = try run1("Sigmoid", [floats([4], [0, 2, -100, 100])])
        // sigmoid(-100) = 3.7200760e-44 is subnormal in Float: rounded from the Double at run time.
        assertClose(y.floats, [0.5, 0.880797, Float(3.7200760e-44 as Double), 1], rtol: 1e-5, atol: 0)
        XCTAssertEqual(try run1("Sigmoid", [floats([1], [-200])]).floats, [0])
    }

    func testHardSigmoidAndHardSwish() throws {
        let hs = try run1("HardSigmoid", [floats([4], [-3, 0, 1, 3])], attributes: [attr("alpha", Float(0.5)), attr("beta", Float(0.6))])
        assertClose(hs.floats, [0, 0.6, 1, 1])
        let hw = try run1("HardSwish", [floats([5], [-4, -1, 0, 1.5, 4])], opset: 14)
        assertClose(hw.floats, [0, -1.0 / 3, 0, 1.125, 4])
    }

    func testClipAttributeAndInputForms() throws {
        let x = floats([5], [-2, -0.5, 0, 0.5, 2])
        let old = try run1("Clip", [x], attributes: [attr("min", Float(-1)), attr("max", Float(1))], opset: 6)
        XCTAssertEqual(old.floats, [-1, -0.5, 0, 0.5, 1])
        let new = try run1("Clip", [x, floats([], [-0.25]), floats([], [0.25])], opset: 13)
        XCTAssertEqual(new.floats, [-0.25, -0.25, 0, 0.25, 0.25])
        // Omitted min: only the upper bound applies.
        XCTAssertEqual(try run1("Clip", [x, nil, floats([], [0])], opset: 13).floats, [-2, -0.5, 0, 0, 0])
        XCTAssertEqual(try run1("Clip", [ints([3], [-5, 1, 9]), ints([], [0]), ints([], [4])], opset: 13).ints, [0, 1, 4])
        XCTAssertEqual(opError("Clip", [x], attributes: [attr("min", Float(0))], opset: 13),
                       "node n (Clip): attribute 'min': unknown attribute for Clip")
    }

    func testAddBroadcastsBothWays() throws {
        // a: [2, 1, 3] + b: [2, 1] -> [2, 2, 3]
        let a = floats([2, 1, 3], [1, 2, 3, 4, 5, 6])
        let b = floats([2, 1], [10, 20])
        let y = try run1("Add", [a, b])
        XCTAssertEqual(y.shape, [2, 2, 3])
        XCTAssertEqual(y.floats, [11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26])
    }

    func testSubMulDivWithScalar() throws {
        let a = floats([2, 2], [1, 2, 3, 4])
        let s = floats([], [2])
        XCTAssertEqual(try run1("Sub", [a, s]).floats, [-1, 0, 1, 2])
        XCTAssertEqual(try run1("Sub", [s, a]).floats, [1, 0, -1, -2])
        XCTAssertEqual(try run1("Mul", [a, s]).floats, [2, 4, 6, 8])
        XCTAssertEqual(try run1("Div", [a, s]).floats, [0.5, 1, 1.5, 2])
    }

    func testCBAMGateBroadcast() throws {
        // x: [1, 2, 2, 2] * gate: [1, 2, 1, 1] (channel attention) and * [1, 1, 2, 2] (spatial).
        let x = floats([1, 2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(try run1("Mul", [x, floats([1, 2, 1, 1], [10, 100])]).floats, [10, 20, 30, 40, 500, 600, 700, 800])
        XCTAssertEqual(try run1("Mul", [x, floats([1, 1, 2, 2], [1, 0, 0, 2])]).floats, [1, 0, 0, 8, 5, 0, 0, 16])
    }

    func testInt64Arithmetic() throws {
        let a = ints([4], [7, -7, 9, 224])
        XCTAssertEqual(try run1("Div", [a, ints([4], [2, 2, -4, 2])]).ints, [3, -3, -2, 112])
        XCTAssertEqual(try run1("Mul", [a, ints([], [3])]).ints, [21, -21, 27, 672])
        XCTAssertEqual(try run1("Add", [a, ints([1], [1])]).ints, [8, -6, 10, 225])
        XCTAssertEqual(try run1("Sub", [a, ints([1], [1])]).ints, [6, -8, 8, 223])
    }

    func testArithmeticErrors() {
        XCTAssertEqual(opError("Div", [ints([1], [1]), ints([1], [0])]), "node n (Div): integer division by zero")
        XCTAssertEqual(opError("Add", [floats([2, 3], [Float](repeating: 0, count: 6)), floats([2], [0, 0])]),
                       "node n (Add): shapes [2, 3] and [2] cannot be broadcast")
        XCTAssertEqual(opError("Mul", [floats([1], [0]), ints([1], [0])]), "node n (Mul): input types differ: float and int64")
        XCTAssertEqual(opError("Add", [floats([1], [0])]), "node n (Add): expected 2 inputs, got 1")
        XCTAssertEqual(opError("Relu", [floats([1], [0])], attributes: [attr("alpha", Float(1))]),
                       "node n (Relu): attribute 'alpha': unknown attribute for Relu")
    }

    func testBroadcastHelper() {
        XCTAssertEqual(Broadcast.shape([2, 1, 3], [4, 1]), [2, 4, 3])
        XCTAssertNil(Broadcast.shape([2, 3], [3, 2]))
        XCTAssertEqual(Broadcast.shape([nil, 1, 3], [5, 1]), [nil, 5, 3])
        XCTAssertEqual(Broadcast.shape([nil, 3] as [Int?], [1, 1]), [nil, 3])
        XCTAssertEqual(Broadcast.strides(of: [3, 1], in: [2, 3, 4]), [0, 1, 0])
        // [2, 3] summed down to [3] and to [2, 1].
        let g: [Float] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(Broadcast.reduce(g, from: [2, 3], to: [3]), [5, 7, 9])
        XCTAssertEqual(Broadcast.reduce(g, from: [2, 3], to: [2, 1]), [6, 15])
        XCTAssertEqual(Broadcast.reduce(g, from: [2, 3], to: []), [21])
        XCTAssertEqual(Broadcast.expand([1, 2] as [Float], from: [2, 1], to: [2, 3]), [1, 1, 1, 2, 2, 2])
    }

    func testElementwiseInferenceWithSymbolicBatch() throws {
        let op = try makeOp("Add", inputs: 2)
        let out = try op.inferShapes([ValueShape(dtype: .float32, dims: [nil, 64, 28, 28]), ValueShape(dtype: .float32, dims: [1, 64, 1, 1])])
        XCTAssertEqual(out[0].dims, [nil, 64, 28, 28])
        XCTAssertThrowsError(try op.inferShapes([ValueShape(dtype: .float32, dims: [3]), ValueShape(dtype: .float32, dims: [4])]))
    }
}
