// PyTorch autograd fixtures (fixtures/opgrad/<case>/) for the convolution, normalization,
// pooling and linear-algebra operators: forward outputs and every input gradient.

import Foundation
import ONNXFormat
import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class OpGradFixtureTests: XCTestCase {
    /// The operators this file covers (the other operators' cases are checked elsewhere).
    static let operators: Set<String> = ["Conv", "BatchNormalization", "MaxPool", "AveragePool",
                                         "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul"]

    func testEveryCaseOfTheseOperators() throws {
        let root = Fixtures.path("opgrad")
        let cases = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        var checked = 0
        var worst = (error: 0.0, what: "")
        for name in cases {
            let dir = root + "/" + name
            guard let data = FileManager.default.contents(atPath: dir + "/meta.json"),
                  let meta = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let op = meta["op_type"] as? String, Self.operators.contains(op) else { continue }
            let tolerance = ((meta["tolerance"] as? [String: Any])?["grad_rel_l2"] as? Double) ?? 1e-4
            let inputs = meta["inputs"] as? [[String: Any]] ?? []
            let outputs = meta["outputs"] as? [[String: Any]] ?? []
            let model = try ONNXFile.load(path: dir + "/model.onnx")
            // training_mode=1 cases are PyTorch train-mode references: run the executor in training.
            let training = ((meta["attributes"] as? [String: Any])?["training_mode"] as? Int) == 1
            let executor = try Executor(model: model, context: ExecutionContext(training: training, threads: 2))
            func load(_ file: String) throws -> Tensor { try Tensor(ONNXFile.loadTensor(path: dir + "/" + file)) }
            var feeds: [String: Tensor] = [:]
            for i in inputs { feeds[i["name"] as! String] = try load(i["file"] as! String) }
            let pass = try executor.forward(inputs: feeds)
            var outputGrads: [String: Tensor] = [:]
            for o in outputs {
                let outName = o["name"] as! String
                let expected = try load(o["file"] as! String)
                if op == "BatchNormalization" && training && o["index"] as? Int == 2 {
                    // PyTorch's running_var uses the unbiased batch variance: our training
                    // state update (ONNX's own output uses the biased one, as onnxruntime).
                    let update = pass.stateUpdates[model.graph.nodes.first { $0.opType == op }!.inputs[4]]!
                    assertClose(update.floats, expected.floats, rtol: 1e-5, atol: 1e-6, "\(name) running_var state update")
                } else {
                    assertClose(pass.outputs[outName]!.floats, expected.floats, rtol: 1e-5, atol: 1e-5, "\(name) output \(outName)")
                }
                if let g = o["grad_output"] as? String { outputGrads[outName] = try load(g) }
            }
            let differentiated = inputs.filter { $0["grad"] is String }
            let grads = try executor.backward(pass, outputGradients: outputGrads, wrt: differentiated.map { $0["name"] as! String })
            for i in differentiated {
                let inName = i["name"] as! String
                let expected = try load(i["grad"] as! String).floats, actual = grads[inName]!.floats
                var diff = 0.0, norm = 0.0
                for k in 0..<expected.count {
                    diff += pow(Double(actual[k]) - Double(expected[k]), 2)
                    norm += Double(expected[k]) * Double(expected[k])
                }
                let rel = norm > 0 ? (diff / norm).squareRoot() : diff.squareRoot()
                XCTAssertLessThanOrEqual(rel, tolerance, "\(name): gradient of \(inName), relative L2 error \(rel)")
                if rel > worst.error { worst = (rel, "\(name) d\(inName)") }
            }
            checked += 1
        }
        print("opgrad fixtures: \(checked) cases of \(Self.operators.sorted().joined(separator: ", ")); largest gradient error \(worst.error) (\(worst.what))")
        XCTAssertGreaterThan(checked, 0, "no opgrad fixtures found under \(root)")
    }
}
