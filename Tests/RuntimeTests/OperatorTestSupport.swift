// Direct operator calls for the elementwise/shape/reduction tests: build one node, run it
// through the registry, check its shape inference against what forward produced, and check
// its backward against central finite differences (Float64 accumulation).

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

/// A float tensor, shape first (short for inline expectations).
func floats(_ shape: [Int], _ values: [Float]) -> Tensor { Tensor(shape: shape, floats: values) }
/// An int64 tensor.
func ints(_ shape: [Int], _ values: [Int64]) -> Tensor { Tensor(shape: shape, ints: values) }
/// A 1-D int64 tensor (axes, pads, shapes).
func ints(_ values: [Int64]) -> Tensor { Tensor(shape: [values.count], ints: values) }

/// The operator the registry makes for a node `op` named "n" at `opset`.
func makeOp(_ op: String, inputs: Int, outputs: Int = 1, attributes: [Attribute] = [], opset: Int64 = 17) throws -> any Operator {
    let node = Node(name: "n", opType: op, inputs: (0..<inputs).map { "x\($0)" },
                    outputs: (0..<outputs).map { "y\($0)" }, attributes: attributes)
    return try OperatorRegistry.standard.makeOperator(for: node, opset: opset)
}

/// Runs one node on `inputs` (`nil` = omitted optional input) and returns its outputs.
/// Also checks shape inference twice: with every input constant (folding must reproduce the
/// outputs exactly when it folds) and with only types and dims known (dims it claims to know
/// must be the real ones).
func runOp(_ op: String, _ inputs: [Tensor?], outputs: Int = 1, attributes: [Attribute] = [], opset: Int64 = 17,
           file: StaticString = #filePath, line: UInt = #line) throws -> [Tensor] {
    let o = try makeOp(op, inputs: inputs.count, outputs: outputs, attributes: attributes, opset: opset)
    let result = try o.forward(inputs, ExecutionContext(threads: 1)).outputs
    XCTAssertEqual(result.count, outputs, "\(op): output count", file: file, line: line)
    let constant = try o.inferShapes(inputs.map { $0.map { ValueShape($0) } })
    let symbolic = try o.inferShapes(inputs.map { $0.map { ValueShape(dtype: $0.dtype, dims: $0.shape.map { $0 }) } })
    for (k, y) in result.enumerated() {
        for (what, inferred) in [("constant", constant), ("dims-only", symbolic)] {
            guard k < inferred.count else { XCTFail("\(op): \(what) inference gave \(inferred.count) outputs", file: file, line: line); continue }
            XCTAssertEqual(inferred[k].dtype, y.dtype, "\(op): \(what) inferred type of output \(k)", file: file, line: line)
            if let dims = inferred[k].dims {
                XCTAssertEqual(dims.count, y.rank, "\(op): \(what) inferred rank of output \(k)", file: file, line: line)
                for (d, n) in zip(dims, y.shape) where d != nil {
                    XCTAssertEqual(d, n, "\(op): \(what) inferred dims \(dims) vs actual \(y.shape)", file: file, line: line)
                }
            }
            if let c = inferred[k].constant {
                // NaN != NaN, so compare shapes and then values with NaN matching NaN.
                let same = c.shape == y.shape && c.dtype == y.dtype && c.ints == y.ints
                    && c.floats.elementsEqual(y.floats) { $0 == $1 || ($0.isNaN && $1.isNaN) }
                XCTAssertTrue(same, "\(op): \(what) folded constant \(c) differs from forward's \(y)", file: file, line: line)
            }
        }
    }
    return result
}

/// Runs one node and returns output 0.
func run1(_ op: String, _ inputs: [Tensor?], attributes: [Attribute] = [], opset: Int64 = 17,
          file: StaticString = #filePath, line: UInt = #line) throws -> Tensor {
    try runOp(op, inputs, attributes: attributes, opset: opset, file: file, line: line)[0]
}

/// The error text of making and running one node.
func opError(_ op: String, _ inputs: [Tensor?], outputs: Int = 1, attributes: [Attribute] = [], opset: Int64 = 17) -> String {
    errorText {
        let o = try makeOp(op, inputs: inputs.count, outputs: outputs, attributes: attributes, opset: opset)
        _ = try o.forward(inputs, ExecutionContext(threads: 1))
    }
}

/// Central finite differences of L = sum_k sum(output_k * R_k) (fixed pseudo-random R_k,
/// Float64 sums) against the operator's backward, for the float inputs listed in `wrt`
/// (default: every float input). Asserts the relative L2 error <= `tolerance` and logs it.
@discardableResult
func checkOpGradients(_ op: String, _ inputs: [Tensor?], outputs: Int = 1, attributes: [Attribute] = [],
                      opset: Int64 = 17, wrt: [Int]? = nil, step: Float = 1e-2, tolerance: Double = 1e-3,
                      file: StaticString = #filePath, line: UInt = #line) throws -> Double {
    let o = try makeOp(op, inputs: inputs.count, outputs: outputs, attributes: attributes, opset: opset)
    let context = ExecutionContext(training: true, threads: 1)
    let first = try o.forward(inputs, context)
    let weights = first.outputs.enumerated().map { k, y in
        y.dtype == .float32 ? pseudoRandom(y.count, seed: 7 + UInt64(k)) : []
    }
    func loss(_ xs: [Tensor?]) throws -> Double {
        let out = try o.forward(xs, context).outputs
        var s = 0.0
        for (k, y) in out.enumerated() where y.dtype == .float32 {
            for i in 0..<y.count { s += Double(y.floats[i]) * Double(weights[k][i]) }
        }
        return s
    }
    let targets = wrt ?? inputs.indices.filter { inputs[$0]?.dtype == .float32 }
    let needs = inputs.indices.map { targets.contains($0) }
    // The record the executor keeps: only what the forward said its backward reads.
    let record = ForwardRecord(inputs: inputs, outputs: first.outputs, saved: first.saved, keeping: first.backwardReads)
    let gradOutputs: [Tensor?] = first.outputs.enumerated().map { k, y in
        y.dtype == .float32 ? Tensor(shape: y.shape, floats: weights[k]) : nil
    }
    let grads = try o.backward(gradOutputs, record, needsGradient: needs, context)
    XCTAssertEqual(grads.count, inputs.count, "\(op): one gradient per input", file: file, line: line)
    var worst = 0.0
    for i in targets {
        guard let x = inputs[i], let g = grads[i] else { XCTFail("\(op): no gradient for input \(i)", file: file, line: line); continue }
        XCTAssertEqual(g.shape, x.shape, "\(op): gradient shape of input \(i)", file: file, line: line)
        var numeric = [Double](repeating: 0, count: x.count)
        for j in 0..<x.count {
            var plus = inputs, minus = inputs
            plus[i]!.floats[j] += step
            minus[i]!.floats[j] -= step
            let h = Double(plus[i]!.floats[j]) - Double(minus[i]!.floats[j])
            numeric[j] = (try loss(plus) - loss(minus)) / h
        }
        var diff = 0.0, norm = 0.0
        for j in 0..<x.count {
            let d = Double(g.floats[j]) - numeric[j]
            diff += d * d
            norm += numeric[j] * numeric[j]
        }
        let rel = norm > 0 ? (diff / norm).squareRoot() : diff.squareRoot()
        worst = max(worst, rel)
        XCTAssertLessThanOrEqual(rel, tolerance, "\(op) gradient of input \(i): relative L2 error \(rel)", file: file, line: line)
    }
    GradientLog.record(op, worst)
    return worst
}

/// Values in [-1, 1) kept at least `margin` away from every point in `kinks`, so that finite
/// differences never straddle a point where the operator is not differentiable.
func awayFrom(_ kinks: [Float], _ count: Int, seed: UInt64, scale: Float = 1, margin: Float = 0.05) -> [Float] {
    pseudoRandom(count, seed: seed).map { v in
        var x = v * scale
        for k in kinks where abs(x - k) < margin { x = k + (x >= k ? margin : -margin) * 2 }
        return x
    }
}
