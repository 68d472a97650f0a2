// What a training pass holds on to: records keep only what each backward reads, intermediate
// values are dropped after their last reader, and backward releases each record once used.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

/// An identity operator (domain "test") whose forward saves a fresh `Sentinel`; its backward
/// notes which sentinels are still alive, so a test sees when the executor released records.
struct Probe: Operator {
    /// An object whose lifetime is that of the record that saved it.
    final class Sentinel {
        let name: String
        init(_ name: String) { self.name = name }
    }

    /// Weak references to every sentinel made, and per backward call the sentinels alive then.
    final class Log: @unchecked Sendable {
        struct Weak { weak var sentinel: Sentinel? }
        var made: [String: Weak] = [:]
        var aliveAtBackward: [String: Set<String>] = [:]
        var alive: Set<String> { Set(made.filter { $0.value.sentinel != nil }.keys) }
    }
    nonisolated(unsafe) static var log = Log()

    let name: String

    init(node: Node, opset: Int64) throws { name = node.name }

    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] { [inputs[0]!] }

    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        let sentinel = Sentinel(name)
        Self.log.made[name] = Log.Weak(sentinel: sentinel)
        return ForwardResult([inputs[0]!], saved: sentinel, backwardReads: .shapes)
    }

    func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                  _ context: ExecutionContext) throws -> [Tensor?] {
        Self.log.aliveAtBackward[name] = Self.log.alive
        return [gradOutputs[0]]
    }
}

final class TrainingMemoryTests: XCTestCase {
    let registry = OperatorRegistry(OperatorRegistry.standard.registrations
        + [OperatorRegistration("Probe", domain: "test", opsets: 1...1, Probe.self)])

    /// x -> a -> b -> c -> y, all probes.
    func probeChain() throws -> Executor {
        let nodes = ["a", "b", "c"].enumerated().map { i, name in
            Node(name: name, opType: "Probe", domain: "test", inputs: [i == 0 ? "x" : "v\(i - 1)"], outputs: [i == 2 ? "y" : "v\(i)"])
        }
        let graph = Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, [.fixed(2)])],
                          outputs: [ValueInfo.tensor("y", .float, [.fixed(2)])])
        let model = Model(opsetImports: [OpsetImport(domain: "", version: 17), OpsetImport(domain: "test", version: 1)], graph: graph)
        return try Executor(model: model, registry: registry, context: ExecutionContext(training: true, threads: 1))
    }

    func testBackwardReleasesEachRecordOnceUsed() throws {
        Probe.log = Probe.Log()
        let executor = try probeChain()
        let pass = try executor.forward(inputs: ["x": Tensor(shape: [2], floats: [1, 2])])
        XCTAssertEqual(Probe.log.alive, ["a", "b", "c"], "the records hold every probe's saved state")
        let g = try executor.backward(consume pass, outputGradients: ["y": Tensor(shape: [2], floats: [3, 4])], wrt: ["x"])
        XCTAssertEqual(g["x"]!.floats, [3, 4])
        // Backward runs c, b, a: each sees only its own record and those of the nodes before it.
        XCTAssertEqual(Probe.log.aliveAtBackward["c"], ["a", "b", "c"])
        XCTAssertEqual(Probe.log.aliveAtBackward["b"], ["a", "b"])
        XCTAssertEqual(Probe.log.aliveAtBackward["a"], ["a"])
        XCTAssertEqual(Probe.log.alive, [], "nothing of the pass outlives backward")
    }

    /// A caller that keeps its pass keeps every record (and may run backward on it again).
    func testAKeptPassKeepsItsRecords() throws {
        Probe.log = Probe.Log()
        let executor = try probeChain()
        let pass = try executor.forward(inputs: ["x": Tensor(shape: [2], floats: [1, 2])])
        let first = try executor.backward(pass, outputGradients: ["y": Tensor(shape: [2], floats: [3, 4])], wrt: ["x"])
        XCTAssertEqual(Probe.log.aliveAtBackward["a"], ["a", "b", "c"])
        let second = try executor.backward(pass, outputGradients: ["y": Tensor(shape: [2], floats: [3, 4])], wrt: ["x"])
        XCTAssertEqual(first, second)
        withExtendedLifetime(pass) { XCTAssertEqual(Probe.log.alive, ["a", "b", "c"]) }
    }

    /// Conv -> BN -> Relu -> Conv -> Add(residual) -> Relu -> MaxPool -> GlobalAveragePool:
    /// what each record keeps, and that the pass's value table holds no activation.
    func testRecordsKeepOnlyWhatBackwardReads() throws {
        func weight(_ name: String, _ dims: [Int], seed: UInt64) -> TensorData {
            TensorData(name: name, dims: dims, floats: pseudoRandom(dims.reduce(1, *), seed: seed))
        }
        let inits = [weight("w1", [2, 2, 3, 3], seed: 1), weight("w2", [2, 2, 3, 3], seed: 2),
                     TensorData(name: "s", dims: [2], floats: [1, 2]), TensorData(name: "b", dims: [2], floats: [0, 1]),
                     TensorData(name: "m", dims: [2], floats: [0, 0]), TensorData(name: "v", dims: [2], floats: [1, 1])]
        let pads = attr("pads", [1, 1, 1, 1])
        let nodes = [Node(name: "conv1", opType: "Conv", inputs: ["x", "w1"], outputs: ["c1"], attributes: [pads]),
                     Node(name: "bn", opType: "BatchNormalization", inputs: ["c1", "s", "b", "m", "v"], outputs: ["n1"]),
                     Node(name: "relu1", opType: "Relu", inputs: ["n1"], outputs: ["r1"]),
                     Node(name: "conv2", opType: "Conv", inputs: ["r1", "w2"], outputs: ["c2"], attributes: [pads]),
                     Node(name: "add", opType: "Add", inputs: ["c2", "x"], outputs: ["sum"]),
                     Node(name: "relu2", opType: "Relu", inputs: ["sum"], outputs: ["r2"]),
                     Node(name: "pool", opType: "MaxPool", inputs: ["r2"], outputs: ["p"],
                          attributes: [attr("kernel_shape", [2, 2])]),
                     Node(name: "gap", opType: "GlobalAveragePool", inputs: ["p"], outputs: ["y"])]
        let graph = Graph(name: "g", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, [.fixed(2), .fixed(2), .fixed(4), .fixed(4)])],
                          outputs: [ValueInfo.tensor("y", .float, nil)], initializers: inits)
        let executor = try Executor(model: Model(opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph),
                                    context: ExecutionContext(training: true, threads: 2))
        let x = Tensor(shape: [2, 2, 4, 4], floats: pseudoRandom(64, seed: 3))
        let pass = try executor.forward(inputs: ["x": x])
        func record(_ node: String) -> ForwardRecord { pass.records[executor.plan.steps.firstIndex { $0.node.name == node }!]! }
        func kept(_ node: String) -> (inputs: [Bool], outputs: Int) {
            let r = record(node)
            return (r.inputs.map { $0 != nil }, r.outputs.count)
        }
        XCTAssertEqual(kept("conv1").inputs, [true, true]); XCTAssertEqual(kept("conv1").outputs, 0)
        XCTAssertEqual(kept("bn").inputs, [true, true, true, true, true]); XCTAssertEqual(kept("bn").outputs, 0)
        XCTAssertEqual(kept("relu1").inputs, [false]); XCTAssertEqual(kept("relu1").outputs, 1)
        XCTAssertEqual(kept("add").inputs, [false, false]); XCTAssertEqual(kept("add").outputs, 0)
        XCTAssertEqual(kept("pool").inputs, [false]); XCTAssertEqual(kept("pool").outputs, 0)
        XCTAssertEqual(kept("gap").inputs, [false]); XCTAssertEqual(kept("gap").outputs, 0)
        XCTAssertEqual(record("relu1").inputShapes, [[2, 2, 4, 4]])
        XCTAssertEqual(record("add").inputTypes, [.float32, .float32])
        for name in ["c1", "n1", "r1", "c2", "sum", "r2", "p"] {
            XCTAssertNil(pass.values[executor.plan.slotOf[name]!], "\(name) lives only in the records that read it")
        }
        XCTAssertNotNil(pass.values[executor.plan.slotOf["y"]!])
        XCTAssertNotNil(pass.values[executor.plan.slotOf["w1"]!])

        // The pruned records give the same bits as records of everything.
        let r = Tensor(shape: [2, 2, 1, 1], floats: pseudoRandom(4, seed: 4))
        let targets = ["x", "w1", "w2", "s", "b"]
        let grads = try executor.backward(consume pass, outputGradients: ["y": r], wrt: targets)
        let whole = try Executor(model: Model(opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph),
                                 context: ExecutionContext(training: true, threads: 2))
        whole.recordsEverything = true
        let wholePass = try whole.forward(inputs: ["x": x])
        XCTAssertEqual(wholePass.records.compactMap { $0 }.map(\.outputs.count), [1, 1, 1, 1, 1, 1, 1, 1])
        let reference = try whole.backward(wholePass, outputGradients: ["y": r], wrt: targets)
        for name in targets {
            XCTAssertTrue(grads[name]!.floats.elementsEqual(reference[name]!.floats) { $0.bitPattern == $1.bitPattern }, name)
        }
        XCTAssertTrue(grads["w1"]!.floats.contains { $0 != 0 })
    }

    /// An optimizer's update changes an initializer in place: no copy when nothing else holds it.
    func testUpdateInitializerInPlace() throws {
        let w = TensorData(name: "w", dims: [2, 2], floats: [1, 2, 3, 4])
        let graph = Graph(name: "g", nodes: [Node(name: "m", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
                          inputs: [ValueInfo.tensor("x", .float, [.fixed(1), .fixed(2)])],
                          outputs: [ValueInfo.tensor("y", .float, nil)], initializers: [w])
        let executor = try Executor(model: Model(opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph),
                                    context: ExecutionContext(training: true, threads: 1))
        func address() -> UnsafePointer<Float>? { executor.initializer("w")!.floats.withUnsafeBufferPointer { $0.baseAddress } }
        let before = address()
        try executor.updateInitializer("w") { values in
            for i in values.indices { values[i] *= 2 }
        }
        XCTAssertEqual(executor.initializer("w")!.floats, [2, 4, 6, 8])
        XCTAssertEqual(executor.initializer("w")!.shape, [2, 2])
        XCTAssertEqual(address(), before, "updated where it was")
        let held = executor.initializer("w")!  // someone else holds it now: the update copies
        try executor.updateInitializer("w") { $0[0] = -1 }
        XCTAssertEqual(held.floats, [2, 4, 6, 8])
        XCTAssertEqual(executor.initializer("w")!.floats, [-1, 4, 6, 8])
        XCTAssertEqual(errorText { try executor.updateInitializer("nothing") { _ in } }, "missing value 'nothing'")
    }

    /// Add without broadcasting hands dC on unchanged; with broadcasting it still sums.
    func testAddGradientWithoutBroadcastingIsTheOutputGradient() throws {
        let g = Tensor(shape: [2, 3], floats: [1, -2, 3, -0.5, 0, 7])
        let same = try makeOp("Add", inputs: 2)
        let a = Tensor(shape: [2, 3], floats: pseudoRandom(6, seed: 5)), b = Tensor(shape: [2, 3], floats: pseudoRandom(6, seed: 6))
        let fwd = try same.forward([a, b], ExecutionContext(training: true))
        XCTAssertEqual(fwd.backwardReads, .shapes)
        let record = ForwardRecord(inputs: [a, b], outputs: fwd.outputs, saved: nil, keeping: fwd.backwardReads)
        let grads = try same.backward([g], record, needsGradient: [true, true], ExecutionContext())
        XCTAssertEqual(grads[0], g)
        XCTAssertEqual(grads[1], g)
        let row = Tensor(shape: [3], floats: [1, 2, 3])
        let broadcast = try same.forward([a, row], ExecutionContext(training: true))
        XCTAssertEqual(broadcast.backwardReads, .everything)
        let summed = try same.backward([g], ForwardRecord(inputs: [a, row], outputs: broadcast.outputs, saved: nil, keeping: broadcast.backwardReads),
                                       needsGradient: [true, true], ExecutionContext())
        XCTAssertEqual(summed[1]!.floats, [0.5, -2, 10])
    }

    /// Relu's backward splits large tensors over threads: the same bits as one thread.
    func testReluBackwardSameBitsOnAnyThreadCount() throws {
        let n = 3 * BinaryElementwise.parallelElements + 7
        let x = Tensor(shape: [n], floats: pseudoRandom(n, seed: 8).enumerated().map { $0.offset % 5 == 0 ? 0 : $0.element - 0.5 })
        let g = Tensor(shape: [n], floats: pseudoRandom(n, seed: 9))
        let op = try makeOp("Relu", inputs: 1)
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            let context = ExecutionContext(training: true, threads: threads)
            let fwd = try op.forward([x], context)
            let record = ForwardRecord(inputs: [x], outputs: fwd.outputs, saved: nil, keeping: fwd.backwardReads)
            results.append(try op.backward([g], record, needsGradient: [true], context)[0]!.floats)
        }
        let expected = zip(x.floats, g.floats).map { $0 > 0 ? $1 : 0 }
        for r in results { XCTAssertTrue(r.elementsEqual(expected) { $0.bitPattern == $1.bitPattern }) }
    }
}
