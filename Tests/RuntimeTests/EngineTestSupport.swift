// Builders for the engine tests: one-node models written in code, runs, finite differences.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

/// An attribute from a Swift value, as the tests write them inline.
func attr(_ name: String, _ v: Int) -> Attribute { Attribute(name: name, value: .int(Int64(v))) }
func attr(_ name: String, _ v: [Int]) -> Attribute { Attribute(name: name, value: .ints(v.map { Int64($0) })) }
func attr(_ name: String, _ v: Float) -> Attribute { Attribute(name: name, value: .float(v)) }
func attr(_ name: String, _ v: String) -> Attribute { Attribute(name: name, value: .string(Array(v.utf8))) }

/// A model holding one node `op` named `name`, whose inputs are graph inputs (float, with
/// the given dims; `nil` dims = undeclared shape) unless given as initializers.
func oneNodeModel(_ op: String, name: String = "node", inputs: [String], outputs: [String] = ["y"],
                  attributes: [Attribute] = [], opset: Int64 = 17, initializers: [TensorData] = [],
                  inputDims: [String: [ONNXIR.Dimension]] = [:]) -> Model {
    let initNames = Set(initializers.map(\.name))
    let graphInputs = inputs.filter { !$0.isEmpty && !initNames.contains($0) }.map {
        ValueInfo.tensor($0, .float, inputDims[$0])
    }
    let graph = Graph(name: "g", nodes: [Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)],
                      inputs: graphInputs, outputs: outputs.filter { !$0.isEmpty }.map { ValueInfo.tensor($0, .float, nil) },
                      initializers: initializers)
    return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: opset)], graph: graph)
}

/// Runs a one-node model on named float inputs and returns output `y` (or `output`).
func runNode(_ op: String, _ inputs: [(String, Tensor)], outputs: [String] = ["y"], attributes: [Attribute] = [],
             opset: Int64 = 17, context: ExecutionContext = ExecutionContext(threads: 2)) throws -> [String: Tensor] {
    let model = oneNodeModel(op, inputs: inputs.map(\.0), outputs: outputs, attributes: attributes, opset: opset)
    let executor = try Executor(model: model, context: context)
    var feeds: [String: Tensor] = [:]
    for (n, t) in inputs where !n.isEmpty { feeds[n] = t }
    return try executor.run(inputs: feeds)
}

/// The message an error prints, for exact-text failure tests.
func errorText(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "<no error>"
}

/// Checks an operator's backward against central finite differences of
/// L = sum(output_0 * R) for a fixed random R, accumulated in Float64. `inputs` are graph
/// inputs (all differentiated unless listed in `constantInputs`). Returns the largest
/// relative L2 error over the inputs.
@discardableResult
func checkGradients(_ op: String, _ inputs: [(String, Tensor)], attributes: [Attribute] = [], opset: Int64 = 17,
                    outputs: [String] = ["y"], training: Bool = false, constantInputs: Set<String> = [],
                    step: Float = 1e-2, tolerance: Double = 1e-3,
                    file: StaticString = #filePath, line: UInt = #line) throws -> Double {
    let model = oneNodeModel(op, inputs: inputs.map(\.0), outputs: outputs, attributes: attributes, opset: opset)
    let executor = try Executor(model: model, context: ExecutionContext(training: training, threads: 2))
    var feeds: [String: Tensor] = [:]
    for (n, t) in inputs where !n.isEmpty { feeds[n] = t }
    let y = try executor.forward(inputs: feeds).outputs[outputs[0]]!
    let r = pseudoRandom(y.count, seed: 99)
    func loss(_ f: [String: Tensor]) throws -> Double {
        let out = try executor.forward(inputs: f).outputs[outputs[0]]!
        var s: Double = 0
        for i in 0..<out.count { s += Double(out.floats[i]) * Double(r[i]) }
        return s
    }
    let targets = inputs.map(\.0).filter { !$0.isEmpty && !constantInputs.contains($0) && feeds[$0]!.dtype == .float32 }
    let pass = try executor.forward(inputs: feeds)
    let grads = try executor.backward(pass, outputGradients: [outputs[0]: Tensor(shape: y.shape, floats: r)], wrt: targets)
    var worst = 0.0
    for name in targets {
        let x = feeds[name]!
        var numeric = [Double](repeating: 0, count: x.count)
        for i in 0..<x.count {
            var plus = feeds, minus = feeds
            plus[name]!.floats[i] += step
            minus[name]!.floats[i] -= step
            // The perturbation actually applied (x + step rounds in float32).
            let h = Double(plus[name]!.floats[i]) - Double(minus[name]!.floats[i])
            numeric[i] = (try loss(plus) - loss(minus)) / h
        }
        let analytic = grads[name]!.floats.map(Double.init)
        var diff = 0.0, norm = 0.0
        for i in 0..<numeric.count {
            diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i])
            norm += numeric[i] * numeric[i]
        }
        let rel = norm > 0 ? (diff / norm).squareRoot() : diff.squareRoot()
        worst = max(worst, rel)
        XCTAssertLessThanOrEqual(rel, tolerance, "\(op) gradient of '\(name)': relative L2 error \(rel) (numeric norm \(norm.squareRoot()))", file: file, line: line)
    }
    GradientLog.record(op, worst)
    return worst
}

/// Largest finite-difference error seen, printed at the end of the suite for the report.
enum GradientLog {
    nonisolated(unsafe) static var worst: [String: Double] = [:]
    static func record(_ op: String, _ e: Double) {
        worst[op] = max(worst[op] ?? 0, e)
        print("gradient check \(op): relative L2 error \(e)")
    }
}
