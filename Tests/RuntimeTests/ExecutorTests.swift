// The executor: structural errors with exact texts, unsupported nodes in one error, symbolic
// batch, fed initializers, training gradients through several nodes, BN state, determinism.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ExecutorTests: XCTestCase {
    func model(_ nodes: [Node], inputs: [ValueInfo], outputs: [String], initializers: [TensorData] = [],
               opsets: [OpsetImport] = [OpsetImport(domain: "", version: 17)]) -> Model {
        Model(opsetImports: opsets, graph: Graph(name: "g", nodes: nodes, inputs: inputs,
                                                 outputs: outputs.map { ValueInfo.tensor($0, .float, nil) }, initializers: initializers))
    }

    let x = ValueInfo.tensor("x", .float, [.symbolic("N"), .fixed(2)])

    func testCycleIsNamed() {
        let m = model([Node(name: "a", opType: "Relu", inputs: ["b"], outputs: ["a_out"]),
                       Node(name: "b", opType: "Relu", inputs: ["a_out"], outputs: ["b"]),
                       Node(name: "c", opType: "Relu", inputs: ["x"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertEqual(errorText { _ = try Executor(model: m) }, "invalid graph: cycle: nodes a (Relu), b (Relu) wait on each other")
    }

    func testUndefinedInputIsNamed() {
        let m = model([Node(name: "r", opType: "Relu", inputs: ["nope"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertEqual(errorText { _ = try Executor(model: m) },
                       "invalid graph: node r (Relu) reads 'nope', which no node, graph input or initializer defines")
    }

    func testDuplicateOutputRefused() {
        let m = model([Node(name: "a", opType: "Relu", inputs: ["x"], outputs: ["y"]),
                       Node(name: "b", opType: "Relu", inputs: ["x"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertEqual(errorText { _ = try Executor(model: m) },
                       "invalid graph: value 'y' is produced by node a (Relu) and again by node b (Relu)")
        let shadow = model([Node(name: "a", opType: "Relu", inputs: ["x"], outputs: ["x"])], inputs: [x], outputs: ["x"])
        XCTAssertEqual(errorText { _ = try Executor(model: shadow) },
                       "invalid graph: node a (Relu) produces 'x', which is already a graph input")
    }

    func testAllUnsupportedNodesInOneError() {
        let m = model([Node(name: "f", opType: "Foo", inputs: ["x"], outputs: ["f"]),
                       Node(name: "r", opType: "Relu", inputs: ["f"], outputs: ["r"]),
                       Node(name: "b", opType: "Bar", domain: "com.example", inputs: ["r"], outputs: ["y"]),
                       Node(name: "c", opType: "Conv", inputs: ["y", "y"], outputs: ["z"])],
                      inputs: [x], outputs: ["z"], opsets: [OpsetImport(domain: "", version: 17)])
        XCTAssertEqual(errorText { _ = try Executor(model: m) },
                       "2 node(s) use operators the interpreter cannot run:\n  f: ai.onnx::Foo (opset 17)\n  b: com.example::Bar (opset 0)")
        let future = model([Node(name: "c", opType: "Conv", inputs: ["x", "x"], outputs: ["y"])], inputs: [x], outputs: ["y"],
                           opsets: [OpsetImport(domain: "", version: 99)])
        XCTAssertEqual(errorText { _ = try Executor(model: future) },
                       "1 node(s) use operators the interpreter cannot run:\n  c: ai.onnx::Conv (opset 99)")
    }

    func testSymbolicBatchAndDeclaredDims() throws {
        let w = TensorData(name: "w", dims: [2, 3], floats: [1, 0, 1, 0, 1, 1])
        let m = model([Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])], inputs: [x], outputs: ["y"], initializers: [w])
        let executor = try Executor(model: m)
        for batch in [1, 3, 5] {
            let y = try executor.run(inputs: ["x": Tensor(shape: [batch, 2], floats: (0..<(2 * batch)).map(Float.init))])["y"]!
            XCTAssertEqual(y.shape, [batch, 3])
        }
        XCTAssertEqual(errorText { _ = try executor.run(inputs: ["x": Tensor(shape: [2, 3], floats: [Float](repeating: 0, count: 6))]) },
                       "tensor 'x': fed shape [2, 3]: dim 1 is 3, the graph declares 2")
        XCTAssertEqual(errorText { _ = try executor.run(inputs: ["x": Tensor(shape: [2], floats: [0, 0])]) },
                       "tensor 'x': fed shape [2] has rank 1, the graph declares 2 dims [N, 2]")
        XCTAssertEqual(errorText { _ = try executor.run(inputs: [:]) }, "missing value 'x'")
        XCTAssertEqual(errorText { _ = try executor.run(inputs: ["x": Tensor(shape: [1, 2], floats: [0, 0]), "z": Tensor(scalar: 1)]) },
                       "tensor 'z': is not an input of the graph")
        XCTAssertEqual(errorText { _ = try executor.run(inputs: ["x": Tensor(shape: [1, 2], ints: [0, 0])]) },
                       "tensor 'x': fed int64, the graph declares float")
    }

    func testSymbolSharedAcrossInputsMustAgree() throws {
        let a = ValueInfo.tensor("a", .float, [.symbolic("N"), .fixed(2)]), b = ValueInfo.tensor("b", .float, [.symbolic("N"), .fixed(2)])
        let m = model([Node(name: "add", opType: "Add", inputs: ["a", "b"], outputs: ["y"])], inputs: [a, b], outputs: ["y"])
        let executor = try Executor(model: m)
        XCTAssertEqual(errorText { _ = try executor.run(inputs: ["a": Tensor(zeros: [2, 2]), "b": Tensor(zeros: [3, 2])]) },
                       "tensor 'b': fed shape [3, 2]: dim 0 ('N') is 3, but 'a' gave 'N' = 2")
    }

    func testFedInitializerOverridesAndSetInitializer() throws {
        // Old-IR style: w is both a graph input and an initializer.
        let w = TensorData(name: "w", dims: [2, 1], floats: [1, 1])
        let m = model([Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
                      inputs: [x, ValueInfo.tensor("w", .float, [.fixed(2), .fixed(1)])], outputs: ["y"], initializers: [w])
        let executor = try Executor(model: m)
        let input = Tensor(shape: [1, 2], floats: [3, 4])
        XCTAssertEqual(try executor.run(inputs: ["x": input])["y"]!.floats, [7])
        XCTAssertEqual(try executor.run(inputs: ["x": input, "w": Tensor(shape: [2, 1], floats: [2, 0])])["y"]!.floats, [6])
        try executor.setInitializer("w", Tensor(shape: [2, 1], floats: [0, 1]))
        XCTAssertEqual(try executor.run(inputs: ["x": input])["y"]!.floats, [4])
        XCTAssertEqual(errorText { try executor.setInitializer("w", Tensor(shape: [1, 2], floats: [0, 1])) },
                       "tensor 'w': replacement float [1, 2] differs from float [2, 1]")
    }

    func testConstantNodesAndOmittedOptionalInputs() throws {
        let value = Attribute(name: "value", value: .tensor(TensorData(dims: [2, 2], floats: [1, 2, 3, 4])))
        let m = model([Node(name: "k", opType: "Constant", inputs: [], outputs: ["b"], attributes: [value]),
                       // Gemm with C omitted by an empty name.
                       Node(name: "g", opType: "Gemm", inputs: ["x", "b", ""], outputs: ["y"])],
                      inputs: [x], outputs: ["y"])
        let executor = try Executor(model: m)
        XCTAssertEqual(try executor.run(inputs: ["x": Tensor(shape: [1, 2], floats: [1, 1])])["y"]!.floats, [4, 6])
    }

    /// y = MatMul(x, w1) + MatMul(x, w2): x feeds two nodes, so its gradient is a sum.
    func testGradientsAccumulateOverFanOut() throws {
        let w1 = TensorData(name: "w1", dims: [2, 2], floats: [1, 2, 3, 4]), w2 = TensorData(name: "w2", dims: [2, 2], floats: [0, 1, -1, 0])
        let m = model([Node(name: "m1", opType: "MatMul", inputs: ["x", "w1"], outputs: ["p"]),
                       Node(name: "m2", opType: "MatMul", inputs: ["x", "w2"], outputs: ["q"]),
                       Node(name: "add", opType: "Add", inputs: ["p", "q"], outputs: ["y"])],
                      inputs: [x], outputs: ["y"], initializers: [w1, w2])
        let executor = try Executor(model: m)
        let pass = try executor.forward(inputs: ["x": Tensor(shape: [1, 2], floats: [5, 7])])
        let g = try executor.backward(pass, outputGradients: ["y": Tensor(shape: [1, 2], floats: [1, 10])], wrt: ["x", "w1", "w2"])
        // dx = dy (w1 + w2)^T with w1 + w2 = [[1, 3], [2, 4]]: [1 + 30, 2 + 40]; dw = x^T dy.
        XCTAssertEqual(g["x"]!.floats, [31, 42])
        XCTAssertEqual(g["w1"]!.floats, [5, 50, 7, 70])
        XCTAssertEqual(g["w2"]!.floats, [5, 50, 7, 70])
        XCTAssertEqual(errorText { _ = try executor.backward(pass, outputGradients: ["p": Tensor(zeros: [1, 2])], wrt: ["w1"]) },
                       "tensor 'p': has a gradient but is not a graph output")
        XCTAssertEqual(errorText { _ = try executor.backward(pass, outputGradients: [:], wrt: ["nothing"]) }, "missing value 'nothing'")
    }

    /// Conv -> BN -> Sigmoid -> GlobalAveragePool -> Gemm in training mode: BN state moves,
    /// the weight gradients match finite differences, and two runs give the same bits.
    /// (Sigmoid, not ReLU: a finite-difference step must not cross a kink.)
    func trainingModel() -> Model {
        let conv = TensorData(name: "conv.weight", dims: [4, 2, 3, 3], floats: pseudoRandom(72, seed: 41))
        let bnW = TensorData(name: "bn.weight", dims: [4], floats: [1, 0.5, 2, 1.5]), bnB = TensorData(name: "bn.bias", dims: [4], floats: [0, 0.1, -0.1, 0.2])
        let rm = TensorData(name: "bn.running_mean", dims: [4], floats: [0, 0, 0, 0]), rv = TensorData(name: "bn.running_var", dims: [4], floats: [1, 1, 1, 1])
        let fc = TensorData(name: "fc.weight", dims: [3, 4], floats: pseudoRandom(12, seed: 42)), fb = TensorData(name: "fc.bias", dims: [3], floats: [0.1, 0, -0.1])
        return model([Node(name: "conv", opType: "Conv", inputs: ["x", "conv.weight"], outputs: ["c"], attributes: [attr("pads", [1, 1, 1, 1])]),
                      Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], outputs: ["b"],
                           attributes: [attr("momentum", Float(0.9))]),
                      Node(name: "gate", opType: "Sigmoid", inputs: ["b"], outputs: ["r"]),
                      Node(name: "pool", opType: "GlobalAveragePool", inputs: ["r"], outputs: ["p"]),
                      Node(name: "flat", opType: "Flatten", inputs: ["p"], outputs: ["f"]),
                      Node(name: "fc", opType: "Gemm", inputs: ["f", "fc.weight", "fc.bias"], outputs: ["logits"], attributes: [attr("transB", 1)])],
                     inputs: [ValueInfo.tensor("x", .float, [.symbolic("batch"), .fixed(2), .fixed(5), .fixed(5)])], outputs: ["logits"],
                     initializers: [conv, bnW, bnB, rm, rv, fc, fb])
    }

    func testTrainingGradientsAndBatchNormState() throws {
        let executor = try Executor(model: trainingModel(), context: ExecutionContext(training: true, threads: 2))
        let input = Tensor(shape: [3, 2, 5, 5], floats: pseudoRandom(150, seed: 43))
        let dLogits = Tensor(shape: [3, 3], floats: pseudoRandom(9, seed: 44))
        let params = ["conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias"]
        let pass = try executor.forward(inputs: ["x": input])
        XCTAssertNotEqual(executor.initializer("bn.running_mean")!.floats, [0, 0, 0, 0], "training forward moves the running mean")
        XCTAssertTrue(executor.initializer("bn.running_var")!.floats.allSatisfy { $0 != 1 })
        let grads = try executor.backward(pass, outputGradients: ["logits": dLogits], wrt: params)
        func loss() throws -> Double {
            let out = try executor.forward(inputs: ["x": input]).outputs["logits"]!
            return zip(out.floats, dLogits.floats).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        var worst = 0.0
        for name in params {
            let value = executor.initializer(name)!
            var numeric = [Double](repeating: 0, count: value.count)
            for i in 0..<value.count {
                var plus = value, minus = value
                plus.floats[i] += 1e-2; minus.floats[i] -= 1e-2
                try executor.setInitializer(name, plus); let lp = try loss()
                try executor.setInitializer(name, minus); let lm = try loss()
                numeric[i] = (lp - lm) / (Double(plus.floats[i]) - Double(minus.floats[i]))
            }
            try executor.setInitializer(name, value)
            let analytic = grads[name]!.floats
            var diff = 0.0, norm = 0.0
            for i in 0..<numeric.count { diff += pow(Double(analytic[i]) - numeric[i], 2); norm += numeric[i] * numeric[i] }
            let rel = (diff / max(norm, 1e-30)).squareRoot()
            worst = max(worst, rel)
            XCTAssertLessThanOrEqual(rel, 1e-3, "\(name): relative L2 error \(rel)")
        }
        GradientLog.record("executor Conv-BN-Sigmoid-GAP-Gemm", worst)
    }

    func testDeterministicModeGivesIdenticalBits() throws {
        func once() throws -> ([Float], [String: [Float]], [Float]) {
            let executor = try Executor(model: trainingModel(), context: ExecutionContext(training: true, threads: 2, deterministic: true))
            let pass = try executor.forward(inputs: ["x": Tensor(shape: [4, 2, 5, 5], floats: pseudoRandom(200, seed: 45))])
            let g = try executor.backward(pass, outputGradients: ["logits": Tensor(shape: [4, 3], floats: pseudoRandom(12, seed: 46))],
                                          wrt: ["conv.weight", "bn.weight", "fc.weight"])
            return (pass.outputs["logits"]!.floats, g.mapValues(\.floats), executor.initializer("bn.running_var")!.floats)
        }
        let first = try once()
        for _ in 0..<3 {
            let again = try once()
            XCTAssertEqual(first.0.map(\.bitPattern), again.0.map(\.bitPattern))
            for (k, v) in first.1 { XCTAssertEqual(v.map(\.bitPattern), again.1[k]!.map(\.bitPattern), k) }
            XCTAssertEqual(first.2.map(\.bitPattern), again.2.map(\.bitPattern))
        }
    }
}
