// Inference-time fusions of CBAM's gates (`GraphOptimizations.fuseGates`): the two global pools
// of the channel gate in one pass, the spatial gate's channel max, channel mean and their Concat
// in one step, and a Mul whose only reader is an Add (the spatial gate's product feeding the
// residual sum) folded into that Add. Each computes every output with the same float operations
// in the same order as the steps it replaces, so the same bits (a NaN's sign and payload aside
// where two NaNs, or inf and -inf, meet in a sum: the compiler picks the operand order of an add,
// in the operators as written too); an input the fast path does not
// cover (another type, rank or broadcast) runs the original operators one after the other.

import Kernels
import ONNXIR

/// GlobalAveragePool and GlobalMaxPool of one tensor in one pass: eight planes at a time, each
/// plane's Double sum and running maximum in plane order (the operators' own order: the sum's
/// dependent adds, ~4 cycles each, were most of both operators' time on CBAM's 49-value planes;
/// eight planes side by side keep eight chains in flight). Made by `Plan.fusedForInference`.
struct FusedGlobalPools: Operator {
    let average: GlobalAveragePool
    let maximum: GlobalMaxPool
    /// The step's outputs are [average, maximum] when set, else [maximum, average].
    let averageFirst: Bool

    init(node: Node, opset: Int64) throws {
        throw RuntimeError.invalidGraph("FusedGlobalPools is made by the inference optimiser, not read from a model")
    }

    init(average: GlobalAveragePool, maximum: GlobalMaxPool, averageFirst: Bool) {
        self.average = average
        self.maximum = maximum
        self.averageFirst = averageFirst
    }

    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        let a = try average.inferShapes(inputs), m = try maximum.inferShapes(inputs)
        return averageFirst ? a + m : m + a
    }

    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        guard inputs.count == 1, let x = inputs[0], x.dtype == .float32, x.rank >= 2,
              x.shape.dropFirst(2).reduce(1, *) > 0, x.shape[0] * x.shape[1] > 0 else {
            let a = try average.forward(inputs, context).outputs[0], m = try maximum.forward(inputs, context).outputs[0]
            return ForwardResult(averageFirst ? [a, m] : [m, a])
        }
        let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
        let threads = planes * size >= BinaryElementwise.parallelElements ? context.threads : 1
        var maxima = [Float](repeating: 0, count: planes)
        let means = [Float].filled(count: planes) { mp in
            maxima.withUnsafeMutableBufferPointer { xp in
                x.floats.withUnsafeBufferPointer { xb in
                    Self.pools(xb.baseAddress!, planes: planes, size: size, means: mp, maxima: xp.baseAddress!, threads: threads)
                }
            }
        }
        let shape = Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2)
        let a = Tensor(shape: shape, floats: means), m = Tensor(shape: shape, floats: maxima)
        return ForwardResult(averageFirst ? [a, m] : [m, a])
    }

    /// means[p] = Float(sum of Double(plane p) in order / size); maxima[p] = the value
    /// GlobalMaxPool picks (its first NaN, else its first maximum: a strict `>` scan keeps the
    /// first of +0 and -0).
    static func pools(_ x: UnsafePointer<Float>, planes: Int, size: Int, means: UnsafeMutablePointer<Float>,
                      maxima: UnsafeMutablePointer<Float>, threads: Int) {
        let groups = planes / 8
        parallelFor(groups + planes % 8, threads: threads) { t in
            if t < groups {
                let p0 = t * 8
                let r0 = x + p0 * size, r1 = r0 + size, r2 = r1 + size, r3 = r2 + size
                let r4 = r3 + size, r5 = r4 + size, r6 = r5 + size, r7 = r6 + size
                var s = SIMD8<Double>(repeating: 0), m = SIMD8<Float>(repeating: -.infinity)
                for i in 0..<size {
                    let v = SIMD8<Float>(r0[i], r1[i], r2[i], r3[i], r4[i], r5[i], r6[i], r7[i])
                    s += SIMD8<Double>(v)
                    m.replace(with: v, where: (v .> m) .| ((v .!= v) .& (m .== m)))
                }
                let mean = s / SIMD8<Double>(repeating: Double(size))
                for j in 0..<8 {
                    means[p0 + j] = Float(mean[j])
                    maxima[p0 + j] = m[j]
                }
            } else {
                let p = groups * 8 + (t - groups), plane = x + p * size
                var s: Double = 0, m = -Float.infinity
                for i in 0..<size {
                    let v = plane[i]
                    s += Double(v)
                    if v > m || (v != v && m == m) { m = v }
                }
                means[p] = Float(s / Double(size))
                maxima[p] = m
            }
        }
    }
}

/// ReduceMax and ReduceMean over axis 1 (keepdims) of one tensor, joined by a Concat on axis 1
/// (CBAM's spatial gate): one pass over the channels writes both planes of the Concat's output.
/// Each position's maximum and sum run over the channels in order, as `Reduction.accumulate`
/// does, and the sum is scaled by 1/C as ReduceMean does. Made by `Plan.fusedForInference`.
struct FusedChannelPools: Operator {
    let maximum: ReduceMax
    let mean: ReduceMean
    let concat: Concat
    /// The Concat reads [maximum, mean] when set, else [mean, maximum].
    let maximumFirst: Bool

    init(node: Node, opset: Int64) throws {
        throw RuntimeError.invalidGraph("FusedChannelPools is made by the inference optimiser, not read from a model")
    }

    init(maximum: ReduceMax, mean: ReduceMean, concat: Concat, maximumFirst: Bool) {
        self.maximum = maximum
        self.mean = mean
        self.concat = concat
        self.maximumFirst = maximumFirst
    }

    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        let m = try maximum.inferShapes(inputs)[0], a = try mean.inferShapes(inputs)[0]
        return try concat.inferShapes(maximumFirst ? [m, a] : [a, m])
    }

    /// Whether the fast path computes what the three operators do for an input of rank `rank`.
    func covers(rank: Int) throws -> Bool {
        guard rank >= 3, maximum.attributes.keepDims, mean.attributes.keepDims,
              !maximum.attributes.axesFromInput, !mean.attributes.axesFromInput else { return false }
        return try maximum.attributes.axes(nil, rank: rank) == [1] && mean.attributes.axes(nil, rank: rank) == [1]
            && concat.label.axis(concat.axis, rank: rank) == 1
    }

    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        guard inputs.count == 1, let x = inputs[0], x.dtype == .float32, x.count > 0, try covers(rank: x.rank) else {
            let m = try maximum.forward(inputs, context).outputs[0], a = try mean.forward(inputs, context).outputs[0]
            return try concat.forward(maximumFirst ? [m, a] : [a, m], context)
        }
        let images = x.shape[0], channels = x.shape[1], plane = x.shape.dropFirst(2).reduce(1, *)
        let threads = x.count >= BinaryElementwise.parallelElements ? context.threads : 1
        let y = [Float].filled(count: images * 2 * plane) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                let x0 = xb.baseAddress!
                parallelFor(images, threads: threads) { n in
                    let top = yp + n * 2 * plane + (maximumFirst ? 0 : plane)
                    let sum = yp + n * 2 * plane + (maximumFirst ? plane : 0)
                    top.update(repeating: -.infinity, count: plane)
                    sum.update(repeating: 0, count: plane)
                    let keep = MaxKeepingNaN(), add = FloatSum()
                    for c in 0..<channels {
                        let row = x0 + (n * channels + c) * plane
                        for p in 0..<plane {
                            top[p] = keep(top[p], row[p])
                            sum[p] = add(sum[p], row[p])
                        }
                    }
                    let scale = 1 / Float(channels)
                    for p in 0..<plane { sum[p] = sum[p] * scale }
                }
            }
        }
        return ForwardResult([Tensor(shape: [images, 2] + Array(x.shape.dropFirst(2)), floats: y)])
    }
}

/// A Mul whose only reader is an Add (or an Add fused with its Relu): y = relu?(a * b + r) in one
/// pass, with the Mul's broadcasting, where r has the product's shape. Made by
/// `Plan.fusedForInference`.
struct FusedMulAdd: Operator {
    let mul: Mul
    let add: Add
    /// max(sum, 0) as `FusedAddRelu` computes it.
    let relu: Bool
    /// The Add reads [product, r] when set, else [r, product].
    let productFirst: Bool

    init(node: Node, opset: Int64) throws {
        throw RuntimeError.invalidGraph("FusedMulAdd is made by the inference optimiser, not read from a model")
    }

    init(mul: Mul, add: Add, relu: Bool, productFirst: Bool) {
        self.mul = mul
        self.add = add
        self.relu = relu
        self.productFirst = productFirst
    }

    /// Inputs: the Mul's two, then the Add's other operand.
    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count == 3 else { throw add.label.error("expected 3 inputs") }
        let product = try mul.inferShapes(Array(inputs[0..<2]))[0]
        return try add.inferShapes(productFirst ? [product, inputs[2]] : [inputs[2], product])
    }

    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        guard inputs.count == 3, let a = inputs[0], let b = inputs[1], let r = inputs[2],
              a.dtype == .float32, b.dtype == .float32, r.dtype == .float32,
              let shape = Broadcast.shape(a.shape, b.shape), shape == r.shape else {
            let product = try mul.forward(Array(inputs.prefix(2)), context).outputs[0]
            let operands = productFirst ? [product, inputs.count > 2 ? inputs[2] : nil] : [inputs.count > 2 ? inputs[2] : nil, product]
            return relu ? try FusedAddRelu(add: add).forward(operands, context) : try add.forward(operands, context)
        }
        let y: [Float]
        switch (relu, productFirst) {
        case (true, true): y = Self.apply(a, b, r, shape, threads: context.threads, RectifiedSum())
        case (true, false): y = Self.apply(a, b, r, shape, threads: context.threads, Swapped(f: RectifiedSum()))
        case (false, true): y = Self.apply(a, b, r, shape, threads: context.threads, FloatSum())
        case (false, false): y = Self.apply(a, b, r, shape, threads: context.threads, Swapped(f: FloatSum()))
        }
        return ForwardResult([Tensor(shape: shape, floats: y)])
    }

    /// out[o] = sum(a[ia] * b[ib], r[o]) over the broadcast shape, as `BinaryElementwise.apply`
    /// walks it (collapsed dims, innermost runs, rows split over threads for large outputs).
    @inline(__always)
    static func apply<F: ElementFormula>(_ a: Tensor, _ b: Tensor, _ r: Tensor, _ shape: [Int], threads: Int,
                                         _ sum: F) -> [Float] where F.Element == Float {
        let n = ShapeMath.elementCount(shape) ?? 0
        guard n > 0 else { return [] }
        let (dims, sa, sb) = Broadcast.collapsed(shape, Broadcast.strides(of: a.shape, in: shape),
                                                 Broadcast.strides(of: b.shape, in: shape))
        let rank = dims.count, inner = dims[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
        let product = FloatProduct()
        return a.floats.withUnsafeBufferPointer { pa in
            b.floats.withUnsafeBufferPointer { pb in
                r.floats.withUnsafeBufferPointer { pr in
                    [Float].filled(count: n) { po in
                        let xa = pa.baseAddress!, xb = pb.baseAddress!, xr = pr.baseAddress!
                        if inner < 16 {
                            Broadcast.forEach(dims, sa, sb) { o, i, j in po[o] = sum(product(xa[i], xb[j]), xr[o]) }
                            return
                        }
                        let rows = n / inner
                        let workers = n >= BinaryElementwise.parallelElements ? max(1, min(threads, rows)) : 1
                        parallelFor(workers, threads: workers) { w in
                            for row in (rows * w / workers)..<(rows * (w + 1) / workers) {
                                let (oa, ob) = BinaryElementwise.rowOffsets(row, dims, sa, sb)
                                let out = po + row * inner, rr = xr + row * inner, ar = xa + oa, br = xb + ob
                                switch (ia, ib) {
                                case (1, 1): for k in 0..<inner { out[k] = sum(product(ar[k], br[k]), rr[k]) }
                                case (0, 1):
                                    let s = ar[0]
                                    for k in 0..<inner { out[k] = sum(product(s, br[k]), rr[k]) }
                                case (1, 0):
                                    let s = br[0]
                                    for k in 0..<inner { out[k] = sum(product(ar[k], s), rr[k]) }
                                default: for k in 0..<inner { out[k] = sum(product(ar[k * ia], br[k * ib]), rr[k]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// f(b, a): a formula with its operands swapped.
struct Swapped<F: ElementFormula>: ElementFormula {
    let f: F
    @inline(__always) func callAsFunction(_ a: F.Element, _ b: F.Element) -> F.Element { f(b, a) }
}

extension Plan {
    /// The `.fuseGates` rewrites on `steps` (indices of the plan as written), after the other
    /// fusions chose `removed` and `replaced`: a step already replaced or removed is not taken
    /// again, except an Add fused with its Relu, which may still take its Mul. `readers` counts
    /// each slot's readers (a graph output counts as many), `producerStep` each slot's step.
    func fuseGates(readers: [Int], producerStep: [Int: Int], removed: inout Set<Int>, replaced: inout [Int: PlanStep]) {
        func standard(_ i: Int) -> Bool {
            !removed.contains(i) && replaced[i] == nil && OperatorRegistry.normalize(steps[i].node.domain) == ""
                && steps[i].outputs.count == 1 && steps[i].outputs[0] != nil
        }
        // GlobalAveragePool and GlobalMaxPool of one value: one step where the first of them ran.
        for i in steps.indices where standard(i) {
            guard let average = steps[i].op as? GlobalAveragePool, steps[i].inputs.count == 1, let x = steps[i].inputs[0],
                  let j = steps.indices.first(where: { standard($0) && steps[$0].op is GlobalMaxPool && steps[$0].inputs == [x] }),
                  let maximum = steps[j].op as? GlobalMaxPool else { continue }
            let (first, second) = (min(i, j), max(i, j))
            removed.insert(second)
            replaced[first] = PlanStep(node: steps[first].node, op: FusedGlobalPools(average: average, maximum: maximum, averageFirst: i < j),
                                       inputs: [x], outputs: [steps[first].outputs[0], steps[second].outputs[0]],
                                       absorbed: [steps[second].node])
        }
        // Concat(ReduceMax(x), ReduceMean(x)) over channels, each reduction read only by the Concat.
        for k in steps.indices where standard(k) {
            guard let concat = steps[k].op as? Concat, steps[k].inputs.count == 2, let s0 = steps[k].inputs[0],
                  let s1 = steps[k].inputs[1], s0 != s1, readers[s0] == 1, readers[s1] == 1,
                  let p0 = producerStep[s0], let p1 = producerStep[s1], standard(p0), standard(p1) else { continue }
            let maximumFirst = steps[p0].op is ReduceMax
            let (mi, ai) = maximumFirst ? (p0, p1) : (p1, p0)
            guard let maximum = steps[mi].op as? ReduceMax, let mean = steps[ai].op as? ReduceMean,
                  steps[mi].inputs.count == 1, let x = steps[mi].inputs[0], steps[ai].inputs == [x],
                  maximum.attributes.attributeAxes == [1], mean.attributes.attributeAxes == [1],
                  maximum.attributes.keepDims, mean.attributes.keepDims else { continue }
            removed.insert(mi)
            removed.insert(ai)
            replaced[k] = PlanStep(node: steps[min(mi, ai)].node,
                                   op: FusedChannelPools(maximum: maximum, mean: mean, concat: concat, maximumFirst: maximumFirst),
                                   inputs: [x], outputs: steps[k].outputs, absorbed: [steps[max(mi, ai)].node, steps[k].node])
        }
        // Mul -> Add (-> Relu), where the Add is the product's only reader.
        for i in steps.indices where !removed.contains(i) {
            let step = replaced[i] ?? steps[i]
            guard let add = steps[i].op as? Add, OperatorRegistry.normalize(steps[i].node.domain) == "",
                  step.op is Add || step.op is FusedAddRelu, steps[i].inputs.count == 2,
                  let s0 = steps[i].inputs[0], let s1 = steps[i].inputs[1], s0 != s1 else { continue }
            let candidates = [(s0, true), (s1, false)].compactMap { slot, productFirst -> (Int, Bool)? in
                guard readers[slot] == 1, let m = producerStep[slot], standard(m), steps[m].op is Mul,
                      steps[m].inputs.count == 2, steps[m].inputs.allSatisfy({ $0 != nil }) else { return nil }
                return (m, productFirst)
            }
            guard let (m, productFirst) = candidates.first, let mul = steps[m].op as? Mul else { continue }
            removed.insert(m)
            replaced[i] = PlanStep(node: steps[m].node,
                                   op: FusedMulAdd(mul: mul, add: add, relu: step.op is FusedAddRelu, productFirst: productFirst),
                                   inputs: steps[m].inputs + [productFirst ? s1 : s0], outputs: step.outputs,
                                   absorbed: [steps[i].node] + step.absorbed)
        }
    }
}
