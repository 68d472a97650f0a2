// Independent branches run concurrently at inference: same bits as the sequential loop, errors still surface.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class ConcurrentExecutionTests: XCTestCase {
    /// x -> four Conv -> Relu branches (different weights and sizes) -> Concat -> Add with x's
    /// fifth branch, a 1x1 Conv: a fork of five independent chains like MA-Net's patches.
    func model(reshapeTo: [Int64]? = nil) -> Model {
        var nodes: [Node] = []
        var inits: [TensorData] = []
        for b in 0..<4 {
            inits.append(TensorData(name: "w\(b)", dims: [3, 4, 3, 3], floats: pseudoRandom(108, seed: UInt64(b + 1))))
            nodes.append(Node(name: "conv\(b)", opType: "Conv", inputs: ["x", "w\(b)"], outputs: ["c\(b)"],
                              attributes: [attr("pads", [1, 1, 1, 1])]))
            nodes.append(Node(name: "relu\(b)", opType: "Relu", inputs: ["c\(b)"], outputs: ["r\(b)"]))
        }
        nodes.append(Node(name: "cat", opType: "Concat", inputs: ["r0", "r1", "r2", "r3"], outputs: ["cat"],
                          attributes: [attr("axis", 1)]))
        inits.append(TensorData(name: "wp", dims: [12, 4, 1, 1], floats: pseudoRandom(48, seed: 9)))
        nodes.append(Node(name: "proj", opType: "Conv", inputs: ["x", "wp"], outputs: ["p"]))
        nodes.append(Node(name: "add", opType: "Add", inputs: ["cat", "p"], outputs: ["y"]))
        if let reshapeTo {
            inits.append(TensorData(name: "shape", dims: [reshapeTo.count], int64s: reshapeTo))
            nodes.insert(Node(name: "bad", opType: "Reshape", inputs: ["c2", "shape"], outputs: ["c2r"]), at: 5)
            nodes[6] = Node(name: "relu2", opType: "Relu", inputs: ["c2r"], outputs: ["r2"])
        }
        let graph = Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, nil)],
                          outputs: [ValueInfo.tensor("y", .float, nil)], initializers: inits)
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    func testSameBitsAsSequential() throws {
        let x = Tensor(shape: [2, 4, 20, 20], floats: pseudoRandom(3200, seed: 11))
        for threads in [1, 2, 3] {
            let context = ExecutionContext(threads: threads)
            let sequential = try Executor(model: model(), context: context, options: .none)
            let concurrent = try Executor(model: model(), context: context, options: .concurrentBranches)
            XCTAssertTrue(concurrent.inferencePlan().hasIndependentSteps)
            let expected = try sequential.run(inputs: ["x": x])["y"]!
            for _ in 0..<3 {
                let y = try concurrent.run(inputs: ["x": x])["y"]!
                XCTAssertEqual(y.shape, [2, 12, 20, 20])
                XCTAssertEqual(y.floats, expected.floats, "threads \(threads)")
            }
        }
    }

    /// A failing step inside one branch fails the run with the sequential loop's error.
    func testErrorInABranchSurfaces() throws {
        let x = Tensor(shape: [1, 4, 6, 6], floats: pseudoRandom(144, seed: 12))
        let m = model(reshapeTo: [7, 5])
        let sequential = try Executor(model: m, context: ExecutionContext(threads: 2), options: .none)
        let concurrent = try Executor(model: m, context: ExecutionContext(threads: 2), options: .concurrentBranches)
        let expected = errorText { _ = try sequential.run(inputs: ["x": x]) }
        XCTAssertTrue(expected.contains("bad"), expected)
        XCTAssertEqual(errorText { _ = try concurrent.run(inputs: ["x": x]) }, expected)
    }
}
