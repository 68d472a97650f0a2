// The shared body of ReduceMean, ReduceMax and ReduceSum: axes (attribute or input), keepdims,
// noop_with_empty_axes, shape inference, and a linear-time strided accumulation.

import Kernels
import ONNXIR

/// What a reduce node was configured with.
struct ReductionAttributes {
    let label: NodeLabel
    /// The `axes` attribute (opsets where axes are not an input).
    let attributeAxes: [Int]?
    let axesFromInput: Bool
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    /// `inputAxesSince`: the opset from which axes are input 1 (13 for ReduceSum, 18 otherwise),
    /// which is also when `noop_with_empty_axes` appeared.
    init(_ node: Node, opset: Int64, inputAxesSince: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        axesFromInput = opset >= inputAxesSince
        attributeAxes = axesFromInput ? nil : try reader.ints("axes")
        let keep = try reader.int("keepdims", default: 1)
        guard keep == 0 || keep == 1 else { throw reader.fail("keepdims", "must be 0 or 1, got \(keep)") }
        keepDims = keep == 1
        let noop = axesFromInput ? try reader.int("noop_with_empty_axes", default: 0) : 0
        guard noop == 0 || noop == 1 else { throw reader.fail("noop_with_empty_axes", "must be 0 or 1, got \(noop)") }
        noopWithEmptyAxes = noop == 1
        try reader.finish()
    }

    /// The reduced axes for rank `rank`; `nil` means "no reduction" (noop with empty axes).
    func axes(_ axesInput: Tensor?, rank: Int) throws -> [Int]? {
        let list = try axesFromInput ? axesInput.map { try label.intList($0, "axes") } : attributeAxes
        if list?.isEmpty ?? true { return noopWithEmptyAxes ? nil : Array(0..<rank) }
        return try label.axes(list!, rank: rank).sorted()
    }

    /// Output dims for input dims and the reduced axes.
    func outputDims<D>(_ dims: [D], axes: [Int]?, one: D) -> [D] {
        guard let axes else { return dims }
        let set = Set(axes)
        var out: [D] = []
        for (i, d) in dims.enumerated() {
            if !set.contains(i) { out.append(d) } else if keepDims { out.append(one) }
        }
        return out
    }

    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        guard let dims = x.dims else { return [ValueShape(dtype: x.dtype, dims: nil)] }
        var axesInput: Tensor? = nil
        if axesFromInput, inputs.count > 1, let a = inputs[1] {
            guard let c = a.constant else {
                // Unknown axes: with keepdims the rank is kept, otherwise nothing is known.
                return [ValueShape(dtype: x.dtype, dims: keepDims ? unknownDims(rank: dims.count) : nil)]
            }
            axesInput = c
        }
        let axes = try self.axes(axesInput, rank: dims.count)
        return [ValueShape(dtype: x.dtype, dims: outputDims(dims, axes: axes, one: 1))]
    }

    /// x, the reduced axes (nil = identity), the output shape with kept dims, the final shape,
    /// and x's strides into the output (0 on reduced axes).
    func plan(_ inputs: [Tensor?]) throws -> (x: Tensor, axes: [Int]?, kept: [Int], out: [Int], strides: [Int]) {
        try label.checkCount(inputs, 1...(axesFromInput ? 2 : 1))
        let x = try label.required(inputs, 0)
        let axes = try self.axes(axesFromInput ? label.optional(inputs, 1) : nil, rank: x.rank)
        var kept = x.shape
        for a in axes ?? [] { kept[a] = 1 }
        return (x, axes, kept, outputDims(x.shape, axes: axes, one: 1), Broadcast.strides(of: kept, in: x.shape))
    }
}

enum Reduction {
    /// out[o] = combine over every x element that reduces into o; `initial` seeds each output.
    /// Each output combines its elements in x's row-major order, whatever the path: after
    /// collapsing dims, a run along x's innermost dim either folds into one output (a reduced
    /// innermost dim, e.g. a mean over H, W) or updates a contiguous run of outputs (a kept
    /// innermost dim, e.g. a max over C), both plain loops. When no outer dim is reduced, the
    /// runs go to distinct outputs and are split over `threads`.
    @inline(__always)
    static func accumulate<F: ElementFormula>(_ x: [F.Element], shape: [Int], strides: [Int], outCount: Int, initial: F.Element,
                                              threads: Int, _ combine: F) -> [F.Element] {
        typealias T = F.Element
        var out = [T](repeating: initial, count: outCount)
        let n = x.count
        guard n > 0 else { return out }
        let (dims, so, _) = Broadcast.collapsed(shape, strides, Tensor.strides(shape))
        let rank = dims.count, inner = dims[rank - 1], io = so[rank - 1]
        out.withUnsafeMutableBufferPointer { po in
            x.withUnsafeBufferPointer { px in
                if inner < 16 {
                    Broadcast.forEach(shape, strides, strides) { i, o, _ in po[o] = combine(po[o], px[i]) }
                    return
                }
                let rows = n / inner
                let independent = so[0..<(rank - 1)].allSatisfy { $0 != 0 }
                let workers = independent && n >= BinaryElementwise.parallelElements ? max(1, min(threads, rows)) : 1
                let o0 = po.baseAddress!, x0 = px.baseAddress!
                parallelFor(workers, threads: workers) { w in
                    for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                        var rest = r, oo = 0
                        for d in stride(from: rank - 2, through: 0, by: -1) {
                            oo += (rest % dims[d]) * so[d]
                            rest /= dims[d]
                        }
                        let xr = x0 + r * inner, or = o0 + oo
                        switch io {
                        case 0: or[0] = combine.fold(or[0], xr, inner)
                        case 1: for k in 0..<inner { or[k] = combine(or[k], xr[k]) }
                        default: for k in 0..<inner { or[k * io] = combine(or[k * io], xr[k]) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The same with the combination as a closure, on one thread.
    @inline(__always)
    static func accumulate<T>(_ x: [T], shape: [Int], strides: [Int], outCount: Int, initial: T,
                              _ combine: (T, T) -> T) -> [T] {
        withoutActuallyEscaping(combine) {
            accumulate(x, shape: shape, strides: strides, outCount: outCount, initial: initial, threads: 1, ClosureFormula(f: $0))
        }
    }

    /// dx[i] = scale * dy[o(i)]: the gradient of a sum or mean, broadcast back over the input.
    static func broadcastBack(_ g: [Float], shape: [Int], strides: [Int], scale: Float) -> [Float] {
        let n = ShapeMath.elementCount(shape) ?? 0
        guard n > 0 else { return [] }
        return g.withUnsafeBufferPointer { pg in
            [Float](unsafeUninitializedCapacity: n) { out, count in
                Broadcast.forEach(shape, strides, strides) { i, o, _ in (out.baseAddress! + i).initialize(to: scale * pg[o]) }
                count = n
            }
        }
    }
}
