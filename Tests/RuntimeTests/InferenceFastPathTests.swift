// The inference fast paths of the non-convolution operators (MaxPool without argmax, collapsed
// broadcasting for Add/Mul, contiguous reductions, parallel Relu, the Add -> Relu fusion): each
// against the general path or a naive reference, bit for bit, on odd shapes and special values.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class InferenceFastPathTests: XCTestCase {
    /// Bits, so that -0 differs from +0 and NaN equals NaN (with the same payload).
    func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }


    // MARK: MaxPool

    /// The inference kernel (no argmax) against the training path (general kernel, argmax),
    /// with 1 and 2 threads, and backward through an inference forward (argmax recomputed).
    func checkMaxPool(_ shape: [Int], _ attributes: [Attribute], file: StaticString = #filePath, line: UInt = #line) throws {
        let op = try makeOp("MaxPool", inputs: 1, attributes: attributes)
        let n = shape.reduce(1, *)
        let x = Tensor(shape: shape, floats: specialValues(n, seed: UInt64(n)))
        let general = try op.forward([x], ExecutionContext(training: true, threads: 1))
        XCTAssertNotNil(general.saved, "the training path keeps its argmax", file: file, line: line)
        for threads in [1, 2] {
            let fast = try op.forward([x], ExecutionContext(threads: threads))
            XCTAssertNil(fast.saved, "the inference path takes the fast kernel", file: file, line: line)
            XCTAssertEqual(fast.outputs[0].shape, general.outputs[0].shape, file: file, line: line)
            XCTAssertEqual(bits(fast.outputs[0].floats), bits(general.outputs[0].floats), "\(shape) \(threads) threads", file: file, line: line)
        }
        // Backward after an inference forward: the same gradient as after a training forward.
        let y = general.outputs[0]
        let dy = Tensor(shape: y.shape, floats: pseudoRandom(y.count, seed: 3))
        let fast = try op.forward([x], ExecutionContext(threads: 2))
        let fromGeneral = try op.backward([dy], ForwardRecord(inputs: [x], outputs: general.outputs, saved: general.saved),
                                          needsGradient: [true], ExecutionContext(threads: 2))
        let fromFast = try op.backward([dy], ForwardRecord(inputs: [x], outputs: fast.outputs, saved: fast.saved),
                                       needsGradient: [true], ExecutionContext(threads: 2))
        XCTAssertEqual(bits(fromFast[0]!.floats), bits(fromGeneral[0]!.floats), file: file, line: line)
    }

    func testMaxPoolStemGeometry() throws {
        // MA-Net's stem pool (3x3, stride 2, pad 1) on an even and an odd plane.
        try checkMaxPool([2, 3, 28, 28], [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1])])
        try checkMaxPool([1, 2, 27, 31], [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("pads", [1, 1, 1, 1])])
    }

    func testMaxPoolStridesPadsAndCeil() throws {
        try checkMaxPool([1, 2, 9, 7], [attr("kernel_shape", [2, 2])])
        try checkMaxPool([1, 1, 10, 11], [attr("kernel_shape", [3, 2]), attr("strides", [3, 3])])
        try checkMaxPool([2, 1, 11, 13], [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("ceil_mode", 1)])
        try checkMaxPool([1, 2, 8, 9], [attr("kernel_shape", [4, 3]), attr("strides", [2, 3]), attr("pads", [2, 0, 1, 2]),
                                        attr("ceil_mode", 1)])
        try checkMaxPool([1, 1, 6, 5], [attr("kernel_shape", [2, 2]), attr("auto_pad", "SAME_UPPER")])
        try checkMaxPool([1, 1, 6, 5], [attr("kernel_shape", [3, 3]), attr("strides", [2, 2]), attr("auto_pad", "SAME_LOWER")])
    }

    func testMaxPoolWindowWiderThanThePlane() throws {
        // No interior column at all: every output is an edge column.
        try checkMaxPool([1, 2, 3, 4], [attr("kernel_shape", [5, 5]), attr("pads", [2, 2, 2, 2])])
        try checkMaxPool([1, 1, 2, 2], [attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1]), attr("strides", [1, 1])])
    }

    func testMaxPoolOneDimensional() throws {
        try checkMaxPool([2, 3, 40], [attr("kernel_shape", [3]), attr("strides", [2]), attr("pads", [1, 1])])
    }

    func testMaxPoolGeneralPathStays() throws {
        // Dilation and 3-D windows keep the general kernel; so does an Indices output.
        let dilated = try makeOp("MaxPool", inputs: 1, attributes: [attr("kernel_shape", [2, 2]), attr("dilations", [2, 2])])
        let x = Tensor(shape: [1, 1, 6, 6], floats: pseudoRandom(36, seed: 1))
        XCTAssertNotNil(try dilated.forward([x], ExecutionContext(threads: 1)).saved)
        let indices = try makeOp("MaxPool", inputs: 1, outputs: 2, attributes: [attr("kernel_shape", [2, 2])])
        XCTAssertEqual(try indices.forward([x], ExecutionContext(threads: 1)).outputs.count, 2)
    }

    // MARK: Broadcasting Add / Mul

    /// out[o] = f(a[ia], b[ib]) by index arithmetic on the full multi-index.
    func naive(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> [Float] {
        let shape = Broadcast.shape(a.shape, b.shape)!
        let rank = shape.count
        let n = shape.reduce(1, *)
        func offset(_ index: [Int], _ s: [Int]) -> Int {
            var o = 0
            for (d, size) in s.enumerated() {
                let i = size == 1 ? 0 : index[rank - s.count + d]
                o = o * size + i
            }
            return o
        }
        var out = [Float](repeating: 0, count: n)
        for flat in 0..<n {
            var index = [Int](repeating: 0, count: rank), rest = flat
            for d in stride(from: rank - 1, through: 0, by: -1) { index[d] = rest % shape[d]; rest /= shape[d] }
            out[flat] = f(a.floats[offset(index, a.shape)], b.floats[offset(index, b.shape)])
        }
        return out
    }

    func checkBinary(_ aShape: [Int], _ bShape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let a = Tensor(shape: aShape, floats: specialValues(aShape.reduce(1, *), seed: 5))
        let b = Tensor(shape: bShape, floats: pseudoRandom(bShape.reduce(1, *), seed: 6))
        for (op, f) in [("Add", { (x: Float, y: Float) in x + y }), ("Mul", { (x: Float, y: Float) in x * y })] {
            let o = try makeOp(op, inputs: 2)
            let expected = bits(naive(a, b, f))
            for threads in [1, 2] {
                let y = try o.forward([a, b], ExecutionContext(threads: threads)).outputs[0]
                XCTAssertEqual(y.shape, Broadcast.shape(aShape, bShape), file: file, line: line)
                XCTAssertEqual(bits(y.floats), expected, "\(op) \(aShape) x \(bShape), \(threads) threads", file: file, line: line)
                let swapped = try o.forward([b, a], ExecutionContext(threads: threads)).outputs[0]
                XCTAssertEqual(bits(swapped.floats), bits(naive(b, a, f)), "\(op) \(bShape) x \(aShape)", file: file, line: line)
            }
        }
    }

    func testSameShapes() throws {
        try checkBinary([2, 3, 7, 5], [2, 3, 7, 5])
        try checkBinary([3, 8, 40, 41], [3, 8, 40, 41])  // large enough to split over threads
    }

    func testCBAMBroadcasts() throws {
        try checkBinary([2, 5, 9, 7], [2, 5, 1, 1])  // channel gate
        try checkBinary([2, 5, 9, 7], [2, 1, 9, 7])  // spatial gate
        try checkBinary([4, 16, 30, 30], [4, 16, 1, 1])
        try checkBinary([4, 16, 30, 30], [4, 1, 30, 30])
        try checkBinary([2, 5, 9, 7], [5, 1, 1])  // per-channel bias, lower rank
    }

    func testOtherBroadcasts() throws {
        try checkBinary([5, 3], [1, 3])  // short rows: the odometer path
        try checkBinary([4, 1, 20], [1, 5, 1])  // both operands broadcast
        try checkBinary([3, 17, 2], [3, 1, 2])  // a strided innermost run
        try checkBinary([6, 33], [])  // a scalar
        try checkBinary([1, 1, 1], [1])
        try checkBinary([0, 4], [1, 4])  // empty
    }

    func testCollapsedDims() {
        let shape = [16, 64, 56, 56]
        let channel = Broadcast.collapsed(shape, Broadcast.strides(of: [16, 64, 1, 1], in: shape), Tensor.strides(shape))
        XCTAssertEqual(channel.shape, [1024, 3136])
        XCTAssertEqual(channel.a, [1, 0])
        XCTAssertEqual(channel.b, [3136, 1])
        let spatial = Broadcast.collapsed(shape, Broadcast.strides(of: [16, 1, 56, 56], in: shape), Tensor.strides(shape))
        XCTAssertEqual(spatial.shape, [16, 64, 3136])
        XCTAssertEqual(spatial.a, [3136, 0, 1])
        let scalar = Broadcast.collapsed([1, 1], [0, 0], [0, 0])
        XCTAssertEqual(scalar.shape, [1])
    }

    func testIntegerAddKeepsWrapping() throws {
        let a = Tensor(shape: [2, 20], ints: (0..<40).map { $0 == 3 ? Int64.max : Int64($0) })
        let b = Tensor(shape: [1, 20], ints: [Int64](repeating: 1, count: 20))
        let y = try makeOp("Add", inputs: 2).forward([a, b], ExecutionContext(threads: 2)).outputs[0]
        XCTAssertEqual(y.ints, (0..<40).map { $0 == 3 ? Int64.min : Int64($0) + 1 })
    }

    // MARK: Reductions

    /// Each output reduced in row-major order of x, the order the kernels keep.
    func naiveReduce(_ x: Tensor, axes: [Int], initial: Float, _ combine: (Float, Float) -> Float) -> [Float] {
        var kept = x.shape
        for a in axes { kept[a] = 1 }
        let strides = Broadcast.strides(of: kept, in: x.shape)
        var out = [Float](repeating: initial, count: kept.reduce(1, *))
        let rank = x.rank
        for flat in 0..<x.count {
            var rest = flat, o = 0
            for d in stride(from: rank - 1, through: 0, by: -1) { o += (rest % x.shape[d]) * strides[d]; rest /= x.shape[d] }
            out[o] = combine(out[o], x.floats[flat])
        }
        return out
    }

    func checkReductions(_ shape: [Int], axes: [Int], keepDims: Int = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = Tensor(shape: shape, floats: specialValues(shape.reduce(1, *), seed: 9).map { $0.isInfinite ? 2 : $0 })
        let attributes = [attr("axes", axes), attr("keepdims", keepDims)]
        let reduced = axes.map { shape[$0] }.reduce(1, *)
        let sums = naiveReduce(x, axes: axes, initial: 0, +)
        let mean = sums.map { $0 * (1 / Float(reduced)) }
        let max = naiveReduce(x, axes: axes, initial: -.infinity) { m, v in (v > m || v.isNaN) && !m.isNaN ? v : m }
        for threads in [1, 2] {
            let context = ExecutionContext(threads: threads)
            let m = try makeOp("ReduceMean", inputs: 1, attributes: attributes, opset: 17).forward([x], context).outputs[0]
            XCTAssertEqual(bits(m.floats), bits(mean), "ReduceMean \(shape) axes \(axes), \(threads) threads", file: file, line: line)
            let r = try makeOp("ReduceMax", inputs: 1, attributes: attributes, opset: 17).forward([x], context).outputs[0]
            XCTAssertEqual(bits(r.floats), bits(max), "ReduceMax \(shape) axes \(axes), \(threads) threads", file: file, line: line)
        }
    }

    func testCBAMReductions() throws {
        try checkReductions([2, 24, 9, 11], axes: [1])  // channel pool: kept innermost run
        try checkReductions([2, 24, 9, 11], axes: [2, 3])  // spatial pool: reduced innermost run
        try checkReductions([4, 64, 28, 28], axes: [2, 3])  // large: rows split over threads
        try checkReductions([4, 64, 28, 28], axes: [1], keepDims: 0)
        try checkReductions([3, 67, 30, 30], axes: [2, 3])  // rows in fours with a remainder per thread
        try checkReductions([3, 5, 40], axes: [2], keepDims: 0)
    }

    func testReduceMaxKeepsTheFirstZeroAndNaN() throws {
        // Rows whose maximum is a zero (+0 and -0 both present) or NaN: the first in scan order wins.
        var v = pseudoRandom(3 * 5 * 70, seed: 21).map { -abs($0) - 0.5 }
        for i in v.indices where i % 9 == 4 { v[i] = i % 2 == 0 ? 0 : -0.0 }
        for i in v.indices where i % 211 == 30 { v[i] = Float(bitPattern: 0x7fc0_0000 | UInt32(i)) }  // NaN payloads
        let x = Tensor(shape: [3, 5, 70], floats: v)
        let want = naiveReduce(x, axes: [2], initial: -.infinity) { m, v in (v > m || v.isNaN) && !m.isNaN ? v : m }
        XCTAssertTrue(want.contains { $0.isNaN } && want.contains { $0 == 0 && $0.sign == .minus } && want.contains { $0.bitPattern == 0 })
        for threads in [1, 2] {
            let y = try makeOp("ReduceMax", inputs: 1, attributes: [attr("axes", [2]), attr("keepdims", 1)])
                .forward([x], ExecutionContext(threads: threads)).outputs[0]
            XCTAssertEqual(bits(y.floats), bits(want))
        }
    }

    func testOtherReductions() throws {
        try checkReductions([3, 5, 40], axes: [0, 2])
        try checkReductions([3, 5, 40], axes: [0])
        try checkReductions([6, 50], axes: [0, 1])
        try checkReductions([2, 3, 4], axes: [1])  // short rows: the odometer path
        try checkReductions([2, 1, 30], axes: [1])  // reducing a size-1 dim
    }

    // MARK: Relu and Add -> Relu

    func testReluLargeAndSmall() throws {
        for n in [10, 70_001] {
            let x = Tensor(shape: [n], floats: specialValues(n, seed: 13))
            for threads in [1, 2] {
                let y = try makeOp("Relu", inputs: 1).forward([x], ExecutionContext(threads: threads)).outputs[0]
                XCTAssertEqual(bits(y.floats), bits(x.floats.map { max($0, 0) }))
            }
        }
    }

    /// x, b -> Add -> Relu -> y, with the Add output also read by a Mul or made a graph output
    /// when asked (then the fusion must not happen).
    func addReluModel(addOutputAlsoRead: Bool = false, addOutputIsGraphOutput: Bool = false) -> Model {
        var nodes = [
            Node(name: "add", opType: "Add", inputs: ["x", "b"], outputs: ["s"]),
            Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"]),
        ]
        var outputs = [ValueInfo.tensor("y", .float, nil)]
        if addOutputAlsoRead {
            nodes.append(Node(name: "mul", opType: "Mul", inputs: ["s", "s"], outputs: ["z"]))
            outputs.append(ValueInfo.tensor("z", .float, nil))
        }
        if addOutputIsGraphOutput { outputs.append(ValueInfo.tensor("s", .float, nil)) }
        let graph = Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, nil), ValueInfo.tensor("b", .float, nil)],
                          outputs: outputs, initializers: [])
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    func testAddReluFusion() throws {
        let x = Tensor(shape: [2, 6, 10, 9], floats: specialValues(1080, seed: 17))
        for bShape in [[2, 6, 10, 9], [2, 6, 1, 1], [1]] {
            let b = Tensor(shape: bShape, floats: pseudoRandom(bShape.reduce(1, *), seed: 19))
            let m = addReluModel()
            let plain = try Executor(model: m, context: ExecutionContext(threads: 2), options: .none)
            let fused = try Executor(model: m, context: ExecutionContext(threads: 2), options: [.fuseAddRelu])
            XCTAssertEqual(fused.inferencePlan().steps.map(\.node.opType), ["Add"])
            XCTAssertTrue(fused.inferencePlan().steps[0].op is FusedAddRelu)
            XCTAssertEqual(bits(try fused.run(inputs: ["x": x, "b": b])["y"]!.floats),
                           bits(try plain.run(inputs: ["x": x, "b": b])["y"]!.floats), "b \(bShape)")
        }
    }

    func testAddReluNotFusedWhenTheSumIsNeeded() throws {
        for model in [addReluModel(addOutputAlsoRead: true), addReluModel(addOutputIsGraphOutput: true)] {
            let fused = try Executor(model: model, context: ExecutionContext(threads: 1), options: .inference)
            XCTAssertFalse(fused.inferencePlan().steps.contains { $0.op is FusedAddRelu })
            let x = Tensor(shape: [3, 4], floats: pseudoRandom(12, seed: 1)), b = Tensor(shape: [1], floats: [0.25])
            let plain = try Executor(model: model, context: ExecutionContext(threads: 1), options: .none)
            let got = try fused.run(inputs: ["x": x, "b": b]), want = try plain.run(inputs: ["x": x, "b": b])
            XCTAssertEqual(got.keys.sorted(), want.keys.sorted())
            for (name, t) in want { XCTAssertEqual(bits(got[name]!.floats), bits(t.floats), name) }
        }
    }
}
