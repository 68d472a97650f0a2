// Shape and data-movement operators: inline examples per opset form, constant propagation
// through PyTorch-style index arithmetic, and exact error texts.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ShapeOpsTests: XCTestCase {
    let x23 = floats([2, 3], [1, 2, 3, 4, 5, 6])

    func testConcat() throws {
        let y = try run1("Concat", [x23, floats([2, 1], [7, 8])], attributes: [attr("axis", -1)])
        XCTAssertEqual(y, floats([2, 4], [1, 2, 3, 7, 4, 5, 6, 8]))
        XCTAssertEqual(try run1("Concat", [ints([1], [1]), ints([0], []), ints([2], [2, 3])], attributes: [attr("axis", 0)]), ints([1, 2, 3]))
        XCTAssertEqual(opError("Concat", [x23, x23]), "node n (Concat): attribute 'axis': required attribute is missing")
        XCTAssertEqual(opError("Concat", [x23, floats([3, 1], [0, 0, 0])], attributes: [attr("axis", 1)]),
                       "node n (Concat): input 1 has shape [3, 1], incompatible with [2, 3] along axis 1")
    }

    func testSplitForms() throws {
        let x = floats([2, 4], (0..<8).map(Float.init))
        // Equal parts (no sizes given).
        let equal = try runOp("Split", [x], outputs: 2, attributes: [attr("axis", 1)], opset: 13)
        XCTAssertEqual(equal, [floats([2, 2], [0, 1, 4, 5]), floats([2, 2], [2, 3, 6, 7])])
        // Opset 11: sizes as an attribute.
        let old = try runOp("Split", [x], outputs: 2, attributes: [attr("axis", 1), attr("split", [1, 3])], opset: 11)
        XCTAssertEqual(old, [floats([2, 1], [0, 4]), floats([2, 3], [1, 2, 3, 5, 6, 7])])
        // Opset 13: sizes as an input.
        let new = try runOp("Split", [x, ints([3, 1])], outputs: 2, attributes: [attr("axis", -1)], opset: 13)
        XCTAssertEqual(new, [floats([2, 3], [0, 1, 2, 4, 5, 6]), floats([2, 1], [3, 7])])
        // Opset 18: num_outputs with a smaller last chunk (5 -> 2, 2, 1).
        let odd = try runOp("Split", [floats([5], [1, 2, 3, 4, 5])], outputs: 3, attributes: [attr("num_outputs", 3)], opset: 18)
        XCTAssertEqual(odd, [floats([2], [1, 2]), floats([2], [3, 4]), floats([1], [5])])
        XCTAssertEqual(opError("Split", [floats([5], [1, 2, 3, 4, 5])], outputs: 2, opset: 13),
                       "node n (Split): axis length 5 does not split evenly into 2 outputs")
        XCTAssertEqual(opError("Split", [x, ints([2, 1])], outputs: 2, attributes: [attr("axis", 1)], opset: 13),
                       "node n (Split): split sizes [2, 1] do not add up to the axis length 4")
        XCTAssertEqual(opError("Split", [x], outputs: 2, attributes: [attr("num_outputs", 3)], opset: 18),
                       "node n (Split): attribute 'num_outputs': is 3 but the node has 2 outputs")
    }

    func testSliceWithInputs() throws {
        let x = floats([3, 4], (0..<12).map(Float.init))
        // x[0:2, 1:3]
        XCTAssertEqual(try run1("Slice", [x, ints([0, 1]), ints([2, 3])]), floats([2, 2], [1, 2, 5, 6]))
        // Negative start, end beyond the axis (clamped), explicit axes.
        XCTAssertEqual(try run1("Slice", [x, ints([-2]), ints([1000]), ints([1])]), floats([3, 2], [2, 3, 6, 7, 10, 11]))
        // Negative step: x[::-1, ::-2] with INT64_MIN-style ends.
        let rev = try run1("Slice", [x, ints([-1, -1]), ints([Int64.min, Int64.min]), ints([0, 1]), ints([-1, -2])])
        XCTAssertEqual(rev, floats([3, 2], [11, 9, 7, 5, 3, 1]))
        // Step 2 on the last axis: MA-Net never needs it, PyTorch's x[:, ::2] does.
        XCTAssertEqual(try run1("Slice", [x, ints([0]), ints([4]), ints([-1]), ints([2])]), floats([3, 2], [0, 2, 4, 6, 8, 10]))
        // Empty result when start >= end.
        XCTAssertEqual(try run1("Slice", [x, ints([3]), ints([1]), ints([1])]).shape, [3, 0])
        XCTAssertEqual(opError("Slice", [x, ints([0]), ints([1]), ints([0]), ints([0])]), "node n (Slice): step for axis 0 is 0")
        XCTAssertEqual(opError("Slice", [x, ints([0]), ints([1]), ints([2])]), "node n (Slice): axis 2 is out of range for rank 2")
    }

    func testSliceAttributeForm() throws {
        // MA-Net's quadrant cut: x[:, :, 0:2, 2:4] of a [1, 1, 4, 4] map, opset 9 attributes.
        let x = floats([1, 1, 4, 4], (0..<16).map(Float.init))
        let y = try run1("Slice", [x], attributes: [attr("starts", [0, 2]), attr("ends", [2, 4]), attr("axes", [2, 3])], opset: 9)
        XCTAssertEqual(y, floats([1, 1, 2, 2], [2, 3, 6, 7]))
        XCTAssertEqual(opError("Slice", [x], attributes: [attr("starts", [0])], opset: 9),
                       "node n (Slice): attribute 'ends': required attribute is missing")
    }

    func testReshapeZeroAndMinusOne() throws {
        let x = floats([2, 3, 4], (0..<24).map(Float.init))
        XCTAssertEqual(try run1("Reshape", [x, ints([0, -1])]).shape, [2, 12])
        XCTAssertEqual(try run1("Reshape", [x, ints([-1, 2, 2])]).shape, [6, 2, 2])
        // allowzero: 0 means a zero-length dim, not "copy".
        XCTAssertEqual(try run1("Reshape", [floats([0, 3], []), ints([3, 0])], attributes: [attr("allowzero", 1)], opset: 14).shape, [3, 0])
        XCTAssertEqual(opError("Reshape", [x, ints([5, -1])]), "node n (Reshape): cannot reshape [2, 3, 4] to [5, -1]")
        XCTAssertEqual(opError("Reshape", [x, ints([-1, -1])]), "node n (Reshape): shape [-1, -1] has more than one -1")
        XCTAssertEqual(opError("Reshape", [x, ints([2, 2])]), "node n (Reshape): cannot reshape [2, 3, 4] (24 elements) to [2, 2]")
    }

    func testFlatten() throws {
        let x = floats([2, 3, 2, 2], [Float](repeating: 1, count: 24))
        XCTAssertEqual(try run1("Flatten", [x]).shape, [2, 12])
        XCTAssertEqual(try run1("Flatten", [x], attributes: [attr("axis", 0)]).shape, [1, 24])
        XCTAssertEqual(try run1("Flatten", [x], attributes: [attr("axis", -1)], opset: 13).shape, [12, 2])
        XCTAssertEqual(try run1("Flatten", [x], attributes: [attr("axis", 4)]).shape, [24, 1])
        XCTAssertEqual(opError("Flatten", [x], attributes: [attr("axis", 5)]), "node n (Flatten): axis 5 is out of range for rank 4")
    }

    func testSqueezeUnsqueezeBothForms() throws {
        let x = floats([1, 3, 1, 2], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try run1("Squeeze", [x]).shape, [3, 2])
        XCTAssertEqual(try run1("Squeeze", [x], attributes: [attr("axes", [-2])], opset: 11).shape, [1, 3, 2])
        XCTAssertEqual(try run1("Squeeze", [x, ints([0])], opset: 13).shape, [3, 1, 2])
        XCTAssertEqual(opError("Squeeze", [x, ints([1])], opset: 13), "node n (Squeeze): cannot squeeze axis 1 of length 3")
        let v = floats([3], [1, 2, 3])
        XCTAssertEqual(try run1("Unsqueeze", [v], attributes: [attr("axes", [0, 2])], opset: 11).shape, [1, 3, 1])
        XCTAssertEqual(try run1("Unsqueeze", [v, ints([-1, 0])], opset: 13).shape, [1, 3, 1])
        XCTAssertEqual(try run1("Unsqueeze", [ints([], [7]), ints([0])], opset: 13), ints([7]))
        XCTAssertEqual(opError("Unsqueeze", [v, ints([0, 0])], opset: 13), "node n (Unsqueeze): axis 0 is repeated in [0, 0]")
        XCTAssertEqual(opError("Unsqueeze", [v], opset: 11), "node n (Unsqueeze): attribute 'axes': required attribute is missing")
    }

    func testTranspose() throws {
        XCTAssertEqual(try run1("Transpose", [x23]), floats([3, 2], [1, 4, 2, 5, 3, 6]))
        let x = floats([2, 2, 2], (0..<8).map(Float.init))
        XCTAssertEqual(try run1("Transpose", [x], attributes: [attr("perm", [1, 2, 0])]), floats([2, 2, 2], [0, 4, 1, 5, 2, 6, 3, 7]))
        XCTAssertEqual(opError("Transpose", [x], attributes: [attr("perm", [0, 0, 1])]),
                       "node n (Transpose): attribute 'perm': [0, 0, 1] is not a permutation of 0..<3")
    }

    func testExpand() throws {
        XCTAssertEqual(try run1("Expand", [floats([3, 1], [1, 2, 3]), ints([2, 1, 2])]),
                       floats([2, 3, 2], [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]))
        // The target may be smaller: shape [1] keeps x as it is.
        XCTAssertEqual(try run1("Expand", [x23, ints([1])]), x23)
        XCTAssertEqual(opError("Expand", [x23, ints([4])]), "node n (Expand): shape [2, 3] cannot be broadcast to [4]")
    }

    // A target chosen by the model's data must not abort the process: a count that overflows,
    // and one that would need more bytes than the machine has, are errors before allocating.
    func testExpandToUnallocatableShapesIsAnError() {
        let big: Int64 = 1 << 32
        XCTAssertEqual(opError("Expand", [floats([1], [1]), ints([big, big])]),
                       "node n (Expand): output shape [\(big), \(big)] has more elements than an Int can count")
        let tooMany = opError("Expand", [floats([1], [1]), ints([1 << 30, 1 << 30])])
        XCTAssertTrue(tooMany.hasPrefix("node n (Expand): output shape [1073741824, 1073741824] needs 4611686018427387904 bytes, more than this machine's "),
                      tooMany)
    }

    func testPadByUnallocatableAmountsIsAnError() {
        let x = floats([1, 3], [1, 2, 3])
        XCTAssertEqual(opError("Pad", [x, ints([0, 0, 0, Int64.max])]),
                       "node n (Pad): 3 + 0 + \(Int64.max) overflows")
        let huge = opError("Pad", [x, ints([0, 0, 1 << 20, 1 << 20])])
        XCTAssertTrue(huge.hasPrefix("node n (Pad): output shape [1048577, 1048579] needs 4398063288332 bytes, more than this machine's "), huge)
    }

    func testPadModes() throws {
        let x = floats([1, 3], [1, 2, 3])
        let pads = ints([0, 2, 0, 1])
        XCTAssertEqual(try run1("Pad", [x, pads, floats([], [9])]).floats, [9, 9, 1, 2, 3, 9])
        XCTAssertEqual(try run1("Pad", [x, pads], attributes: [attr("mode", "reflect")]).floats, [3, 2, 1, 2, 3, 2])
        XCTAssertEqual(try run1("Pad", [x, pads], attributes: [attr("mode", "edge")]).floats, [1, 1, 1, 2, 3, 3])
        XCTAssertEqual(try run1("Pad", [x, pads], attributes: [attr("mode", "wrap")], opset: 19).floats, [2, 3, 1, 2, 3, 1])
        // Negative pads crop.
        XCTAssertEqual(try run1("Pad", [x, ints([0, -1, 0, 0])]).floats, [2, 3])
        // Opset 2 attributes; opset 18 axes.
        XCTAssertEqual(try run1("Pad", [x], attributes: [attr("pads", [1, 0, 0, 0]), attr("value", Float(-1))], opset: 2),
                       floats([2, 3], [-1, -1, -1, 1, 2, 3]))
        XCTAssertEqual(try run1("Pad", [x, ints([1, 1]), nil, ints([-1])], opset: 18).floats, [0, 1, 2, 3, 0])
        XCTAssertEqual(opError("Pad", [x, pads], attributes: [attr("mode", "wrap")], opset: 18),
                       "node n (Pad): attribute 'mode': unknown mode 'wrap'")
        XCTAssertEqual(opError("Pad", [x, ints([1, 1])]), "node n (Pad): pads has 2 values; expected 4 for 2 axes")
    }

    func testShapeStartEnd() throws {
        let x = floats([2, 3, 4, 5], [Float](repeating: 0, count: 120))
        XCTAssertEqual(try run1("Shape", [x]), ints([2, 3, 4, 5]))
        XCTAssertEqual(try run1("Shape", [x], attributes: [attr("start", 1), attr("end", -1)], opset: 15), ints([3, 4]))
        XCTAssertEqual(try run1("Shape", [x], attributes: [attr("start", -10)], opset: 15), ints([2, 3, 4, 5]))
        XCTAssertEqual(opError("Shape", [x], attributes: [attr("start", 1)], opset: 13),
                       "node n (Shape): attribute 'start': unknown attribute for Shape")
    }

    func testGather() throws {
        let data = floats([3, 2], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try run1("Gather", [data, ints([2, 2], [0, 1, -1, 0])]), floats([2, 2, 2], [1, 2, 3, 4, 5, 6, 1, 2]))
        XCTAssertEqual(try run1("Gather", [data, ints([], [-1])], attributes: [attr("axis", 1)]), floats([3], [2, 4, 6]))
        XCTAssertEqual(opError("Gather", [data, ints([1], [3])]), "node n (Gather): index 3 is out of range for axis length 3")
    }

    func testConstantForms() throws {
        XCTAssertEqual(try run1("Constant", [], attributes: [Attribute(name: "value", value: .tensor(TensorData(dims: [2], int64s: [4, 5])))]), ints([4, 5]))
        XCTAssertEqual(try run1("Constant", [], attributes: [attr("value_float", Float(1.5))]), floats([], [1.5]))
        XCTAssertEqual(try run1("Constant", [], attributes: [Attribute(name: "value_floats", value: .floats([1, 2]))]), floats([2], [1, 2]))
        XCTAssertEqual(try run1("Constant", [], attributes: [attr("value_int", 3)]), ints([], [3]))
        XCTAssertEqual(try run1("Constant", [], attributes: [attr("value_ints", [3, 4])]), ints([3, 4]))
        XCTAssertEqual(opError("Constant", [], attributes: [attr("value_string", "hi")]),
                       "node n (Constant): attribute 'value_string': is not supported: the runtime holds only float and integer tensors")
        XCTAssertEqual(opError("Constant", []), "node n (Constant): attribute 'value': exactly one value attribute is required, found none")
        XCTAssertEqual(opError("Constant", [], attributes: [attr("value_int", 1), attr("value_ints", [1])]),
                       "node n (Constant): attribute 'value_int': exactly one value attribute is allowed, found value_int, value_ints")
    }

    func testIdentityAndDropout() throws {
        XCTAssertEqual(try run1("Identity", [x23]), x23)
        XCTAssertEqual(try runOp("Dropout", [x23], outputs: 2, attributes: [attr("ratio", Float(0.3))], opset: 10),
                       [x23, ints([2, 3], [1, 1, 1, 1, 1, 1])])
        XCTAssertEqual(try run1("Dropout", [x23, floats([], [0.5]), ints([], [0])], opset: 13), x23)
        XCTAssertEqual(opError("Dropout", [x23, floats([], [0.5]), ints([], [1])], opset: 13),
                       "node n (Dropout): training_mode = true is not supported: the runtime runs Dropout only as the identity")
    }

    func testCast() throws {
        func to(_ t: ElementType) -> Attribute { attr("to", Int(t.rawValue)) }
        XCTAssertEqual(try run1("Cast", [floats([4], [1.9, -1.9, 0, 255])], attributes: [to(.int64)]), ints([4], [1, -1, 0, 255]))
        XCTAssertEqual(try run1("Cast", [ints([2], [3, -2])], attributes: [to(.float)]), floats([2], [3, -2]))
        XCTAssertEqual(try run1("Cast", [floats([3], [0, -0.5, 2])], attributes: [to(.bool)]), ints([3], [0, 1, 1]))
        XCTAssertEqual(try run1("Cast", [ints([2], [0, 255])], attributes: [to(.uint8)]), ints([2], [0, 255]))
        XCTAssertEqual(opError("Cast", [ints([1], [256])], attributes: [to(.uint8)]), "node n (Cast): value 256 at index 0 does not fit uint8")
        XCTAssertEqual(opError("Cast", [floats([1], [.nan])], attributes: [to(.int32)]), "node n (Cast): value nan at index 0 does not fit int32")
        XCTAssertEqual(opError("Cast", [x23], attributes: [to(.double)]),
                       "node n (Cast): attribute 'to': casting to double is not supported: the runtime computes in float32 and int64 and casts only to float, bool and integer types up to 64 bits")
        XCTAssertEqual(opError("Cast", [x23], attributes: [attr("to", 17)]),
                       "node n (Cast): attribute 'to': casting to type 17 is not supported: the runtime computes in float32 and int64 and casts only to float, bool and integer types up to 64 bits")
    }

    /// PyTorch's TorchScript exporter flattens with Shape -> Gather -> Unsqueeze -> Concat ->
    /// Reshape; with the dims known the target must be a constant at shape-inference time.
    func testIndexArithmeticFoldsToConstants() throws {
        let xShape = ValueShape(dtype: .float32, dims: [4, 512, 1, 1])
        let shape = try makeOp("Shape", inputs: 1).inferShapes([xShape])[0]
        XCTAssertEqual(shape.constant, ints([4, 512, 1, 1]))
        let batch = try makeOp("Gather", inputs: 2, attributes: [attr("axis", 0)]).inferShapes([shape, ValueShape(ints([], [0]))])[0]
        XCTAssertEqual(batch.constant, ints([], [4]))
        let half = try makeOp("Div", inputs: 2).inferShapes([batch, ValueShape(ints([], [2]))])[0]
        XCTAssertEqual(half.constant, ints([], [2]))
        let unsq = try makeOp("Unsqueeze", inputs: 2, opset: 13).inferShapes([half, ValueShape(ints([0]))])[0]
        let target = try makeOp("Concat", inputs: 2, attributes: [attr("axis", 0)]).inferShapes([unsq, ValueShape(ints([-1]))])[0]
        XCTAssertEqual(target.constant, ints([2, -1]))
        let reshaped = try makeOp("Reshape", inputs: 2).inferShapes([xShape, target])[0]
        XCTAssertEqual(reshaped.dims, [2, 1024])
        let sliced = try makeOp("Slice", inputs: 3).inferShapes([shape, ValueShape(ints([1])), ValueShape(ints([2]))])[0]
        XCTAssertEqual(sliced.constant, ints([512]))
        let cast = try makeOp("Cast", inputs: 1, attributes: [attr("to", 1)]).inferShapes([sliced])[0]
        XCTAssertEqual(cast.constant, floats([1], [512]))
        let squeezed = try makeOp("Squeeze", inputs: 2, opset: 13).inferShapes([sliced, ValueShape(ints([0]))])[0]
        XCTAssertEqual(squeezed.constant, ints([], [512]))
        // With a symbolic batch the Shape is not constant, but its length is known.
        let symbolic = try makeOp("Shape", inputs: 1).inferShapes([ValueShape(dtype: .float32, dims: [nil, 512, 1, 1])])[0]
        XCTAssertNil(symbolic.constant)
        XCTAssertEqual(symbolic.dims, [4])
        let flat = try makeOp("Reshape", inputs: 2).inferShapes([ValueShape(dtype: .float32, dims: [nil, 512, 1, 1]), ValueShape(ints([0, -1]))])[0]
        XCTAssertEqual(flat.dims, [nil, nil])
        let flat2 = try makeOp("Flatten", inputs: 1).inferShapes([ValueShape(dtype: .float32, dims: [nil, 512, 1, 1])])[0]
        XCTAssertEqual(flat2.dims, [nil, 512])
    }
}
