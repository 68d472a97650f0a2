// PyTorch exports (both exporters) of the torchvision classifier families run in the interpreter
// and give PyTorch's outputs within 1e-5 x max(1, max|ref|) (fixtures/torchvision, see MANIFEST).

import XCTest
import Foundation
import ONNXIR
import ONNXFormat
import Runtime
import TestSupport

final class RealModelTests: XCTestCase {
    /// Every fixture folder holding `test_data_set_0`, with its model: `NAME.onnx` beside the
    /// folder (TorchScript exports) or `NAME/model.onnx` inside it (dynamo exports).
    private func cases() throws -> [(name: String, model: String, data: String)] {
        let root = Fixtures.root.appendingPathComponent("torchvision").path
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        return names.compactMap { name in
            let data = "\(root)/\(name)/test_data_set_0"
            guard FileManager.default.fileExists(atPath: data) else { return nil }
            let inside = "\(root)/\(name)/model.onnx"
            let model = FileManager.default.fileExists(atPath: inside) ? inside : "\(root)/\(name).onnx"
            return (name, model, data)
        }
    }

    func testTorchvisionClassifiersMatchPyTorch() throws {
        let all = try cases()
        // Six families, two exporters each.
        XCTAssertEqual(all.count, 12, "expected 12 torchvision fixtures, found \(all.map(\.name))")
        for c in all {
            let model = try ONNXFile.load(path: c.model)
            let executor = try Executor(model: model)
            let initializers = Set(model.graph.initializers.map(\.name))
            let feeds = model.graph.inputs.filter { !initializers.contains($0.name) }
            var inputs: [String: Tensor] = [:]
            for (k, info) in feeds.enumerated() {
                inputs[info.name] = try Tensor(ONNXFile.loadTensor(path: "\(c.data)/input_\(k).pb"))
            }
            let outputs = try executor.run(inputs: inputs)
            for (k, info) in model.graph.outputs.enumerated() {
                let reference = try Tensor(ONNXFile.loadTensor(path: "\(c.data)/output_\(k).pb"))
                let ours = try XCTUnwrap(outputs[info.name], "\(c.name): no output \(info.name)")
                XCTAssertEqual(ours.shape, reference.shape, "\(c.name) \(info.name)")
                let scale = max(1, reference.floats.map { abs($0) }.max() ?? 0)
                let diff = zip(ours.floats, reference.floats).map { abs($0 - $1) }.max() ?? .infinity
                print("real model \(c.name) \(info.name): max|diff| \(diff), tolerance \(1e-5 * scale)")
                XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "\(c.name) \(info.name)")
                // Same top-1 per row for the [N, classes] logits.
                let classes = reference.shape.last ?? 1
                for row in 0..<(reference.count / classes) {
                    let r = Array(reference.floats[row * classes..<(row + 1) * classes])
                    let o = Array(ours.floats[row * classes..<(row + 1) * classes])
                    XCTAssertEqual(o.indices.max { o[$0] < o[$1] }, r.indices.max { r[$0] < r[$1] },
                                   "\(c.name) row \(row) top-1")
                }
            }
        }
    }
}
