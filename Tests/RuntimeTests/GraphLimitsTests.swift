// Structural limits of the executor (duplicate graph outputs, nesting without recursion) and
// its memory: initializers held once, folded weights reusing the originals' buffers.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class GraphLimitsTests: XCTestCase {
    let x = ValueInfo.tensor("x", .float, [.symbolic("N"), .fixed(2)])

    func testDuplicateGraphOutputNameRefused() {
        let m = Model(opsetImports: [OpsetImport(domain: "", version: 17)],
                      graph: Graph(name: "g", nodes: [Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["y"])], inputs: [x],
                                   outputs: [ValueInfo.tensor("y", .float, nil), ValueInfo.tensor("y", .float, nil)]))
        XCTAssertEqual(errorText { _ = try Executor(model: m) }, "invalid graph: graph output 'y' is declared twice")
    }

    /// 10,000 nested If bodies: refused by name before any recursive walk (the operator check
    /// would otherwise recurse 10,000 deep).
    func testDeeplyNestedSubgraphsRefusedByName() {
        let m = Model(opsetImports: [OpsetImport(domain: "", version: 17)], graph: nestedIfGraph(depth: 10_000))
        XCTAssertEqual(errorText { _ = try Executor(model: m) },
                       "invalid graph: node 'if_64' (If) holds a subgraph at nesting depth 65, deeper than the limit of 64")
        // At the limit the walk goes on to the next check (If is not an interpreter operator).
        let ok = Model(opsetImports: [OpsetImport(domain: "", version: 17)], graph: nestedIfGraph(depth: 64))
        XCTAssertTrue(errorText { _ = try Executor(model: ok) }.hasPrefix("64 node(s) use operators the interpreter cannot run:\n  if_0: ai.onnx::If (opset 17)\n"))
    }

    // MARK: - Memory

    /// Conv -> BN -> Relu with an int64 initializer that stays.
    func convModel() -> Model {
        let inits = [
            TensorData(name: "w", dims: [4, 3, 3, 3], floats: pseudoRandom(108, seed: 1)),
            TensorData(name: "scale", dims: [4], floats: pseudoRandom(4, seed: 3).map { 1 + 0.3 * $0 }),
            TensorData(name: "shift", dims: [4], floats: pseudoRandom(4, seed: 4)),
            TensorData(name: "mean", dims: [4], floats: pseudoRandom(4, seed: 5).map { 0.1 * $0 }),
            TensorData(name: "var", dims: [4], floats: pseudoRandom(4, seed: 6).map { 1 + 0.5 * $0 }),
            TensorData(name: "shape", dims: [2], int64s: [0, -1]),
        ]
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [attr("pads", [1, 1, 1, 1])]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "scale", "shift", "mean", "var"], outputs: ["n"]),
            Node(name: "relu", opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "flat", opType: "Reshape", inputs: ["r", "shape"], outputs: ["y"]),
        ]
        return Model(opsetImports: [OpsetImport(domain: "", version: 17)],
                     graph: Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, nil)],
                                  outputs: [ValueInfo.tensor("y", .float, nil)], initializers: inits))
    }

    func testExecutorKeepsInitializerValuesOnlyAsTensors() throws {
        let model = convModel()
        let executor = try Executor(model: model)
        XCTAssertEqual(executor.model.graph.initializers.map(\.name), ["w", "scale", "shift", "mean", "var", "shape"])
        XCTAssertEqual(executor.model.graph.initializers.map(\.dims), model.graph.initializers.map(\.dims))
        XCTAssertTrue(executor.model.graph.initializers.allSatisfy { $0.bytes.isEmpty }, "the bytes live once, as tensors")
        XCTAssertEqual(executor.initializer("w")?.floats, model.graph.initializers[0].floats)
        XCTAssertEqual(executor.initializer("shape")?.ints, [0, -1])
        // The caller's copy is its own: untouched.
        XCTAssertEqual(model.graph.initializers[0].bytes.count, 432)
    }

    private func baseAddress(_ t: Tensor) -> UnsafeRawPointer? {
        t.floats.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }

    func testFrozenExecutorFoldsIntoTheOriginalWeightBuffer() throws {
        let x = Tensor(shape: [2, 3, 5, 5], floats: pseudoRandom(150, seed: 7))
        let reference = try Executor(model: convModel(), options: .inference).run(inputs: ["x": x])["y"]!
        let frozen = try Executor(model: convModel(), options: .inference)
        let original = baseAddress(frozen.initializer("w")!)
        frozen.freezeForInference()
        XCTAssertTrue(frozen.frozen)
        // The folded weight is the original buffer scaled in place: no second copy.
        let fused = try XCTUnwrap(frozen.fusedPlan?.steps.compactMap { $0.op as? FusedConv }.first)
        XCTAssertEqual(baseAddress(fused.weight), original)
        XCTAssertNil(frozen.initializer("w"), "the unfolded weight is gone")
        XCTAssertNotNil(frozen.initializer("shape"))
        XCTAssertEqual(try frozen.run(inputs: ["x": x])["y"]!.floats, reference.floats, "same results as folding a copy")

        let message = "invalid graph: " + Executor.frozenMessage
        XCTAssertEqual(errorText { try frozen.setInitializer("shape", Tensor(shape: [2], ints: [0, -1])) }, message)
        XCTAssertEqual(errorText { _ = try frozen.forward(inputs: ["x": x]) }, message)
        frozen.context.training = true
        XCTAssertEqual(errorText { _ = try frozen.run(inputs: ["x": x]) }, message)
    }

    func testUnfrozenFusionStillCopies() throws {
        // Without freezing, the originals stay for training and refolding.
        let executor = try Executor(model: convModel(), options: .inference)
        let original = baseAddress(executor.initializer("w")!)
        _ = try executor.run(inputs: ["x": Tensor(shape: [1, 3, 4, 4], floats: pseudoRandom(48, seed: 2))])
        let fused = try XCTUnwrap(executor.fusedPlan?.steps.compactMap { $0.op as? FusedConv }.first)
        XCTAssertNotEqual(baseAddress(fused.weight), original)
        XCTAssertEqual(baseAddress(executor.initializer("w")!), original)
    }
}
