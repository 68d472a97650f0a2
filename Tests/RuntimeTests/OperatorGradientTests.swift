// Finite-difference checks of every backward in the elementwise, shape and reduction
// operators (central differences, Float64 loss, inputs kept away from kinks and ties).

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class OperatorGradientTests: XCTestCase {
    func r(_ shape: [Int], _ seed: UInt64, kinks: [Float] = [], scale: Float = 1) -> Tensor {
        floats(shape, awayFrom(kinks, shape.reduce(1, *), seed: seed, scale: scale))
    }

    func testActivations() throws {
        try checkOpGradients("Relu", [r([2, 3, 4], 1, kinks: [0])])
        try checkOpGradients("Sigmoid", [r([2, 3, 4], 2, scale: 4)])
        try checkOpGradients("HardSigmoid", [r([3, 5], 3, kinks: [-2.5, 2.5], scale: 4)])
        try checkOpGradients("HardSwish", [r([3, 5], 4, kinks: [-3, 3], scale: 5)], opset: 14)
        try checkOpGradients("Clip", [r([3, 5], 5, kinks: [-0.5, 0.5])], attributes: [attr("min", Float(-0.5)), attr("max", Float(0.5))], opset: 6)
        try checkOpGradients("Clip", [r([3, 5], 6, kinks: [-0.3, 0.4]), floats([], [-0.3]), floats([], [0.4])], opset: 13, wrt: [0])
    }

    func testBroadcastingArithmetic() throws {
        // a: [2, 3, 4] against b: [3, 1] (b broadcast over dims 0 and 2), and the reverse.
        for op in ["Add", "Sub", "Mul"] {
            try checkOpGradients(op, [r([2, 3, 4], 10), r([3, 1], 11)])
            try checkOpGradients(op, [r([1, 4], 12), r([2, 3, 1], 13)])
        }
        // Div: keep the divisor away from 0.
        let b = floats([3, 1], [0.7, -1.3, 1.9])
        try checkOpGradients("Div", [r([2, 3, 4], 14), b], step: 1e-3)
        try checkOpGradients("Div", [r([4], 15), floats([2, 1], [1.5, -0.8])], step: 1e-3)
        // CBAM's gates: x * sigmoid-gate [N, C, 1, 1] and [N, 1, H, W].
        try checkOpGradients("Mul", [r([2, 4, 3, 3], 16), r([2, 4, 1, 1], 17)])
        try checkOpGradients("Mul", [r([2, 4, 3, 3], 18), r([2, 1, 3, 3], 19)])
    }

    func testShapeOperators() throws {
        try checkOpGradients("Concat", [r([2, 1, 3], 20), r([2, 2, 3], 21)], attributes: [attr("axis", 1)])
        try checkOpGradients("Split", [r([2, 5, 2], 22), ints([2, 3])], outputs: 2, attributes: [attr("axis", 1)], opset: 13)
        try checkOpGradients("Split", [r([7], 23)], outputs: 3, attributes: [attr("num_outputs", 3)], opset: 18)
        try checkOpGradients("Slice", [r([4, 5], 24), ints([3, 1]), ints([0, 5]), ints([0, 1]), ints([-1, 2])])
        try checkOpGradients("Slice", [r([1, 2, 4, 4], 25)], attributes: [attr("starts", [2, 0]), attr("ends", [4, 2]), attr("axes", [2, 3])], opset: 9)
        try checkOpGradients("Reshape", [r([2, 6], 26), ints([3, -1])])
        try checkOpGradients("Flatten", [r([2, 3, 2], 27)])
        try checkOpGradients("Squeeze", [r([2, 1, 3], 28), ints([1])], opset: 13)
        try checkOpGradients("Unsqueeze", [r([2, 3], 29), ints([0])], opset: 13)
        try checkOpGradients("Transpose", [r([2, 3, 4], 30)], attributes: [attr("perm", [2, 0, 1])])
        try checkOpGradients("Expand", [r([3, 1], 31), ints([2, 3, 4])])
        try checkOpGradients("Gather", [r([4, 3], 32), ints([2, 2], [3, 0, -1, 1])], attributes: [attr("axis", 0)])
        try checkOpGradients("Gather", [r([2, 4], 33), ints([3], [1, 1, 2])], attributes: [attr("axis", 1)])
        try checkOpGradients("Identity", [r([3], 34)])
        try checkOpGradients("Dropout", [r([3], 35)], opset: 13)
        try checkOpGradients("Cast", [r([3], 36)], attributes: [attr("to", 1)])
        for mode in ["constant", "reflect", "edge"] {
            try checkOpGradients("Pad", [r([2, 3, 4], 37), ints([0, 2, 1, 0, 2, 3])], attributes: [attr("mode", mode)])
        }
        try checkOpGradients("Pad", [r([2, 4], 38), ints([0, 3, 0, -1])], attributes: [attr("mode", "wrap")], opset: 19)
    }

    func testReductionsAndSoftmax() throws {
        try checkOpGradients("ReduceMean", [r([2, 3, 4], 40)], attributes: [attr("axes", [0, 2])], opset: 13)
        try checkOpGradients("ReduceMean", [r([2, 3, 4], 41), ints([1])], attributes: [attr("keepdims", 0)], opset: 18)
        try checkOpGradients("ReduceSum", [r([2, 3, 4], 42), ints([-1])], opset: 13)
        // Random values have no ties, so both tie rules agree with finite differences.
        try checkOpGradients("ReduceMax", [r([2, 3, 4], 43)], attributes: [attr("axes", [1])], opset: 13, step: 1e-3)
        try checkOpGradients("ReduceMax", [r([2, 3, 4], 44), ints([0, 2])], attributes: [attr("keepdims", 0)], opset: 18, step: 1e-3)
        try checkOpGradients("Softmax", [r([2, 3, 4], 45, scale: 3)], attributes: [attr("axis", 1)], opset: 13)
        try checkOpGradients("Softmax", [r([2, 3, 4], 46, scale: 3)], attributes: [attr("axis", 1)], opset: 11)
        try checkOpGradients("LogSoftmax", [r([2, 3, 4], 47, scale: 3)], opset: 13)
        try checkOpGradients("LogSoftmax", [r([2, 3, 4], 48, scale: 3)], attributes: [attr("axis", 1)], opset: 11)
    }
}
