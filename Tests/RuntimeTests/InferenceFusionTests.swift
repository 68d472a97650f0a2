// Inference fusion (Conv + BN + Relu) and the conv schedules: same results as the graph as written.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class InferenceFusionTests: XCTestCase {
    /// x -> Conv(3x3, pad 1, bias) -> BatchNormalization -> Relu -> y, with an extra Add reading
    /// the Relu output so that the graph continues after the fused step.
    func model(channels: Int, filters: Int) -> Model {
        let c = channels, m = filters
        let inits = [
            TensorData(name: "w", dims: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 1)),
            TensorData(name: "b", dims: [m], floats: pseudoRandom(m, seed: 2)),
            TensorData(name: "scale", dims: [m], floats: pseudoRandom(m, seed: 3).map { 1 + 0.3 * $0 }),
            TensorData(name: "shift", dims: [m], floats: pseudoRandom(m, seed: 4)),
            TensorData(name: "mean", dims: [m], floats: pseudoRandom(m, seed: 5).map { 0.1 * $0 }),
            TensorData(name: "var", dims: [m], floats: pseudoRandom(m, seed: 6).map { 1 + 0.5 * $0 }),
        ]
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: [attr("pads", [1, 1, 1, 1])]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "scale", "shift", "mean", "var"], outputs: ["n"]),
            Node(name: "relu", opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "add", opType: "Add", inputs: ["r", "r"], outputs: ["y"]),
        ]
        let graph = Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, nil)],
                          outputs: [ValueInfo.tensor("y", .float, nil)], initializers: inits)
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    func check(batch: Int, channels: Int, filters: Int, side: Int, threads: Int) throws {
        let m = model(channels: channels, filters: filters)
        let x = Tensor(shape: [batch, channels, side, side], floats: pseudoRandom(batch * channels * side * side, seed: 7))
        let context = ExecutionContext(threads: threads)
        let plain = try Executor(model: m, context: context, options: .none)
        let fused = try Executor(model: m, context: context, options: .inference)
        let expected = try plain.run(inputs: ["x": x])["y"]!.floats
        XCTAssertEqual(fused.inferencePlan().steps.map(\.node.opType), ["Conv", "Add"], "Conv, BN and Relu fuse into one step")
        assertClose(try fused.run(inputs: ["x": x])["y"]!.floats, expected, rtol: 1e-5, atol: 1e-5)
        // A new weight must be folded again, not served from the cached fused plan.
        let w2 = Tensor(shape: [filters, channels, 3, 3], floats: pseudoRandom(filters * channels * 9, seed: 8))
        try plain.setInitializer("w", w2)
        try fused.setInitializer("w", w2)
        assertClose(try fused.run(inputs: ["x": x])["y"]!.floats, try plain.run(inputs: ["x": x])["y"]!.floats,
                    rtol: 1e-5, atol: 1e-5)
    }

    /// 6x6 planes take the shared-GEMM schedule; 40x40 (1600 positions) the per-image ones.
    func testNarrowPlanes() throws { try check(batch: 3, channels: 4, filters: 5, side: 6, threads: 2) }
    func testWidePlanesImagesOverThreads() throws { try check(batch: 3, channels: 3, filters: 4, side: 40, threads: 2) }
    func testWidePlanesOneImage() throws { try check(batch: 1, channels: 3, filters: 4, side: 40, threads: 2) }
    func testOneThread() throws { try check(batch: 2, channels: 3, filters: 4, side: 40, threads: 1) }

    /// Training never runs the fused plan: BatchNormalization needs its batch statistics.
    func testTrainingRunsTheGraphAsWritten() throws {
        let m = model(channels: 2, filters: 3)
        let x = Tensor(shape: [2, 2, 5, 5], floats: pseudoRandom(100, seed: 9))
        let plain = try Executor(model: m, context: ExecutionContext(training: true, threads: 2), options: .none)
        let fused = try Executor(model: m, context: ExecutionContext(training: true, threads: 2), options: .inference)
        XCTAssertEqual(try fused.forward(inputs: ["x": x]).outputs["y"]!.floats,
                       try plain.forward(inputs: ["x": x]).outputs["y"]!.floats)
    }
}
