// Inference-time plan rewrites: Conv -> BatchNormalization (-> Relu) becomes one fused convolution,
// Add -> Relu one fused add, CBAM's gates fewer steps (GateFusion.swift).

import Foundation
import Kernels
import ONNXIR

/// A Conv whose weights and bias already include the BatchNormalization that followed it
/// (running statistics), with the following Relu applied in its epilogue. Made by
/// `Plan.fusedForInference`, never from a file: it has no attributes and no backward.
struct FusedConv: Operator {
    let conv: Conv
    /// [M, C/group, k...] of the folded weights.
    let weightShape: [Int]
    /// The folded weights (as written, or, for ungrouped convolutions with at least 16 filters,
    /// packed once for the packed-filter GEMM, which then holds the only copy) and, when the
    /// Winograd path may run this convolution (3x3, stride 1), its policy.
    let plan: ConvolutionPlan
    /// Folded bias [M].
    let bias: Tensor?
    let relu: Bool

    var filters: ConvolutionPlan.Filters { plan.filters }
    var winograd: WinogradPath? { plan.winograd }

    /// Ungrouped convolutions with at least 16 filters get packed filters (fewer would
    /// be mostly the zero rows that pad a block of 16), and at least 64 weights per filter.
    /// MA-Net's 7x7 stem (147 per filter) and 1x1 downsampling convolutions (64-256) went to
    /// OpenBLAS until the unfolding took vector rows and the store lost its masked writes;
    /// packed since.
    static let minimumPackedFilters = 16
    static let minimumPackedColumns = 64

    init(node: Node, opset: Int64) throws {
        throw RuntimeError.invalidGraph("FusedConv is made by the inference optimiser, not read from a model")
    }

    /// `pack` (only where `packs(conv:weightShape:)` holds): pack the weights, taking `weight`'s
    /// buffer (packed in place when nothing else holds it; `weight` is left empty).
    init(conv: Conv, weight: inout Tensor, bias: Tensor?, relu: Bool, pack: Bool, winograd: WinogradPath? = nil) {
        precondition(!pack || Self.packs(conv: conv, weightShape: weight.shape))
        self.conv = conv
        self.weightShape = weight.shape
        self.bias = bias
        self.relu = relu
        if pack {
            let filters = weight.shape[0], columns = weight.count / weight.shape[0]
            plan = ConvolutionPlan(filters: .packed(PackedFilters(taking: &weight.floats, filters: filters, columns: columns)),
                                   winograd: winograd)
        } else {
            plan = ConvolutionPlan(filters: .plain(weight.floats), winograd: winograd)
        }
    }

    /// Whether `pack` packs a convolution's weights.
    static func packs(conv: Conv, weightShape w: [Int]) -> Bool {
        conv.group == 1 && w.count >= 3 && w[0] >= minimumPackedFilters && w.dropFirst().reduce(1, *) >= minimumPackedColumns
    }

    /// The folded weights [M, C/group, k...] (unpacked again if packed).
    var weight: Tensor {
        switch filters {
        case .plain(let w): return Tensor(shape: weightShape, floats: w)
        case .packed(let p): return Tensor(shape: weightShape, floats: p.unpacked())
        }
    }

    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try conv.inferShapes([inputs.first ?? nil, ValueShape(dtype: .float32, dims: weightShape.map { $0 })])
    }

    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try conv.label.checkCount(inputs, 1...1)
        let x = try conv.label.float(inputs, 0)
        let l = try conv.layout(x.shape, weightShape, bias: bias?.shape)
        let count = try conv.label.count(l.outputShape)
        let y = Conv.convolve(x, plan, bias: bias, l, group: conv.group, relu: relu, count: count, context)
        return ForwardResult([Tensor(shape: l.outputShape, floats: y)])
    }

}

/// An Add whose only reader was a Relu: y = max(a + b, 0) in one pass, with Add's
/// broadcasting and the same bits as the two steps. Made by `Plan.fusedForInference`.
struct FusedAddRelu: Operator {
    let add: Add

    init(node: Node, opset: Int64) throws {
        throw RuntimeError.invalidGraph("FusedAddRelu is made by the inference optimiser, not read from a model")
    }

    init(add: Add) { self.add = add }

    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] { try add.inferShapes(inputs) }

    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        let (a, b, shape) = try BinaryElementwise.operands(inputs, add.label)
        if a.dtype == .int64 {
            return ForwardResult([Tensor(shape: shape, ints: BinaryElementwise.apply(a.ints, a.shape, b.ints, b.shape, shape) { max($0 &+ $1, 0) })])
        }
        return ForwardResult([Tensor(shape: shape, floats: BinaryElementwise.apply(a.floats, a.shape, b.floats, b.shape, shape,
                                                                                   threads: context.threads, RectifiedSum()))])
    }
}

/// max(a + b, 0): Relu's `max(x, 0)` of Add's sum (a NaN sum stays NaN).
struct RectifiedSum: ElementFormula {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { max(a + b, 0) }
}

extension Plan {
    /// This plan with Conv -> BatchNormalization folded and a following Relu fused, where the
    /// weights and BN parameters are initializers or constants (`values`, by slot) and each
    /// intermediate value has no other reader and is not a graph output. Folding
    /// (`BatchNormFold`, the routine the exporter's `--fold-bn` uses too) changes results only by
    /// float rounding.
    func fusedForInference(values: [Int: Tensor], options: RuntimeOptions) -> Plan {
        var values = values
        return fusedForInference(values: &values, options: options, releasingOriginals: false)
    }

    /// The same, removing from `values` each Conv weight that only its (folded) Conv read, so
    /// that, when `values` holds the only reference, the folded weights reuse its buffer and the
    /// weights are never held twice. The plan as written cannot run on `values` afterwards.
    func fusedForInference(values: inout [Int: Tensor], options runtime: RuntimeOptions, releasingOriginals: Bool) -> Plan {
        let options = runtime.optimizations
        guard options.contains(.foldBatchNorm) || options.contains(.fuseRelu) || options.contains(.winograd)
                || options.contains(.fuseAddRelu) || options.contains(.packFilters) || options.contains(.fuseGates) else {
            var plan = self
            if options.contains(.concurrentBranches) { plan.twins = stepTwins() }
            if options.contains(.siblingSteps) { plan.findSiblingRuns() }
            return plan
        }
        var readers = [Int](repeating: 0, count: slotNames.count)
        for step in steps { for case let s? in step.inputs { readers[s] += 1 } }
        for o in outputs { readers[o.slot] += 1_000_000 }  // a graph output is never swallowed
        let filterStore = WinogradFilterStore.forPlan(weightBytes: values.values.reduce(0) { $0 + $1.count * 4 },
                                                      budgetBytes: runtime.winogradKeepBytes)
        var producerStep: [Int: Int] = [:]
        for (i, step) in steps.enumerated() { for case let s? in step.outputs { producerStep[s] = i } }
        func only(_ slot: Int, readBy opType: String) -> Int? {
            guard readers[slot] == 1 else { return nil }
            return steps.indices.first { i in
                steps[i].node.opType == opType && OperatorRegistry.normalize(steps[i].node.domain) == ""
                    && steps[i].inputs.first == slot
            }
        }
        func constant(_ slot: Int?) -> Tensor? {
            guard let slot, producerStep[slot] == nil, let t = values[slot] ?? constants[slot], t.dtype == .float32 else { return nil }
            return t
        }

        var removed = Set<Int>()
        var replaced: [Int: PlanStep] = [:]
        for (i, step) in steps.enumerated() {
            guard let conv = step.op as? Conv, OperatorRegistry.normalize(step.node.domain) == "",
                  step.inputs.count >= 2, let xSlot = step.inputs[0], step.outputs.count == 1, var out = step.outputs[0],
                  var weight = constant(step.inputs[1]), weight.rank >= 3 else { continue }
            let filters = weight.shape[0]
            var bias: Tensor? = nil
            if step.inputs.count > 2, step.inputs[2] != nil {
                guard let b = constant(step.inputs[2]), b.shape == [filters] else { continue }
                bias = b
            }
            var changed = false
            var absorbed: [Node] = []
            if options.contains(.foldBatchNorm), let j = only(out, readBy: "BatchNormalization"),
               let bn = steps[j].op as? BatchNormalization, !bn.trainingModeAttribute,
               steps[j].inputs.count == 5, steps[j].outputs.count == 1, let bnOut = steps[j].outputs[0],
               let scale = constant(steps[j].inputs[1]), let shift = constant(steps[j].inputs[2]),
               let mean = constant(steps[j].inputs[3]), let variance = constant(steps[j].inputs[4]),
               [scale, shift, mean, variance].allSatisfy({ $0.shape == [filters] }) {
                // Scaled in place: a copy only while `values` still shares the buffer.
                if releasingOriginals, let w = step.inputs[1], readers[w] == 1, values[w] != nil { values[w] = nil }
                let folded = weight.floats.withUnsafeMutableBufferPointer { w in
                    BatchNormFold.fold(weight: w, bias: bias?.floats, gamma: scale.floats, beta: shift.floats,
                                       mean: mean.floats, variance: variance.floats, epsilon: Double(bn.epsilon))
                }
                bias = Tensor(shape: [filters], floats: folded)
                removed.insert(j)
                absorbed.append(steps[j].node)
                out = bnOut
                changed = true
            }
            var relu = false
            if options.contains(.fuseRelu), let k = only(out, readBy: "Relu"), steps[k].outputs.count == 1,
               let reluOut = steps[k].outputs[0] {
                removed.insert(k)
                absorbed.append(steps[k].node)
                out = reluOut
                relu = true
                changed = true
            }
            let pack = options.contains(.packFilters) && FusedConv.packs(conv: conv, weightShape: weight.shape)
            // Packed filters replace the weights: release the original when only this Conv read
            // it, so that they are packed in its buffer.
            if pack && releasingOriginals, let w = step.inputs[1], readers[w] == 1 { values[w] = nil }
            var winograd: WinogradPath? = nil
            if options.contains(.winograd), let tiles = runtime.convolution.inferenceTiles,
               conv.winogradCandidate(weightShape: weight.shape) {
                winograd = WinogradPath(tiles: tiles, store: filterStore, minimumTiles: runtime.winogradMinimumTiles)
                changed = true
            }
            let fused = FusedConv(conv: conv, weight: &weight, bias: bias, relu: relu, pack: pack, winograd: winograd)
            if pack { changed = true }
            guard changed else { continue }
            replaced[i] = PlanStep(node: step.node, op: fused, inputs: [xSlot], outputs: [out], absorbed: absorbed)
        }
        // Add -> Relu, where the Relu is the Add output's only reader (and it is no graph output).
        for (i, step) in steps.enumerated() where options.contains(.fuseAddRelu) {
            guard let add = step.op as? Add, OperatorRegistry.normalize(step.node.domain) == "",
                  step.outputs.count == 1, let out = step.outputs[0],
                  let k = only(out, readBy: "Relu"), !removed.contains(k), steps[k].outputs.count == 1,
                  let reluOut = steps[k].outputs[0] else { continue }
            removed.insert(k)
            replaced[i] = PlanStep(node: step.node, op: FusedAddRelu(add: add), inputs: step.inputs, outputs: [reluOut],
                                   absorbed: [steps[k].node])
        }
        if options.contains(.fuseGates) {
            fuseGates(readers: readers, producerStep: producerStep, removed: &removed, replaced: &replaced)
        }
        var plan = self
        plan.steps = steps.indices.compactMap { removed.contains($0) ? nil : (replaced[$0] ?? steps[$0]) }
        plan.lastUse = [Int](repeating: -1, count: slotNames.count)
        for (i, step) in plan.steps.enumerated() { for case let s? in step.inputs { plan.lastUse[s] = i } }
        for o in outputs { plan.lastUse[o.slot] = Int.max }
        if options.contains(.concurrentBranches) { plan.twins = plan.stepTwins() }
        if options.contains(.siblingSteps) { plan.findSiblingRuns() }
        return plan
    }
}
