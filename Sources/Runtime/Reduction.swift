// The shared body of ReduceMean, ReduceMax and ReduceSum: axes (attribute or input), keepdims,
// noop_with_empty_axes, shape inference, and a linear-time strided accumulation.

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
    @inline(__always)
    static func accumulate<T>(_ x: [T], shape: [Int], strides: [Int], outCount: Int, initial: T,
                              _ combine: (T, T) -> T) -> [T] {
        var out = [T](repeating: initial, count: outCount)
        out.withUnsafeMutableBufferPointer { po in
            x.withUnsafeBufferPointer { px in
                Broadcast.forEach(shape, strides, strides) { i, o, _ in po[o] = combine(po[o], px[i]) }
            }
        }
        return out
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
