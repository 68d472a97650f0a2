// The graph executor: runs a planned model for inference, or forward + backward for training.

import Kernels
import ONNXIR
import Foundation

/// Runs an ONNX model (`ONNXIR.Model`) with the registered operators.
///
/// ```swift
/// let executor = try Executor(model: model)                  // plans, converts initializers once
/// let out = try executor.run(inputs: ["input": image])       // inference: [output name: tensor]
///
/// executor.context.training = true                           // BN batch stats, running-stat updates
/// let pass = try executor.forward(inputs: ["input": batch])  // keeps what backward needs
/// let grads = try executor.backward(pass, outputGradients: ["logits": dLoss],
///                                   wrt: ["conv1.weight", "fc.bias"])
/// try executor.setInitializer("conv1.weight", updated)       // e.g. after an SGD step
/// ```
///
/// Loading fails with one `RuntimeError.unsupportedNodes` listing every node whose
/// (domain, op, opset) is not registered; structural errors (cycles, undefined inputs,
/// duplicate outputs) and attribute errors name the node. A symbolic (or unknown) input dim,
/// such as the batch, takes whatever size is fed, the same across inputs that share a symbol;
/// fixed dims must match. Not thread-safe: one run at a time per executor.
public final class Executor {
    /// The model as given, except that initializers keep only their name, type and dims: their
    /// values live once, as runtime tensors (`initializer(_:)`).
    public let model: Model
    /// Threads, training mode and determinism for the next runs.
    public var context: ExecutionContext
    let plan: Plan
    /// Current initializer values by slot (replaced by `setInitializer` and BN running stats).
    var initializerValues: [Int: Tensor] = [:] {
        didSet { fusedPlan = nil }
    }
    /// `plan` rewritten by `optimizations` for inference runs, made on first use from the
    /// current initializers and dropped whenever one of them changes.
    var fusedPlan: Plan?

    /// Inference-time rewrites (see `GraphOptimizations`); training runs never use them.
    public let optimizations: GraphOptimizations
    /// When set, every run adds each step's wall time to it, and every backward each step's
    /// backward time (`manet bench --profile`, with or without `--train`).
    public var profile: ExecutionProfile?

    /// The options the inference plan is made with (`RuntimeOptions.optimizations`, the
    /// convolution algorithm and the Winograd budget): the context's when the executor was made.
    let planOptions: RuntimeOptions

    /// Takes the model over: when the caller hands it on (a temporary, or `consume model`), each
    /// initializer's bytes are freed as soon as it is converted, so the weights are never held
    /// twice. A caller that keeps its own copy keeps its own bytes. `options` holds every
    /// choice of the runs (threads, determinism, inference rewrites, algorithms, kernels).
    public init(model: consuming Model, registry: OperatorRegistry = .standard, options: RuntimeOptions,
                training: Bool = false) throws {
        self.context = ExecutionContext(training: training, options: options)
        self.optimizations = options.optimizations
        self.planOptions = options
        plan = try Plan(model: copy model, registry: registry)
        var initializers = model.graph.initializers
        model.graph.initializers = []
        for i in initializers.indices {
            let data = initializers[i]
            initializers[i].bytes = []
            initializers[i].strings = []
            initializerValues[plan.initializerSlots[data.name]!] = try Self.tensor(data)
        }
        model.graph.initializers = initializers
        self.model = model
    }

    /// The same with the run state as a context and the inference rewrites apart (they replace
    /// `context.options.optimizations`).
    public convenience init(model: consuming Model, registry: OperatorRegistry = .standard,
                            context: ExecutionContext = ExecutionContext(), options: GraphOptimizations = .none) throws {
        var runtime = context.options
        runtime.optimizations = options
        try self.init(model: consume model, registry: registry, options: runtime, training: context.training)
    }

    /// `Tensor(data)`, with float32 elements decoded straight into the tensor's storage: one
    /// allocation per tensor instead of two, which lowers the peak while loading.
    static func tensor(_ data: TensorData) throws -> Tensor {
        guard data.elementType == .float, let n = data.elementCount, data.bytes.count == n * 4 else { return try Tensor(data) }
        let floats = [Float](unsafeUninitializedCapacity: n) { buffer, count in
            data.bytes.withUnsafeBytes { raw in
                for i in 0..<n {
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            }
            count = n
        }
        return Tensor(shape: data.dims, floats: floats)
    }

    /// Inference only from now on: makes the optimised plan at once and lets it own the folded
    /// weights, dropping the originals nothing else reads, so the weights are held once. After
    /// this, training, runs of the graph as written and `setInitializer` are refused.
    public func freezeForInference() {
        guard !frozen else { return }
        var values = initializerValues
        initializerValues = [:]  // `values` is now the only owner, so folding can reuse buffers
        let fused = optimizations.isEmpty ? plan : plan.fusedForInference(values: &values, options: planOptions, releasingOriginals: true)
        initializerValues = values
        fusedPlan = fused
        frozen = true
    }

    /// Training records keep every input and output, not only what backward reads (tests
    /// compare the two).
    var recordsEverything = false

    /// Set by `freezeForInference`.
    public private(set) var frozen = false

    static let frozenMessage = "this executor was frozen for inference (its folded weights replaced the originals); make a new one to train, run the graph as written or change initializers"


    // MARK: - Initializers

    /// Initializer names in model order.
    public var initializerNames: [String] { model.graph.initializers.map(\.name) }

    /// The current value of initializer `name`.
    public func initializer(_ name: String) -> Tensor? {
        plan.initializerSlots[name].flatMap { initializerValues[$0] }
    }

    /// Replaces initializer `name`; the new value must have the same shape and type.
    public func setInitializer(_ name: String, _ value: Tensor) throws {
        if frozen { throw RuntimeError.invalidGraph(Self.frozenMessage) }
        guard let slot = plan.initializerSlots[name], let old = initializerValues[slot] else {
            throw RuntimeError.missingValue(name)
        }
        guard old.shape == value.shape, old.dtype == value.dtype else {
            throw RuntimeError.invalidTensor(name: name, reason: "replacement \(value.dtype) \(value.shape) differs from \(old.dtype) \(old.shape)")
        }
        initializerValues[slot] = value
    }

    /// Changes the float values of initializer `name` in place (no copy when nothing else
    /// holds them, e.g. after a backward that consumed its pass): an optimizer's update.
    /// `update` must keep the element count (a programmer error otherwise).
    public func updateInitializer(_ name: String, _ update: (inout [Float]) -> Void) throws {
        if frozen { throw RuntimeError.invalidGraph(Self.frozenMessage) }
        guard let slot = plan.initializerSlots[name], var value = initializerValues[slot] else {
            throw RuntimeError.missingValue(name)
        }
        guard value.dtype == .float32 else {
            throw RuntimeError.invalidTensor(name: name, reason: "is \(value.dtype), not float")
        }
        initializerValues[slot] = nil
        var floats = value.floats
        value.floats = []  // `floats` is now the only reference: updated in place
        let count = floats.count
        update(&floats)
        precondition(floats.count == count, "\(name): an update changed \(count) values to \(floats.count)")
        value.floats = floats
        initializerValues[slot] = value
    }

    // MARK: - Running

    /// Inference: the graph outputs by name.
    public func run(inputs: [String: Tensor]) throws -> [String: Tensor] {
        try execute(inputs: inputs, keepRecords: false).outputs
    }

    /// A forward pass that keeps, per node, what `backward` needs.
    public struct ForwardPass {
        public let outputs: [String: Tensor]
        /// New values a training forward computed for stateful inputs that are not
        /// initializers (e.g. BN running statistics fed as graph inputs), by value name;
        /// initializers are updated in place instead.
        public let stateUpdates: [String: Tensor]
        /// Per step, what its backward reads (`BackwardReads`); backward drops each once used.
        var records: [ForwardRecord?]
        /// Values by slot, only graph inputs, initializers, constants and graph outputs (the
        /// intermediate ones live in `records` as long as some backward reads them): the
        /// gradient targets' shapes come from here.
        let values: [Tensor?]
        let context: ExecutionContext
    }

    /// Forward for training: outputs plus the records backward needs. In training mode
    /// (`context.training`) BatchNormalization running statistics are written back to the
    /// initializers once the pass completes. Each intermediate value is released after its
    /// last reader, and held on only by the records whose backward reads it.
    public func forward(inputs: [String: Tensor]) throws -> ForwardPass {
        try execute(inputs: inputs, keepRecords: true)
    }

    // MARK: - Looking inside a run

    /// Which plan an inference run executes: the one `optimizations` made (what `run(inputs:)`
    /// runs), or the graph as written.
    public enum PlanVariant: String, Sendable, CaseIterable {
        case optimized
        case asWritten = "as-written"
    }

    /// Values a run hands back besides the graph outputs.
    public enum KeptValues: Sendable {
        case none
        /// Every value some step of the plan computes.
        case all
        case named(Set<String>)

        func contains(_ name: String) -> Bool {
            switch self {
            case .none: return false
            case .all: return true
            case .named(let names): return names.contains(name)
            }
        }
    }

    /// A run's outputs and the values it was asked to keep.
    public struct InspectedRun {
        public var outputs: [String: Tensor]
        /// Kept values by name. A value the plan never computes (one that fusion folded into
        /// the step that absorbed its node, see `steps(of:)`) is absent.
        public var values: [String: Tensor]
    }

    /// One step of a plan as a reader sees it.
    public struct StepDescription: Sendable {
        /// The node as written whose place the step takes (a fused Conv keeps the Conv's node).
        public var node: Node
        /// Nodes as written this step also computes (a folded BatchNormalization, a fused
        /// Relu): their outputs, except the step's own, are never materialised.
        public var absorbed: [Node]
        /// Names of the values the step reads and writes ("" for an omitted optional one).
        public var inputs: [String]
        public var outputs: [String]
    }

    /// The steps of a plan in the order they run (topological; Constant nodes are values
    /// computed at load and not steps).
    public func steps(of variant: PlanVariant) throws -> [StepDescription] {
        if variant == .asWritten && frozen { throw RuntimeError.invalidGraph(Self.frozenMessage) }
        let plan = variant == .asWritten ? self.plan : inferencePlan()
        return plan.steps.map { step in
            StepDescription(node: step.node, absorbed: step.absorbed,
                            inputs: step.inputs.map { $0.map { plan.slotNames[$0] } ?? "" },
                            outputs: step.outputs.map { $0.map { plan.slotNames[$0] } ?? "" })
        }
    }

    /// Inference on `variant`, keeping the values `keeping` names as they are computed. The
    /// kept values together may hold at most `keptBytesLimit` bytes: a run that would keep
    /// more stops with `RuntimeError.limitExceeded` naming the value that crossed the budget.
    /// Steps run one at a time (a kept value's order and bits are the sequential run's).
    public func run(inputs: [String: Tensor], plan variant: PlanVariant, keeping: KeptValues = .none,
                    keptBytesLimit: Int = .max) throws -> InspectedRun {
        if variant == .asWritten && frozen { throw RuntimeError.invalidGraph(Self.frozenMessage) }
        if context.training { throw RuntimeError.invalidGraph("run(inputs:plan:keeping:) is for inference; turn training off first") }
        var kept = Kept(selection: keeping, limit: keptBytesLimit)
        let pass = try execute(inputs: inputs, keepRecords: false, plan: variant == .asWritten ? self.plan : inferencePlan(), kept: &kept)
        return InspectedRun(outputs: pass.outputs, values: kept.values)
    }

    /// What a run keeps for `run(inputs:plan:keeping:)`, with its byte budget.
    struct Kept {
        let selection: KeptValues
        let limit: Int
        var values: [String: Tensor] = [:]
        var bytes = 0

        static var nothing: Kept { Kept(selection: .none, limit: 0) }

        mutating func add(_ name: String, _ value: Tensor) throws {
            guard selection.contains(name) else { return }
            let size = value.count * (value.dtype == .float32 ? 4 : 8)
            if bytes + size > limit {
                throw RuntimeError.limitExceeded("keeping every intermediate value needs more than the budget of \(limit) bytes (\(bytes) kept before '\(name)' of shape \(value.shape) and \(size) bytes)")
            }
            bytes += size
            values[name] = value
        }
    }

    /// The plan an inference run executes: the fused one when optimisations are on.
    func inferencePlan() -> Plan {
        if optimizations.isEmpty { return plan }
        if let fusedPlan { return fusedPlan }
        let fused = plan.fusedForInference(values: initializerValues, options: planOptions)
        fusedPlan = fused
        return fused
    }

    func execute(inputs feeds: [String: Tensor], keepRecords: Bool) throws -> ForwardPass {
        // Records and training need the graph as written; plain inference may run it fused.
        if frozen && (keepRecords || context.training) { throw RuntimeError.invalidGraph(Self.frozenMessage) }
        var kept = Kept.nothing
        return try execute(inputs: feeds, keepRecords: keepRecords,
                           plan: keepRecords || context.training ? self.plan : inferencePlan(), kept: &kept)
    }

    func execute(inputs feeds: [String: Tensor], keepRecords: Bool, plan: Plan, kept: inout Kept) throws -> ForwardPass {
        var values = [Tensor?](repeating: nil, count: plan.slotNames.count)
        for (slot, t) in initializerValues { values[slot] = t }
        for (slot, t) in plan.constants { values[slot] = t }
        try bind(feeds, into: &values)
        let context = self.context
        var records = [ForwardRecord?](repeating: nil, count: keepRecords ? plan.steps.count : 0)
        var stateUpdates: [(Int, Tensor)] = []
        // A training pass keeps the values backward may look up by slot (see `ForwardPass.values`).
        var persistent: [Bool] = []
        if keepRecords {
            persistent = [Bool](repeating: false, count: values.count)
            for (slot, _) in initializerValues { persistent[slot] = true }
            for (slot, _) in plan.constants { persistent[slot] = true }
            for input in plan.inputs { persistent[input.slot] = true }
        }
        // Inference may run twins in independent branches side by side (ConcurrentExecution.swift),
        // or runs of sibling steps over the threads inside this loop (SiblingSteps.swift).
        let sideBySide = !keepRecords && !context.training && !context.deterministic && context.threads > 1
            && { if case .none = kept.selection { return true } else { return false } }()
        let concurrent = sideBySide && optimizations.contains(.concurrentBranches) && plan.hasTwins
        let siblings = sideBySide && !concurrent && !plan.siblingRuns.isEmpty
        if concurrent { try runConcurrently(plan, values: &values, context: context) }
        var i = 0
        while !concurrent && i < plan.steps.count {
            if siblings && plan.siblingRuns[i] > i + 1 {
                let run = i..<plan.siblingRuns[i]
                try runSiblings(run, plan: plan, values: &values, stateUpdates: &stateUpdates, context: context)
                i = run.upperBound
                continue
            }
            let step = plan.steps[i]
            let args = try plan.arguments(of: step, values)
            let started = profile != nil ? (ContinuousClock.now, ExecutionProfile.processCPUSeconds()) : nil
            let result = try step.op.forward(args, context)
            if let profile, let started {
                let d = (ContinuousClock.now - started.0).components
                profile.add(step.node.opType, detail: (step.op as? ProfiledOperator)?.profileDetail(args, backward: false, context),
                            seconds: Double(d.seconds) + Double(d.attoseconds) * 1e-18,
                            cpuSeconds: ExecutionProfile.processCPUSeconds() - started.1)
            }
            for (k, slot) in step.outputs.enumerated() {
                guard let slot else { continue }
                let y = try plan.output(k, slot: slot, of: step, in: result)
                values[slot] = y
                try kept.add(plan.slotNames[slot], y)
            }
            stateUpdates += plan.stateUpdates(of: step, in: result)
            if keepRecords {
                records[i] = ForwardRecord(inputs: args, outputs: result.outputs, saved: result.saved,
                                           keeping: recordsEverything ? .everything : result.backwardReads)
                for case let s? in step.inputs where plan.lastUse[s] == i && !persistent[s] { values[s] = nil }
                for case let s? in step.outputs where plan.lastUse[s] < 0 && !persistent[s] { values[s] = nil }  // read by nothing
            } else {
                for case let s? in step.inputs where plan.lastUse[s] == i { values[s] = nil }
            }
            i += 1
        }
        var outputs: [String: Tensor] = [:]
        for (name, slot) in plan.outputs {
            guard let v = values[slot] else { throw RuntimeError.missingValue(name) }
            outputs[name] = v
        }
        // Running statistics change only after the pass, so every node saw the same weights.
        var fedUpdates: [String: Tensor] = [:]
        for (slot, t) in stateUpdates {
            // A fed value (graph input) is not state the executor owns: hand it back instead.
            if initializerValues[slot] != nil && feeds[plan.slotNames[slot]] == nil {
                initializerValues[slot] = t
            } else {
                fedUpdates[plan.slotNames[slot]] = t
            }
        }
        return ForwardPass(outputs: outputs, stateUpdates: fedUpdates, records: records, values: keepRecords ? values : [], context: context)
    }

    /// Checks feeds against the declared graph inputs and puts them in their slots.
    func bind(_ feeds: [String: Tensor], into values: inout [Tensor?]) throws {
        let declared = Set(plan.inputs.map(\.name))
        for name in feeds.keys.sorted() where !declared.contains(name) {
            throw RuntimeError.invalidTensor(name: name, reason: "is not an input of the graph")
        }
        var symbols: [String: (Int, String)] = [:]
        for input in plan.inputs {
            guard let t = feeds[input.name] else {
                if input.hasDefault { continue }
                throw RuntimeError.missingValue(input.name)
            }
            if let e = input.elementType {
                let expected: DType? = switch e {
                case .float, .float16, .bfloat16, .double: .float32
                case .string, .complex64, .complex128: nil
                default: .int64
                }
                guard expected == t.dtype else {
                    throw RuntimeError.invalidTensor(name: input.name, reason: "fed \(t.dtype), the graph declares \(e)")
                }
            }
            if let dims = input.dims {
                guard dims.count == t.rank else {
                    throw RuntimeError.invalidTensor(name: input.name, reason: "fed shape \(t.shape) has rank \(t.rank), the graph declares \(dims.count) dims \(dims)")
                }
                for (axis, (d, size)) in zip(dims, t.shape).enumerated() {
                    switch d {
                    case .fixed(let n) where n != size:
                        throw RuntimeError.invalidTensor(name: input.name, reason: "fed shape \(t.shape): dim \(axis) is \(size), the graph declares \(n)")
                    case .symbolic(let s):
                        if let (bound, by) = symbols[s], bound != size {
                            throw RuntimeError.invalidTensor(name: input.name, reason: "fed shape \(t.shape): dim \(axis) ('\(s)') is \(size), but '\(by)' gave '\(s)' = \(bound)")
                        }
                        symbols[s] = symbols[s] ?? (size, input.name)
                    default:
                        break
                    }
                }
            }
            values[input.slot] = t
        }
    }

    // MARK: - Backward

    /// Gradients of a loss with respect to `wrt` (initializers or graph inputs), given its
    /// gradients with respect to some graph outputs (`outputGradients`, by output name; other
    /// outputs contribute nothing). A name the loss does not depend on gets zeros.
    ///
    /// Each step's record is released once its backward ran, so the forward's activations
    /// shrink as the gradients grow: hand the pass over (`backward(consume pass, ...)`) for
    /// that; a caller that keeps its own copy keeps every record until it drops it.
    public func backward(_ pass: consuming ForwardPass, outputGradients: [String: Tensor], wrt: [String]) throws -> [String: Tensor] {
        guard pass.records.count == plan.steps.count else {
            throw RuntimeError.invalidGraph("backward needs a pass from forward(inputs:) of this executor")
        }
        var targets: [Int] = []
        for name in wrt {
            guard let s = plan.slotOf[name], plan.initializerSlots[name] != nil || plan.inputs.contains(where: { $0.name == name }) else {
                throw RuntimeError.missingValue(name)
            }
            targets.append(s)
        }
        // Which values lie on a path from a target: only those need gradients.
        var requires = [Bool](repeating: false, count: plan.slotNames.count)
        for s in targets { requires[s] = true }
        let isTarget = requires
        for step in plan.steps where step.inputs.contains(where: { $0.map { requires[$0] } ?? false }) {
            for case let s? in step.outputs { requires[s] = true }
        }
        var grads = [Tensor?](repeating: nil, count: plan.slotNames.count)
        for (name, g) in outputGradients.sorted(by: { $0.key < $1.key }) {
            guard let o = plan.outputs.first(where: { $0.name == name }) else {
                throw RuntimeError.invalidTensor(name: name, reason: "has a gradient but is not a graph output")
            }
            guard let v = pass.values[o.slot], v.shape == g.shape, g.dtype == .float32 else {
                throw RuntimeError.invalidTensor(name: name, reason: "gradient \(g.dtype) \(g.shape) does not match the output \(pass.values[o.slot].map { "\($0.dtype) \($0.shape)" } ?? "?")")
            }
            try accumulate(&grads[o.slot], g, name: name)
        }
        var records = pass.records
        pass.records = []
        for i in stride(from: plan.steps.count - 1, through: 0, by: -1) {
            let step = plan.steps[i]
            guard let record = records[i] else { continue }
            records[i] = nil
            let gradOutputs = step.outputs.map { $0.flatMap { grads[$0] } }
            if gradOutputs.allSatisfy({ $0 == nil }) { continue }
            let needs = step.inputs.enumerated().map { k, s in
                s.map { requires[$0] } == true && record.inputTypes[k] == .float32
            }
            if !needs.contains(true) { continue }
            let inputGrads: [Tensor?]
            if let profile {
                let detail = ((step.op as? ProfiledOperator)?.profileDetail(record.inputs, backward: true, pass.context)).map { $0 + " backward" }
                inputGrads = try profile.time(step.node.opType + " backward", detail: detail) {
                    try step.op.backward(gradOutputs, record, needsGradient: needs, pass.context)
                }
            } else {
                inputGrads = try step.op.backward(gradOutputs, record, needsGradient: needs, pass.context)
            }
            for (k, slot) in step.inputs.enumerated() {
                guard let slot, needs[k], k < inputGrads.count, let g = inputGrads[k] else { continue }
                guard let shape = record.inputShapes[k], shape == g.shape else {
                    throw RuntimeError.invalidInput(node: step.node.name, opType: step.node.opType,
                                                    reason: "backward gave input \(k) a gradient of shape \(g.shape) for an input of shape \(record.inputShapes[k] ?? [])")
                }
                if let profile, grads[slot] != nil {
                    try profile.time("(gradient sums)") { try accumulate(&grads[slot], g, name: plan.slotNames[slot]) }
                } else {
                    try accumulate(&grads[slot], g, name: plan.slotNames[slot])
                }
            }
            // Gradients of this node's outputs are fully used now.
            for case let s? in step.outputs where !isTarget[s] { grads[s] = nil }
        }
        var result: [String: Tensor] = [:]
        for (name, s) in zip(wrt, targets) {
            if let g = grads[s] {
                result[name] = g
            } else if let v = pass.values[s] {
                result[name] = Tensor(zeros: v.shape)
            }
        }
        return result
    }

    /// Adds `g` into the running gradient of a value (a value read by several nodes), large ones
    /// split over the context's threads (elementwise: the same bits on any count).
    func accumulate(_ total: inout Tensor?, _ g: Tensor, name: String) throws {
        guard var t = total else { total = g; return }
        // Drop the optional's reference so the in-place add does not copy the buffer.
        total = nil
        guard t.shape == g.shape else {
            throw RuntimeError.invalidTensor(name: name, reason: "gradients of shapes \(t.shape) and \(g.shape) cannot be summed")
        }
        let threads = context.threads
        t.floats.withUnsafeMutableBufferPointer { tp in
            g.floats.withUnsafeBufferPointer { gp in
                let n = tp.count
                guard n > 0 else { return }
                let a = tp.baseAddress!, b = gp.baseAddress!
                let workers = n >= BinaryElementwise.parallelElements ? max(1, threads) : 1
                parallelFor(workers, threads: workers) { w in
                    for i in (n * w / workers)..<(n * (w + 1) / workers) { a[i] += b[i] }
                }
            }
        }
        total = t
    }
}
