// The block-copy paths of Concat and Slice against a naive element-by-element reference, on odd
// shapes, every axis, negative steps (which keep the general strided path) and int64 data.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class CopyFastPathTests: XCTestCase {
    /// Row-major multi-index of a flat position.
    func index(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var result = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            result[d] = rest % shape[d]
            rest /= shape[d]
        }
        return result
    }

    func flat(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
    }

    func ramp(_ shape: [Int], from start: Int = 0) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, floats: (0..<n).map { Float(start + $0) })
    }

    // MARK: Concat

    /// Each output element looked up in the input whose span along `axis` holds it.
    func naiveConcat(_ xs: [Tensor], axis: Int) -> Tensor {
        var shape = xs[0].shape
        shape[axis] = xs.map { $0.shape[axis] }.reduce(0, +)
        let n = shape.reduce(1, *)
        let values = (0..<n).map { o -> Float in
            var i = index(o, shape)
            for x in xs {
                if i[axis] < x.shape[axis] { return x.floats[flat(i, x.shape)] }
                i[axis] -= x.shape[axis]
            }
            fatalError("index past the concatenation")
        }
        return Tensor(shape: shape, floats: values)
    }

    func checkConcat(_ shapes: [[Int]], axis: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        var start = 0
        let xs = shapes.map { s -> Tensor in
            defer { start += s.reduce(1, *) }
            return ramp(s, from: start)
        }
        let op = try makeOp("Concat", inputs: xs.count, attributes: [attr("axis", axis)])
        let y = try op.forward(xs, ExecutionContext(threads: 1)).outputs[0]
        let a = axis < 0 ? axis + shapes[0].count : axis
        XCTAssertEqual(y, naiveConcat(xs, axis: a), "\(shapes) axis \(axis)", file: file, line: line)
    }

    func testConcatEveryAxis() throws {
        try checkConcat([[2, 3, 4, 5], [2, 3, 4, 5]], axis: 0)
        try checkConcat([[2, 3, 4, 5], [2, 1, 4, 5], [2, 2, 4, 5]], axis: 1)
        try checkConcat([[2, 3, 4, 5], [2, 3, 7, 5]], axis: 2)
        try checkConcat([[2, 3, 4, 5], [2, 3, 4, 1], [2, 3, 4, 3]], axis: -1)
    }

    func testConcatMANetShapes() throws {
        // CBAM's channel pool pair, the patch branches' channel concat, the width/height joins.
        try checkConcat([[3, 1, 7, 7], [3, 1, 7, 7]], axis: 1)
        try checkConcat([[2, 5, 3, 3], [2, 5, 3, 3], [2, 5, 3, 3], [2, 5, 3, 3]], axis: 1)
        try checkConcat([[2, 4, 7, 7], [2, 4, 7, 7]], axis: 3)
        try checkConcat([[2, 4, 7, 14], [2, 4, 7, 14]], axis: 2)
    }

    func testConcatEmptyInputsAndInt64() throws {
        try checkConcat([[2, 0, 3], [2, 4, 3], [2, 0, 3]], axis: 1)
        try checkConcat([[0, 3], [0, 3]], axis: 1)
        let a = Tensor(shape: [2, 2], ints: [1, 2, 3, 4]), b = Tensor(shape: [2, 1], ints: [Int64.min, Int64.max])
        let y = try makeOp("Concat", inputs: 2, attributes: [attr("axis", 1)]).forward([a, b], ExecutionContext()).outputs[0]
        XCTAssertEqual(y, Tensor(shape: [2, 3], ints: [1, 2, Int64.min, 3, 4, Int64.max]))
    }

    // MARK: Slice

    /// out[i] = x[start + i * step] per dim, with starts and steps already resolved.
    func naiveSlice(_ x: Tensor, starts: [Int], steps: [Int], shape: [Int]) -> [Float] {
        (0..<shape.reduce(1, *)).map { o in
            let i = index(o, shape)
            return x.floats[flat((0..<shape.count).map { starts[$0] + i[$0] * steps[$0] }, x.shape)]
        }
    }

    func checkSlice(_ shape: [Int], starts: [Int], ends: [Int], steps: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let x = ramp(shape)
        let axes = Array(0..<shape.count)
        let op = try makeOp("Slice", inputs: 5)
        let int64s = { (v: [Int]) in Tensor(shape: [v.count], ints: v.map { Int64($0) }) }
        let y = try op.forward([x, int64s(starts), int64s(ends), int64s(axes), int64s(steps)], ExecutionContext()).outputs[0]
        // Elements per dim: ceil(span / |step|) over the span the step walks.
        let outShape = (0..<shape.count).map { (d: Int) -> Int in
            let step: Int = steps[d], span: Int = step > 0 ? ends[d] - starts[d] : starts[d] - ends[d]
            return Swift.max(0, (span + abs(step) - 1) / abs(step))
        }
        XCTAssertEqual(y.shape, outShape, file: file, line: line)
        XCTAssertEqual(y.floats, naiveSlice(x, starts: starts, steps: steps, shape: outShape),
                       "\(shape) [\(starts), \(ends), \(steps))", file: file, line: line)
    }

    func testSliceContiguousRuns() throws {
        // MA-Net's patch split: halves of H and of W of [N, C, 28, 28].
        try checkSlice([2, 3, 28, 28], starts: [0, 0, 0, 0], ends: [2, 3, 14, 28], steps: [1, 1, 1, 1])
        try checkSlice([2, 3, 28, 28], starts: [0, 0, 14, 0], ends: [2, 3, 28, 28], steps: [1, 1, 1, 1])
        try checkSlice([2, 3, 14, 28], starts: [0, 0, 0, 14], ends: [2, 3, 14, 28], steps: [1, 1, 1, 1])
        // Odd windows on every axis, whole tensor, one element, a strided outer axis.
        try checkSlice([3, 5, 7], starts: [1, 2, 3], ends: [3, 5, 6], steps: [1, 1, 1])
        try checkSlice([3, 5, 7], starts: [0, 0, 0], ends: [3, 5, 7], steps: [1, 1, 1])
        try checkSlice([3, 5, 7], starts: [2, 4, 6], ends: [3, 5, 7], steps: [1, 1, 1])
        try checkSlice([4, 5, 7], starts: [0, 1, 2], ends: [4, 5, 7], steps: [3, 2, 1])
        try checkSlice([9], starts: [2], ends: [7], steps: [1])
    }

    func testSliceStridedInnermostKeepsGeneralPath() throws {
        try checkSlice([3, 5, 7], starts: [0, 0, 1], ends: [3, 5, 7], steps: [1, 1, 2])
        try checkSlice([3, 5, 7], starts: [2, 4, 6], ends: [0, 0, 0], steps: [-1, -2, -3])
        try checkSlice([3, 5, 7], starts: [2, 0, 0], ends: [0, 5, 7], steps: [-1, 1, 1])
    }

    func testSliceEmptyAndInt64() throws {
        try checkSlice([3, 5, 7], starts: [0, 3, 0], ends: [3, 3, 7], steps: [1, 1, 1])
        let x = Tensor(shape: [2, 4], ints: [0, 1, 2, Int64.max, 4, 5, Int64.min, 7])
        let int64s = { (v: [Int64]) in Tensor(shape: [v.count], ints: v) }
        let y = try makeOp("Slice", inputs: 4).forward([x, int64s([2]), int64s([4]), int64s([1])], ExecutionContext()).outputs[0]
        XCTAssertEqual(y, Tensor(shape: [2, 2], ints: [2, Int64.max, Int64.min, 7]))
    }

    func testContiguousRunsMergeWholeTrailingDims() throws {
        let slice = try makeOp("Slice", inputs: 5) as! Runtime.Slice
        // [2, 3, 28, 28] sliced along H: runs of 14 whole rows, walking N and C.
        let rows = try slice.window(shape: [2, 3, 28, 28], starts: [14], ends: [28], axes: [2], steps: [1])
        let runs = try XCTUnwrap(slice.contiguousRuns(rows))
        XCTAssertEqual(runs.outer, [2, 3])
        XCTAssertEqual(runs.run, 14 * 28)
        // Sliced along W: runs of 14, walking N, C and H.
        let columns = try slice.window(shape: [2, 3, 28, 28], starts: [0], ends: [14], axes: [3], steps: [1])
        XCTAssertEqual(try XCTUnwrap(slice.contiguousRuns(columns)).run, 14)
        XCTAssertNil(slice.contiguousRuns(try slice.window(shape: [4, 6], starts: [0], ends: [6], axes: [1], steps: [2])))
    }
}
