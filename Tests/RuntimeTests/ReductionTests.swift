// Reductions and (log-)softmax: attribute and input axes per opset, keepdims, noop, the
// opset-13 change of Softmax's axis meaning, and ReduceMax's tie rule.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ReductionTests: XCTestCase {
    // x: [2, 2, 3]
    let x = floats([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])

    func testReduceMeanAttributeAndInputAxes() throws {
        let old = try run1("ReduceMean", [x], attributes: [attr("axes", [-1])], opset: 13)
        XCTAssertEqual(old, floats([2, 2, 1], [2, 5, 8, 11]))
        let new = try run1("ReduceMean", [x, ints([1])], attributes: [attr("keepdims", 0)], opset: 18)
        XCTAssertEqual(new, floats([2, 3], [2.5, 3.5, 4.5, 8.5, 9.5, 10.5]))
        // No axes: everything.
        XCTAssertEqual(try run1("ReduceMean", [x], opset: 18), floats([1, 1, 1], [6.5]))
        // Spatial mean of a [1, 1, 2, 2] map (CBAM's channel-mean map uses axis 1 instead).
        XCTAssertEqual(try run1("ReduceMean", [floats([1, 1, 2, 2], [1, 2, 3, 6])], attributes: [attr("axes", [2, 3]), attr("keepdims", 0)], opset: 13),
                       floats([1, 1], [3]))
        XCTAssertEqual(opError("ReduceMean", [x, ints([1])], opset: 13), "node n (ReduceMean): expected 1 inputs, got 2")
        XCTAssertEqual(opError("ReduceMean", [x], attributes: [attr("axes", [0])], opset: 18),
                       "node n (ReduceMean): attribute 'axes': unknown attribute for ReduceMean")
    }

    func testReduceSumInputAxesFrom13AndNoop() throws {
        XCTAssertEqual(try run1("ReduceSum", [x, ints([0, 2])], attributes: [attr("keepdims", 0)], opset: 13), floats([2], [30, 48]))
        XCTAssertEqual(try run1("ReduceSum", [x], attributes: [attr("axes", [0])], opset: 11),
                       floats([1, 2, 3], [8, 10, 12, 14, 16, 18]))
        // noop_with_empty_axes: empty axes means "do nothing" instead of "everything".
        XCTAssertEqual(try run1("ReduceSum", [x, ints([])], attributes: [attr("noop_with_empty_axes", 1)], opset: 13), x)
        XCTAssertEqual(try run1("ReduceSum", [x, ints([])], opset: 13), floats([1, 1, 1], [78]))
        XCTAssertEqual(try run1("ReduceSum", [ints([2, 2], [1, 2, 3, 4]), ints([1])], opset: 13), ints([2, 1], [3, 7]))
        XCTAssertEqual(opError("ReduceSum", [x, ints([3])], opset: 13), "node n (ReduceSum): axis 3 is out of range for rank 3")
    }

    func testReduceMax() throws {
        XCTAssertEqual(try run1("ReduceMax", [x], attributes: [attr("axes", [1]), attr("keepdims", 0)], opset: 13),
                       floats([2, 3], [4, 5, 6, 10, 11, 12]))
        XCTAssertEqual(try run1("ReduceMax", [x, ints([0, 1])], opset: 18), floats([1, 1, 3], [10, 11, 12]))
        XCTAssertEqual(try run1("ReduceMax", [ints([3], [-5, 9, 2])], opset: 13), ints([1], [9]))
        XCTAssertEqual(try run1("ReduceMax", [floats([3], [1, .nan, 2])], opset: 13).floats[0].isNaN, true)
    }

    /// Ties: one-axis, keepdims=0 ReduceMax gives the whole gradient to the first maximal index
    /// (PyTorch's `torch.max(x, dim)[0]`, as in CBAM's ChannelPool); otherwise it is split
    /// evenly (`torch.amax`).
    func testReduceMaxTieGradients() throws {
        // x: [1, 3, 2] channel values per position: position 0 ties channels 0 and 2 (value 5),
        // position 1 ties channels 0 and 1 (value 1).
        let t = floats([1, 3, 2], [5, 1, 2, 1, 5, 0])
        let op = try makeOp("ReduceMax", inputs: 1, attributes: [attr("axes", [1]), attr("keepdims", 0)], opset: 13)
        let y = try op.forward([t], ExecutionContext()).outputs
        XCTAssertEqual(y[0], floats([1, 2], [5, 1]))
        let g = try op.backward([floats([1, 2], [1, 10])], ForwardRecord(inputs: [t], outputs: y, saved: nil), needsGradient: [true], ExecutionContext())
        XCTAssertEqual(g[0], floats([1, 3, 2], [1, 10, 0, 0, 0, 0]))
        let kept = try makeOp("ReduceMax", inputs: 1, attributes: [attr("axes", [1]), attr("keepdims", 1)], opset: 13)
        let yk = try kept.forward([t], ExecutionContext()).outputs
        let gk = try kept.backward([floats([1, 1, 2], [1, 10])], ForwardRecord(inputs: [t], outputs: yk, saved: nil), needsGradient: [true], ExecutionContext())
        XCTAssertEqual(gk[0], floats([1, 3, 2], [0.5, 5, 0, 5, 0.5, 0]))
        let all = try makeOp("ReduceMax", inputs: 1, attributes: [attr("keepdims", 0)], opset: 13)
        let z = try all.forward([t], ExecutionContext()).outputs
        let gz = try all.backward([floats([], [1])], ForwardRecord(inputs: [t], outputs: z, saved: nil), needsGradient: [true], ExecutionContext())
        XCTAssertEqual(gz[0], floats([1, 3, 2], [0.5, 0, 0, 0, 0.5, 0]))
    }

    func testSoftmaxAxisSemanticsChangeAt13() throws {
        // x: [2, 2]: opset 11 with axis 0 normalises over all 4 values (coerced to [1, 4]);
        // opset 13 with axis 0 normalises each column.
        let v = floats([2, 2], [0, 1, 2, 3])
        let e: [Float] = [0, 1, 2, 3].map { expf($0) }
        let total = e.reduce(0, +)
        assertClose(try run1("Softmax", [v], attributes: [attr("axis", 0)], opset: 11).floats, e.map { $0 / total })
        assertClose(try run1("Softmax", [v], attributes: [attr("axis", 0)], opset: 13).floats,
                    [e[0] / (e[0] + e[2]), e[1] / (e[1] + e[3]), e[2] / (e[0] + e[2]), e[3] / (e[1] + e[3])])
        // Default axis: 1 before 13 (coerced), -1 from 13; both rows-wise for a matrix.
        let row = try run1("Softmax", [v], opset: 13).floats
        assertClose(row, [1 / (1 + expf(1)), expf(1) / (1 + expf(1)), 1 / (1 + expf(1)), expf(1) / (1 + expf(1))])
        assertClose(try run1("Softmax", [v], opset: 11).floats, row)
        // Large logits do not overflow.
        assertClose(try run1("Softmax", [floats([2], [1000, 1000])], opset: 13).floats, [0.5, 0.5])
    }

    func testLogSoftmax() throws {
        let v = floats([1, 3], [1, 2, 3])
        let lse = logf(expf(1) + expf(2) + expf(3))
        assertClose(try run1("LogSoftmax", [v], opset: 13).floats, [1 - lse, 2 - lse, 3 - lse])
        let v3 = floats([1, 2, 2], [0, 1, 2, 3])
        let lse4 = logf([0, 1, 2, 3].map { expf($0) }.reduce(0, +))
        assertClose(try run1("LogSoftmax", [v3], attributes: [attr("axis", 1)], opset: 11).floats, [0, 1, 2, 3].map { $0 - lse4 })
        XCTAssertEqual(opError("LogSoftmax", [v], attributes: [attr("axis", 2)], opset: 13), "node n (LogSoftmax): axis 2 is out of range for rank 2")
    }
}
