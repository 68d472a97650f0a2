// PyTorch autograd fixtures (fixtures/opgrad/<case>/) for the elementwise, shape and reduction
// operators: forward outputs and every input gradient, including ReduceMax's tie rules.

import Foundation
import ONNXFormat
import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ElementwiseFixtureTests: XCTestCase {
    /// Cases whose nodes use only operators outside the convolution/normalization/pooling/
    /// linear-algebra set (those are checked by OpGradFixtureTests).
    static let others: Set<String> = ["Conv", "BatchNormalization", "MaxPool", "AveragePool",
                                      "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul"]

    func testEveryElementwiseShapeReductionCase() throws {
        let root = Fixtures.path("opgrad")
        var checked: [String] = []
        var worst = (error: 0.0, what: "")
        for name in try FileManager.default.contentsOfDirectory(atPath: root).sorted() {
            let dir = root + "/" + name
            guard let data = FileManager.default.contents(atPath: dir + "/meta.json"),
                  let meta = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            let model = try ONNXFile.load(path: dir + "/model.onnx")
            guard !model.graph.nodes.contains(where: { Self.others.contains($0.opType) }) else { continue }
            let tolerance = ((meta["tolerance"] as? [String: Any])?["grad_rel_l2"] as? Double) ?? 1e-4
            let inputs = meta["inputs"] as? [[String: Any]] ?? []
            let outputs = meta["outputs"] as? [[String: Any]] ?? []
            let executor = try Executor(model: model, context: ExecutionContext(threads: 1))
            func load(_ file: String) throws -> Tensor { try Tensor(ONNXFile.loadTensor(path: dir + "/" + file)) }
            var feeds: [String: Tensor] = [:]
            let graphInputs = Set(model.graph.inputs.map(\.name))
            for i in inputs where graphInputs.contains(i["name"] as! String) { feeds[i["name"] as! String] = try load(i["file"] as! String) }
            let pass = try executor.forward(inputs: feeds)
            var outputGrads: [String: Tensor] = [:]
            for o in outputs {
                let outName = o["name"] as! String
                let expected = try load(o["file"] as! String)
                XCTAssertEqual(pass.outputs[outName]?.shape, expected.shape, "\(name) output \(outName) shape")
                assertClose(pass.outputs[outName]!.floats, expected.floats, rtol: 1e-5, atol: 1e-6, "\(name) output \(outName)")
                if let g = o["grad_output"] as? String { outputGrads[outName] = try load(g) }
            }
            let differentiated = inputs.filter { $0["grad"] is String }
            let grads = try executor.backward(pass, outputGradients: outputGrads, wrt: differentiated.map { $0["name"] as! String })
            for i in differentiated {
                let inName = i["name"] as! String
                let expected = try load(i["grad"] as! String).floats, actual = grads[inName]!.floats
                var diff = 0.0, norm = 0.0
                for k in 0..<expected.count {
                    diff += (Double(actual[k]) - Double(expected[k])) * (Double(actual[k]) - Double(expected[k]))
                    norm += Double(expected[k]) * Double(expected[k])
                }
                let rel = norm > 0 ? (diff / norm).squareRoot() : diff.squareRoot()
                XCTAssertLessThanOrEqual(rel, tolerance, "\(name): gradient of \(inName), relative L2 error \(rel)")
                if rel > worst.error { worst = (rel, "\(name) d\(inName)") }
            }
            checked.append(name)
        }
        print("opgrad fixtures (elementwise/shape/reduction): \(checked.count) cases (\(checked.joined(separator: ", "))); largest gradient error \(worst.error) \(worst.what)")
        XCTAssertTrue(checked.contains("reducemax_ties_torch_max_dim") && checked.contains("reducemax_ties_torch_amax"),
                      "the ReduceMax tie fixtures must be among the checked cases")
    }
}
