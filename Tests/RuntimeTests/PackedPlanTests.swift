// The inference plan's packed filters (`FusedConv` over `ConvolutionPlan`): which convolutions
// hold them, that they replace the weights, and results against the graph as written.

import Foundation
import Kernels
import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class PackedPlanTests: XCTestCase {
    /// In a frozen inference plan, convolutions with >= 16 filters of >= 256 weights hold packed
    /// filters (no original left in the executor's initializers), others keep theirs; results
    /// match the graph as written.
    func testFrozenPlanPacksFiltersOnce() throws {
        func conv(_ name: String, _ input: String, _ w: String, pads: Int) -> Node {
            Node(name: name, opType: "Conv", inputs: [input, w], outputs: [name], attributes: [attr("pads", [pads, pads, pads, pads])])
        }
        // Scaled by 1 / sqrt(fan-in) so that activations stay O(1) through the three layers.
        func weights(_ count: Int, fanIn: Int, seed: UInt64) -> [Float] {
            pseudoRandom(count, seed: seed).map { $0 / Float(fanIn).squareRoot() }
        }
        let w1 = weights(32 * 32 * 9, fanIn: 288, seed: 41)
        let inits = [
            TensorData(name: "w1", dims: [32, 32, 3, 3], floats: w1),
            TensorData(name: "w2", dims: [20, 32, 3, 3], floats: weights(20 * 32 * 9, fanIn: 288, seed: 42)),
            TensorData(name: "w3", dims: [16, 20, 1, 1], floats: weights(16 * 20, fanIn: 20, seed: 43)),
            TensorData(name: "w4", dims: [4, 16, 3, 3], floats: weights(4 * 16 * 9, fanIn: 144, seed: 45)),
        ]
        let graph = Graph(name: "g", nodes: [conv("a", "x", "w1", pads: 1), conv("b", "a", "w2", pads: 1), conv("c", "b", "w3", pads: 0), conv("y", "c", "w4", pads: 1)],
                          inputs: [ValueInfo.tensor("x", .float, nil)], outputs: [ValueInfo.tensor("y", .float, nil)],
                          initializers: inits)
        let model = Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
        let x = Tensor(shape: [2, 32, 9, 9], floats: pseudoRandom(2 * 32 * 81, seed: 44))
        let plain = try Executor(model: model, context: ExecutionContext(threads: 2), options: .none)
        let fused = try Executor(model: model, context: ExecutionContext(threads: 2), options: .inference)
        fused.freezeForInference()
        let convs = fused.inferencePlan().steps.compactMap { $0.op as? FusedConv }
        XCTAssertEqual(convs.map { if case .packed = $0.filters { true } else { false } }, [true, true, false],
                       "w4 has 4 filters")
        XCTAssertEqual(fused.inferencePlan().steps.filter { $0.op is Conv }.map(\.node.name), ["c"],
                       "w3 (20 weights per filter) is left to the plain Conv")
        XCTAssertNotNil(fused.initializer("w3"))
        XCTAssertNil(fused.initializer("w1"), "packed filters replace w1")
        XCTAssertNil(fused.initializer("w2"))
        XCTAssertEqual(convs[0].weight.floats, w1, "unpacking gives the weights back")
        assertClose(try fused.run(inputs: ["x": x])["y"]!.floats, try plain.run(inputs: ["x": x])["y"]!.floats,
                    rtol: 1e-5, atol: 1e-5)
    }
}
