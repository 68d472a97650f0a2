// Backward passes that split large tensors over threads (Mul with CBAM's broadcasts, ReduceMax
// over channels, Concat, the executor's gradient sums): the same bits on 1, 2 and 3 threads, and
// the bits of a plain in-order loop written here.

@testable import Runtime
import ONNXIR
import TestSupport
import XCTest

final class ParallelBackwardTests: XCTestCase {
    /// Backward of a one-output node on each thread count; every input's gradient, as bits.
    private func gradients(_ op: any Operator, _ inputs: [Tensor], _ dy: Tensor, want: [Bool]) throws -> [[[UInt32]]] {
        try [1, 2, 3].map { threads in
            let context = ExecutionContext(training: true, threads: threads)
            let forward = try op.forward(inputs, context)
            let record = ForwardRecord(inputs: inputs, outputs: forward.outputs, saved: forward.saved, keeping: .everything)
            return try op.backward([dy], record, needsGradient: want, context).map { $0?.floats.map(\.bitPattern) ?? [] }
        }
    }

    private func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    /// CBAM's two products: x * channel scale [N, C, 1, 1] and x * spatial map [N, 1, H, W].
    func testMulBackwardWithBroadcastsSameBitsOnAnyThreadCount() throws {
        let (n, c, h, w) = (3, 200, 7, 9)  // above the size that splits over threads
        let x = Tensor(shape: [n, c, h, w], floats: pseudoRandom(n * c * h * w, seed: 21))
        let dy = Tensor(shape: [n, c, h, w], floats: pseudoRandom(n * c * h * w, seed: 22))
        let op = try makeOp("Mul", inputs: 2)
        for bShape in [[n, c, 1, 1], [n, 1, h, w], [n, c, h, w]] {
            let b = Tensor(shape: bShape, floats: pseudoRandom(bShape.reduce(1, *), seed: 23))
            // The in-order reference: every output element in row-major order.
            var da = [Float](repeating: 0, count: x.count), db = [Float](repeating: 0, count: b.count)
            for i in 0..<n { for ch in 0..<c { for p in 0..<(h * w) {
                let o = (i * c + ch) * h * w + p
                let j = bShape[1] == 1 ? i * h * w + p : bShape[2] == 1 ? i * c + ch : o
                da[o] += dy.floats[o] * b.floats[j]
                db[j] += dy.floats[o] * x.floats[o]
            } } }
            for (threads, result) in zip([1, 2, 3], try gradients(op, [x, b], dy, want: [true, true])) {
                XCTAssertEqual(result[0], bits(da), "dA, b \(bShape), \(threads) threads")
                XCTAssertEqual(result[1], bits(db), "dB, b \(bShape), \(threads) threads")
            }
            // One gradient alone, e.g. only the gate's.
            let onlyB = try gradients(op, [x, b], dy, want: [false, true])
            for result in onlyB { XCTAssertEqual(result[1], bits(db)) }
        }
    }

    /// CBAM's channel pool: the maximum over C with keepdims (ties share dy) and without (the
    /// first maximal channel takes it), with ties, NaN and a row of equal values.
    func testReduceMaxBackwardSameBitsOnAnyThreadCount() throws {
        let (n, c, hw) = (4, 200, 49)  // above the size that splits over threads
        var values = pseudoRandom(n * c * hw, seed: 31).map { ($0 * 3).rounded() }  // few values: many ties
        values[5 * hw + 3] = .nan
        for ch in 0..<c { values[(2 * c + ch) * hw + 10] = 1.5 }
        let x = Tensor(shape: [n, c, 7, 7], floats: values)
        for keep in [1, 0] {
            let op = try makeOp("ReduceMax", inputs: 1, attributes: [Attribute(name: "axes", value: .ints([1])),
                                                                      Attribute(name: "keepdims", value: .int(Int64(keep)))])
            let outShape = keep == 1 ? [n, 1, 7, 7] : [n, 7, 7]
            let dy = Tensor(shape: outShape, floats: pseudoRandom(n * hw, seed: 32))
            var y = [Float](repeating: -.infinity, count: n * hw), ties = [Float](repeating: 0, count: n * hw)
            for i in 0..<n { for ch in 0..<c { for p in 0..<hw {
                let v = values[(i * c + ch) * hw + p], o = i * hw + p
                if (v > y[o] || v != v) && y[o] == y[o] { y[o] = v }
            } } }
            var dx = [Float](repeating: 0, count: x.count)
            for i in 0..<n { for ch in 0..<c { for p in 0..<hw {
                let v = values[(i * c + ch) * hw + p], o = i * hw + p
                guard v == y[o] || (v.isNaN && y[o].isNaN) else { continue }
                if keep == 0 && ties[o] == 0 { dx[(i * c + ch) * hw + p] = dy.floats[o] }
                ties[o] += 1
            } } }
            if keep == 1 {
                for i in 0..<n { for ch in 0..<c { for p in 0..<hw {
                    let v = values[(i * c + ch) * hw + p], o = i * hw + p
                    if v == y[o] || (v.isNaN && y[o].isNaN) { dx[(i * c + ch) * hw + p] = dy.floats[o] / ties[o] }
                } } }
            }
            for (threads, result) in zip([1, 2, 3], try gradients(op, [x], dy, want: [true])) {
                XCTAssertEqual(result[0], bits(dx), "keepdims \(keep), \(threads) threads")
            }
        }
    }

    /// Concat along channels (the multi-scale block) and along W (the local patches).
    func testConcatBackwardSameBitsOnAnyThreadCount() throws {
        for axis in [1, 3] {
            let shapes = axis == 1 ? [[5, 16, 14, 14], [5, 16, 14, 14], [5, 8, 14, 14]] : [[5, 64, 7, 7], [5, 64, 7, 9]]
            let xs = shapes.enumerated().map { Tensor(shape: $1, floats: pseudoRandom($1.reduce(1, *), seed: UInt64(40 + $0))) }
            var outShape = shapes[0]
            outShape[axis] = shapes.map { $0[axis] }.reduce(0, +)
            let dy = Tensor(shape: outShape, floats: pseudoRandom(outShape.reduce(1, *), seed: 49))
            let op = try makeOp("Concat", inputs: xs.count, attributes: [Attribute(name: "axis", value: .int(Int64(axis)))])
            // Each input's part of dy, element by element.
            let outer = outShape[..<axis].reduce(1, *), inner = outShape[(axis + 1)...].reduce(1, *)
            let total: Int = outShape[axis] * inner
            var expected: [[Float]] = [], start = 0
            for s in shapes {
                let width: Int = s[axis] * inner
                var part: [Float] = []
                for o in 0..<outer { part += dy.floats[(o * total + start)..<(o * total + start + width)] }
                expected.append(part)
                start += width
            }
            for (threads, result) in zip([1, 2, 3], try gradients(op, xs, dy, want: xs.map { _ in true })) {
                for k in xs.indices { XCTAssertEqual(result[k], bits(expected[k]), "axis \(axis), input \(k), \(threads) threads") }
            }
            // Forward: each outer index's slabs side by side, on any thread count.
            var joined: [Float] = []
            for o in 0..<outer {
                for (x, s) in zip(xs, shapes) {
                    let width: Int = s[axis] * inner
                    joined += x.floats[(o * width)..<((o + 1) * width)]
                }
            }
            for threads in [1, 2, 3] {
                XCTAssertEqual(try op.forward(xs, ExecutionContext(threads: threads)).outputs[0].floats.map(\.bitPattern), bits(joined))
            }
        }
    }

    /// A value read by two nodes: its gradient is the sum of theirs, elementwise on any thread count.
    func testGradientSumsSameBitsOnAnyThreadCount() throws {
        let n = 3 * BinaryElementwise.parallelElements + 5
        let graph = Graph(name: "g", nodes: [Node(name: "a", opType: "Relu", inputs: ["x"], outputs: ["ya"]),
                                             Node(name: "b", opType: "Sigmoid", inputs: ["x"], outputs: ["yb"])],
                          inputs: [ValueInfo.tensor("x", .float, [.fixed(n)])],
                          outputs: [ValueInfo.tensor("ya", .float, nil), ValueInfo.tensor("yb", .float, nil)], initializers: [])
        let model = Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
        let x = Tensor(shape: [n], floats: pseudoRandom(n, seed: 51))
        let ga = Tensor(shape: [n], floats: pseudoRandom(n, seed: 52)), gb = Tensor(shape: [n], floats: pseudoRandom(n, seed: 53))
        var results: [[UInt32]] = []
        for threads in [1, 2, 3] {
            let executor = try Executor(model: model, context: ExecutionContext(training: true, threads: threads))
            let pass = try executor.forward(inputs: ["x": x])
            let sigmoid = pass.outputs["yb"]!.floats
            let g = try executor.backward(pass, outputGradients: ["ya": ga, "yb": gb], wrt: ["x"])["x"]!
            results.append(g.floats.map(\.bitPattern))
            // Each node's gradient, then their sum: Sigmoid's (its backward runs first), plus Relu's.
            let expected = (0..<n).map { i in gb.floats[i] * (sigmoid[i] * (1 - sigmoid[i])) + (x.floats[i] > 0 ? ga.floats[i] : 0) }
            let close = zip(g.floats, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }
            XCTAssertTrue(close, "\(threads) threads")
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }
}
