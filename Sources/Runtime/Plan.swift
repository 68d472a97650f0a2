// Turns an IR graph into an executable plan: value slots, operators in topological order,
// constants, liveness. Every structural error is found here, before anything runs.

import ONNXIR

/// One node, ready to run: its operator and where its inputs and outputs live.
struct PlanStep {
    let node: Node
    let op: any Operator
    /// Slot of each input; `nil` for an omitted optional input (empty name).
    let inputs: [Int?]
    /// Slot of each output; `nil` for an omitted optional output (empty name).
    let outputs: [Int?]
    /// Nodes of the graph as written that this step also computes (a folded
    /// BatchNormalization, a fused Relu), in graph order; empty for a step as written.
    var absorbed: [Node] = []
}

/// A graph input as the executor checks it at run time.
struct PlanInput {
    let name: String
    let slot: Int
    /// Declared element type and dims, when the graph declares them.
    let elementType: ElementType?
    let dims: [Dimension]?
    /// Also an initializer (old IR): the feed is optional and overrides it.
    let hasDefault: Bool
}

struct Plan {
    var slotNames: [String] = []
    var slotOf: [String: Int] = [:]
    var steps: [PlanStep] = []
    var inputs: [PlanInput] = []
    var outputs: [(name: String, slot: Int)] = []
    /// Initializer slots by name (their values live in the executor, which may replace them).
    var initializerSlots: [String: Int] = [:]
    /// Values of `Constant` nodes, computed once at load.
    var constants: [Int: Tensor] = [:]
    /// For each slot, the last step that reads it (-1: none); graph outputs are never freed.
    var lastUse: [Int] = []
    /// `stepTwins()` of `steps` when an inference plan may run them side by side
    /// (`.concurrentBranches`), else empty.
    var twins: [[Int]] = []
    /// Per step, the end of the run of mutually independent steps that starts there (0 where
    /// none of at least two steps starts), and each step's `stepSignatures()` entry, when an
    /// inference plan may run siblings side by side (`.siblingSteps`), else empty.
    var siblingRuns: [Int] = []
    var signatures: [Int] = []

    /// Label used in messages for a node: its name, or its position when it has none.
    static func describe(_ node: Node, index: Int) -> String {
        "\(node.name.isEmpty ? "#\(index)" : node.name) (\(node.opType))"
    }

    mutating func slot(_ name: String) -> Int {
        if let s = slotOf[name] { return s }
        let s = slotNames.count
        slotNames.append(name)
        slotOf[name] = s
        return s
    }

    init(model: Model, registry: OperatorRegistry) throws {
        let graph = model.graph
        // 0. Subgraphs nested beyond the limit: every later walk may recurse that deep.
        if let (node, depth) = graph.nodeNestingTooDeep() {
            throw RuntimeError.invalidGraph(Graph.nestingMessage(node: node, depth: depth))
        }
        // 1. Every node whose operator is missing, reported together.
        let unsupported = registry.unsupportedNodes(in: model)
        if !unsupported.isEmpty { throw RuntimeError.unsupportedNodes(unsupported) }

        // 2. Who defines each value: initializers, graph inputs, node outputs (exactly once).
        var definedBy: [String: String] = [:]
        for t in graph.initializers {
            guard definedBy[t.name] == nil else { throw RuntimeError.invalidGraph("initializer '\(t.name)' is defined twice") }
            definedBy[t.name] = "initializer"
            initializerSlots[t.name] = slot(t.name)
        }
        let initializerNames = Set(graph.initializers.map(\.name))
        var seenInputs = Set<String>()
        for input in graph.inputs {
            guard seenInputs.insert(input.name).inserted else {
                throw RuntimeError.invalidGraph("graph input '\(input.name)' is declared twice")
            }
            definedBy[input.name] = definedBy[input.name] ?? "graph input"
            var elementType: ElementType? = nil
            var dims: [Dimension]? = nil
            if case .tensor(let e, let s)? = input.type { elementType = e; dims = s }
            inputs.append(PlanInput(name: input.name, slot: slot(input.name), elementType: elementType,
                                    dims: dims, hasDefault: initializerNames.contains(input.name)))
        }
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let other = producer[output] {
                    throw RuntimeError.invalidGraph("value '\(output)' is produced by node \(Self.describe(graph.nodes[other], index: other)) and again by node \(Self.describe(node, index: i))")
                }
                if let kind = definedBy[output] {
                    throw RuntimeError.invalidGraph("node \(Self.describe(node, index: i)) produces '\(output)', which is already a \(kind)")
                }
                producer[output] = i
            }
        }

        // 3. Undefined inputs, then Kahn's topological order (ready nodes in graph order).
        var dependents = [[Int]](repeating: [], count: graph.nodes.count)
        var pending = [Int](repeating: 0, count: graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty {
                if let p = producer[input] {
                    dependents[p].append(i)
                    pending[i] += 1
                } else if definedBy[input] == nil {
                    throw RuntimeError.invalidGraph("node \(Self.describe(node, index: i)) reads '\(input)', which no node, graph input or initializer defines")
                }
            }
        }
        var order: [Int] = []
        order.reserveCapacity(graph.nodes.count)
        var ready = (0..<graph.nodes.count).filter { pending[$0] == 0 }
        var head = 0
        while head < ready.count {
            let i = ready[head]
            head += 1
            order.append(i)
            for d in dependents[i] {
                pending[d] -= 1
                if pending[d] == 0 { ready.append(d) }
            }
        }
        if order.count < graph.nodes.count {
            let stuck = (0..<graph.nodes.count).filter { pending[$0] > 0 }
            let names = stuck.map { Self.describe(graph.nodes[$0], index: $0) }.joined(separator: ", ")
            throw RuntimeError.invalidGraph("cycle: nodes \(names) wait on each other")
        }

        // 4. Operators (attribute errors name the node), slots.
        for i in order {
            var node = graph.nodes[i]
            // Unnamed nodes get their position as a name, so run-time errors can point at them.
            if node.name.isEmpty { node.name = "#\(i)" }
            let opset = model.opsetVersion(for: node.domain) ?? 0
            let op = try registry.makeOperator(for: node, opset: opset)
            let inputSlots = node.inputs.map { $0.isEmpty ? nil : slot($0) }
            let outputSlots = node.outputs.map { $0.isEmpty ? nil : slot($0) }
            steps.append(PlanStep(node: node, op: op, inputs: inputSlots, outputs: outputSlots))
        }
        var seenOutputs = Set<String>()
        for output in graph.outputs {
            guard seenOutputs.insert(output.name).inserted else {
                throw RuntimeError.invalidGraph("graph output '\(output.name)' is declared twice")
            }
            guard definedBy[output.name] != nil || producer[output.name] != nil else {
                throw RuntimeError.invalidGraph("graph output '\(output.name)' is not produced by any node, input or initializer")
            }
            outputs.append((output.name, slot(output.name)))
        }

        // 5. Constant nodes run once now; they are values from then on.
        var remaining: [PlanStep] = []
        for step in steps {
            let domain = OperatorRegistry.normalize(step.node.domain)
            if domain == "" && step.node.opType == "Constant" && step.inputs.allSatisfy({ $0 == nil }) {
                let result = try step.op.forward(step.inputs.map { _ in nil }, ExecutionContext(threads: 1))
                for (slot, value) in zip(step.outputs, result.outputs) {
                    if let slot { constants[slot] = value }
                }
            } else {
                remaining.append(step)
            }
        }
        steps = remaining

        // 6. Liveness: a value can be dropped after its last reader in inference mode.
        lastUse = [Int](repeating: -1, count: slotNames.count)
        for (i, step) in steps.enumerated() {
            for case let s? in step.inputs { lastUse[s] = i }
        }
        for o in outputs { lastUse[o.slot] = Int.max }
    }
}

// What the executor's loops (sequential, sibling runs, concurrent branches) do around one step's
// forward: gather its arguments, take its outputs and its state updates. One place for each.
extension Plan {
    /// A step's arguments from the values computed so far (`nil` where the node omits an input).
    func arguments(of step: PlanStep, _ values: [Tensor?]) throws -> [Tensor?] {
        var args = [Tensor?]()
        args.reserveCapacity(step.inputs.count)
        for s in step.inputs {
            guard let s else { args.append(nil); continue }
            guard let v = values[s] else { throw RuntimeError.missingValue(slotNames[s]) }
            args.append(v)
        }
        return args
    }

    /// Output `k` of a step's result (it goes to `slot`), or the error naming what the operator
    /// did not produce.
    func output(_ k: Int, slot: Int, of step: PlanStep, in result: ForwardResult) throws -> Tensor {
        guard k < result.outputs.count else {
            throw RuntimeError.invalidInput(node: step.node.name, opType: step.node.opType,
                                            reason: "output \(k) ('\(slotNames[slot])') was not produced")
        }
        return result.outputs[k]
    }

    /// A step's new values for its stateful inputs (BatchNormalization's running statistics in
    /// training) as (input slot, tensor).
    func stateUpdates(of step: PlanStep, in result: ForwardResult) -> [(Int, Tensor)] {
        result.stateUpdates.compactMap { k, t in
            guard k < step.inputs.count, let slot = step.inputs[k] else { return nil }
            return (slot, t)
        }
    }
}
