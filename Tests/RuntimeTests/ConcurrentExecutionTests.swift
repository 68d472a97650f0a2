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
            XCTAssertTrue(concurrent.inferencePlan().hasTwins)
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

    /// The four Conv -> Relu chains are twins of each other (same operator, attributes and
    /// constant shapes, independent); the fifth Conv (other attributes), the Concat and the Add
    /// have none, and a step never twins with one it depends on.
    func testTwinsAreIndependentStepsOfOneKind() throws {
        let plan = try Executor(model: model(), context: ExecutionContext(threads: 2), options: .concurrentBranches).inferencePlan()
        let index = Dictionary(uniqueKeysWithValues: plan.steps.enumerated().map { ($1.node.name, $0) })
        for b in 0..<4 {
            XCTAssertEqual(Set(plan.twins[index["conv\(b)"]!]), Set((0..<4).filter { $0 != b }.map { index["conv\($0)"]! }))
            XCTAssertEqual(Set(plan.twins[index["relu\(b)"]!]), Set((0..<4).filter { $0 != b }.map { index["relu\($0)"]! }))
        }
        for name in ["proj", "cat", "add"] { XCTAssertEqual(plan.twins[index[name]!], [], name) }

        // A chain of two identical Relus: the same kind, but the second reads the first.
        let chain = Graph(name: "chain", nodes: [Node(name: "r1", opType: "Relu", inputs: ["x"], outputs: ["a"]),
                                                 Node(name: "r2", opType: "Relu", inputs: ["a"], outputs: ["y"])],
                          inputs: [ValueInfo.tensor("x", .float, nil)], outputs: [ValueInfo.tensor("y", .float, nil)])
        let chained = try Executor(model: Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: chain),
                                   context: ExecutionContext(threads: 2), options: .concurrentBranches)
        XCTAssertEqual(chained.inferencePlan().twins, [[], []])
    }

    /// Twins run side by side on one thread each; every other step runs alone on all the
    /// threads, with nothing else running meanwhile. Probes (a test operator) record each step's
    /// threads and the steps running when it started and ended.
    func testTwinsShareTheCoresOtherStepsRunAlone() throws {
        // x -> four chains of two twin probes -> a join probe (four inputs); x -> a lone probe
        // of another kind; y = join + lone.
        var nodes: [Node] = []
        for b in 0..<4 {
            nodes.append(Node(name: "a\(b)", opType: "Probe", domain: "test.probe", inputs: ["x"], outputs: ["a\(b)"]))
            nodes.append(Node(name: "b\(b)", opType: "Probe", domain: "test.probe", inputs: ["a\(b)"], outputs: ["b\(b)"]))
        }
        nodes.append(Node(name: "join", opType: "Probe", domain: "test.probe", inputs: ["b0", "b1", "b2", "b3"], outputs: ["j"]))
        nodes.append(Node(name: "lone", opType: "Probe", domain: "test.probe", inputs: ["x"], outputs: ["l"],
                          attributes: [attr("kind", 1)]))
        nodes.append(Node(name: "sum", opType: "Add", inputs: ["j", "l"], outputs: ["y"]))
        let (m, registry) = probeModel(nodes, outputs: ["y"])
        let x = Tensor(shape: [1, 2, 3, 3], floats: pseudoRandom(18, seed: 13))
        for threads in [2, 3] {
            let executor = try Executor(model: m, registry: registry, context: ExecutionContext(threads: threads),
                                        options: .concurrentBranches)
            TwinProbeLog.shared.reset()
            let y = try executor.run(inputs: ["x": x])["y"]!
            // Each probe adds its inputs and 1: b = x + 2, join = b + b + b + b + 1, lone = x + 1.
            XCTAssertEqual(y.floats, x.floats.map { v -> Float in
                let b = v + 1 + 1
                return (((b + b) + b) + b + 1) + (v + 1)
            })
            let entries = TwinProbeLog.shared.entries
            XCTAssertEqual(entries.count, 10)
            for e in entries {
                let kind = e.name.first!
                if (kind == "a" || kind == "b") && e.threads == 1 { continue }
                // All the threads, nothing else running, and (a twin) its twins all done before.
                XCTAssertEqual(e.threads, threads, "\(e.name), \(threads) threads")
                XCTAssertEqual(e.othersRunning, 0, "\(e.name) ran beside another step")
                if kind == "a" || kind == "b" {
                    XCTAssertTrue(entries.allSatisfy { $0.name.first != kind || $0.name == e.name || $0.end < e.start },
                                  "\(e.name) ran alone while a twin was still to run")
                }
            }
            XCTAssertTrue(entries.contains { $0.threads == 1 }, "no twins side by side")
        }
    }
}

/// What each probe saw: its threads, how many other probes ran at its start or end, and its
/// start and end in one sequence of events.
final class TwinProbeLog: @unchecked Sendable {
    static let shared = TwinProbeLog()
    struct Entry { var name: String, threads: Int, othersRunning: Int, start: Int, end: Int }
    private let lock = NSLock()
    private var running = 0, events = 0
    private(set) var entries: [Entry] = []

    func reset() { lock.lock(); entries = []; running = 0; events = 0; lock.unlock() }

    func run(_ name: String, threads: Int, _ body: () -> Void) {
        lock.lock()
        let before = running, start = events
        running += 1
        events += 1
        lock.unlock()
        body()
        lock.lock()
        running -= 1
        entries.append(Entry(name: name, threads: threads, othersRunning: max(before, running), start: start, end: events))
        events += 1
        lock.unlock()
    }
}

/// A model of `nodes` (over one input "x"; opset 17 and the probes' domain "test.probe") and a
/// registry whose "Probe" is `TwinProbe`.
func probeModel(_ nodes: [Node], outputs: [String]) -> (Model, OperatorRegistry) {
    let graph = Graph(name: "probes", nodes: nodes, inputs: [ValueInfo.tensor("x", .float, nil)],
                      outputs: outputs.map { ValueInfo.tensor($0, .float, nil) })
    let m = Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17), OpsetImport(domain: "test.probe", version: 1)],
                  graph: graph)
    let registry = OperatorRegistry(OperatorRegistry.standard.registrations
                                    + [OperatorRegistration("Probe", domain: "test.probe", opsets: 1...1, TwinProbe.self)])
    return (m, registry)
}

/// y = sum of the inputs + 1, after a short sleep (so that steps overlap when they can).
struct TwinProbe: Operator {
    let name: String
    init(node: Node, opset: Int64) throws { name = node.name }
    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] { [inputs[0] ?? ValueShape(dtype: .float32, dims: nil)] }
    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        var y = inputs[0]!.floats
        TwinProbeLog.shared.run(name, threads: context.threads) {
            for t in inputs.dropFirst() { for i in y.indices { y[i] += t!.floats[i] } }
            for i in y.indices { y[i] += 1 }
            Thread.sleep(forTimeInterval: 0.002)
        }
        return ForwardResult([Tensor(shape: inputs[0]!.shape, floats: y)])
    }
}
