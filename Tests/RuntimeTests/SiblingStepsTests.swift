// Runs of sibling steps over the threads inside the sequential loop: same bits as one step at a
// time, errors still surface, and only siblings share the threads.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class SiblingStepsTests: XCTestCase {
    /// x -> four Conv (different weights) -> four Relu -> Concat, plus a 1x1 Conv of x (another
    /// kind) added to it, listed level by level as MA-Net's export lists its patches. The plan
    /// puts the 1x1 Conv after the four others: the runs are the five Convs, then the four Relus.
    func model(badReshape: Bool = false) -> Model {
        var nodes: [Node] = []
        var inits: [TensorData] = []
        for b in 0..<4 {
            inits.append(TensorData(name: "w\(b)", dims: [3, 4, 3, 3], floats: pseudoRandom(108, seed: UInt64(b + 1))))
            nodes.append(Node(name: "conv\(b)", opType: "Conv", inputs: ["x", "w\(b)"], outputs: ["c\(b)"],
                              attributes: [attr("pads", [1, 1, 1, 1])]))
        }
        for b in 0..<4 { nodes.append(Node(name: "relu\(b)", opType: "Relu", inputs: ["c\(b)"], outputs: ["r\(b)"])) }
        inits.append(TensorData(name: "wp", dims: [12, 4, 1, 1], floats: pseudoRandom(48, seed: 9)))
        nodes.append(Node(name: "proj", opType: "Conv", inputs: ["x", "wp"], outputs: ["p"]))
        nodes.append(Node(name: "cat", opType: "Concat", inputs: ["r0", "r1", "r2", "r3"], outputs: ["cat"],
                          attributes: [attr("axis", 1)]))
        nodes.append(Node(name: "add", opType: "Add", inputs: ["cat", "p"], outputs: ["y"]))
        if badReshape {
            // relu2 reshapes instead (a shape that cannot hold c2): the run's third step fails.
            inits.append(TensorData(name: "shape", dims: [2], int64s: [7, 5]))
            nodes[6] = Node(name: "bad", opType: "Reshape", inputs: ["c2", "shape"], outputs: ["r2"])
        }
        let graph = Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, nil)],
                          outputs: [ValueInfo.tensor("y", .float, nil)], initializers: inits)
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    func testRunsAreConsecutiveIndependentSteps() throws {
        let plan = try Executor(model: model(), context: ExecutionContext(threads: 2), options: .siblingSteps).inferencePlan()
        XCTAssertEqual(plan.steps.map(\.node.name), ["conv0", "conv1", "conv2", "conv3", "proj", "relu0", "relu1", "relu2",
                                                     "relu3", "cat", "add"])
        XCTAssertEqual(plan.siblingRuns, [5, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0])
        XCTAssertEqual(Set(plan.signatures[0..<4]).count, 1)
        XCTAssertNotEqual(plan.signatures[4], plan.signatures[0])
        // Without the option: no runs.
        let plain = try Executor(model: model(), context: ExecutionContext(threads: 2), options: .none).inferencePlan()
        XCTAssertEqual(plain.siblingRuns, [])
    }

    func testSameBitsAsSequential() throws {
        let x = Tensor(shape: [2, 4, 20, 20], floats: pseudoRandom(3200, seed: 11))
        let expected = try Executor(model: model(), context: ExecutionContext(threads: 1), options: .none).run(inputs: ["x": x])["y"]!
        for threads in [1, 2, 3] {
            let context = ExecutionContext(threads: threads)
            for options: GraphOptimizations in [.siblingSteps, .inference] {
                let executor = try Executor(model: model(), context: context, options: options)
                let sequential = try Executor(model: model(), context: context,
                                              options: options.subtracting(.siblingSteps)).run(inputs: ["x": x])["y"]!
                for _ in 0..<3 {
                    let y = try executor.run(inputs: ["x": x])["y"]!
                    XCTAssertEqual(y.shape, [2, 12, 20, 20])
                    XCTAssertEqual(y.floats, sequential.floats, "threads \(threads), \(options)")
                    if options == .siblingSteps { XCTAssertEqual(y.floats, expected.floats, "threads \(threads)") }
                }
            }
        }
    }

    /// A failing step inside a run fails the run with the sequential loop's error.
    func testErrorInARunSurfaces() throws {
        let x = Tensor(shape: [1, 4, 6, 6], floats: pseudoRandom(144, seed: 12))
        let m = model(badReshape: true)
        let sequential = try Executor(model: m, context: ExecutionContext(threads: 2), options: .none)
        let siblings = try Executor(model: m, context: ExecutionContext(threads: 2), options: .siblingSteps)
        XCTAssertEqual(siblings.inferencePlan().siblingRuns[5], 9)
        let expected = errorText { _ = try sequential.run(inputs: ["x": x]) }
        XCTAssertTrue(expected.contains("bad"), expected)
        XCTAssertEqual(errorText { _ = try siblings.run(inputs: ["x": x]) }, expected)
    }

    /// Siblings run side by side on one thread each; a step of a run without a sibling of its
    /// kind and input shapes, the steps of a kind left over past a multiple of the threads, and
    /// every step outside runs, alone on all the threads.
    func testSiblingsShareTheThreadsOthersRunAlone() throws {
        // x -> four probes a (one kind) and a lone probe (another kind) -> four probes b on the
        // a's, one of them on a larger input (no sibling of its shapes) -> a join probe.
        var nodes: [Node] = []
        for b in 0..<4 { nodes.append(Node(name: "a\(b)", opType: "Probe", domain: "test.probe", inputs: ["x"], outputs: ["a\(b)"])) }
        nodes.append(Node(name: "lone", opType: "Probe", domain: "test.probe", inputs: ["x"], outputs: ["l"],
                          attributes: [attr("kind", 1)]))
        for b in 0..<3 { nodes.append(Node(name: "b\(b)", opType: "Probe", domain: "test.probe", inputs: ["a\(b)"], outputs: ["b\(b)"])) }
        nodes.append(Node(name: "wide", opType: "Concat", inputs: ["a3", "a3"], outputs: ["a3w"], attributes: [attr("axis", 1)]))
        nodes.append(Node(name: "b3", opType: "Probe", domain: "test.probe", inputs: ["a3w"], outputs: ["b3"]))
        nodes.append(Node(name: "join", opType: "Probe", domain: "test.probe", inputs: ["b0", "b1", "b2", "l"], outputs: ["y"]))
        let (m, registry) = probeModel(nodes, outputs: ["y", "b3"])
        let x = Tensor(shape: [1, 2, 3, 3], floats: pseudoRandom(18, seed: 13))
        for threads in [2, 3] {
            let executor = try Executor(model: m, registry: registry, context: ExecutionContext(threads: threads),
                                        options: .siblingSteps)
            XCTAssertEqual(executor.inferencePlan().steps.map(\.node.name),
                           ["a0", "a1", "a2", "a3", "lone", "b0", "b1", "b2", "wide", "join", "b3"])
            XCTAssertEqual(executor.inferencePlan().siblingRuns, [5, 0, 0, 0, 0, 9, 0, 0, 0, 11, 0])
            TwinProbeLog.shared.reset()
            let out = try executor.run(inputs: ["x": x])
            // Each probe adds its inputs and 1: a = x + 1, b = x + 2, lone = x + 1.
            XCTAssertEqual(out["y"]!.floats, x.floats.map { v -> Float in
                let b = v + 1 + 1
                return (((b + b) + b) + (v + 1)) + 1
            })
            XCTAssertEqual(out["b3"]!.shape, [1, 4, 3, 3])
            let entries = TwinProbeLog.shared.entries
            XCTAssertEqual(entries.count, 10)
            // Four a's and three b's (of equal shapes) side by side: on two threads all a's and
            // b0, b1 (b2 left over); on three a0-a2 (a3 left over) and all three b's.
            let side: Set<String> = threads == 2 ? ["a0", "a1", "a2", "a3", "b0", "b1"] : ["a0", "a1", "a2", "b0", "b1", "b2"]
            for e in entries {
                let sibling = side.contains(e.name)
                XCTAssertEqual(e.threads, sibling ? 1 : threads, "\(e.name), \(threads) threads")
                if !sibling { XCTAssertEqual(e.othersRunning, 0, "\(e.name) ran beside another step") }
            }
            XCTAssertTrue(entries.contains { $0.othersRunning > 0 }, "no siblings side by side")
        }
    }
}
