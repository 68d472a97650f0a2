// Slice: a strided window per axis (attributes before opset 10, inputs from 10), with negative
// indices, negative steps and ONNX's clamping; backward scatters dy into zeros.

import ONNXIR

public struct Slice: Operator {
    let label: NodeLabel
    /// Opset < 10: starts, ends, axes from the attributes (steps are all 1).
    let attributeParameters: (starts: [Int], ends: [Int], axes: [Int]?)?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        if opset < 10 {
            guard let starts = try reader.ints("starts") else { throw reader.fail("starts", "required attribute is missing") }
            guard let ends = try reader.ints("ends") else { throw reader.fail("ends", "required attribute is missing") }
            attributeParameters = (starts, ends, try reader.ints("axes"))
        } else {
            attributeParameters = nil
        }
        try reader.finish()
    }

    /// Where a slice reads: `base` offset and per-dim strides into x, and the output shape.
    struct Window: Equatable {
        var base: Int
        var strides: [Int]
        var shape: [Int]
    }

    /// The window for x of `shape` (unknown dims allowed only on axes not sliced; the
    /// returned shape then holds -1 there and `base`/`strides` are meaningless).
    func window(shape: [Int], starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?) throws -> Window {
        let rank = shape.count
        guard starts.count == ends.count else { throw label.error("starts has \(starts.count) values, ends has \(ends.count)") }
        let axes = try label.axes(axes ?? Array(0..<starts.count), rank: rank)
        guard axes.count == starts.count else { throw label.error("axes has \(axes.count) values, starts has \(starts.count)") }
        let steps = steps ?? [Int](repeating: 1, count: starts.count)
        guard steps.count == starts.count else { throw label.error("steps has \(steps.count) values, starts has \(starts.count)") }
        let xStrides = Tensor.strides(shape)
        var window = Window(base: 0, strides: xStrides, shape: shape)
        for (k, a) in axes.enumerated() {
            let dim = shape[a], step = steps[k]
            guard step != 0 else { throw label.error("step for axis \(a) is 0") }
            guard dim >= 0 else { throw label.error("axis \(a) is sliced but its length is unknown") }
            // Negative indices count from the end; then clamp into the range the step can reach.
            var start = starts[k] < 0 ? starts[k] &+ dim : starts[k]
            var end = ends[k] < 0 ? ends[k] &+ dim : ends[k]
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
            } else {
                start = min(max(start, 0), dim - 1)
                end = min(max(end, -1), dim - 1)
            }
            let count = step > 0 ? max(0, (end - start + step - 1) / step) : max(0, (start - end + (-step) - 1) / (-step))
            window.shape[a] = count
            if count > 0 { window.base += start * xStrides[a] }
            window.strides[a] = xStrides[a] * step
        }
        return window
    }

    /// The slice parameters from the attributes or from inputs 1-4.
    private func parameters(_ inputs: [Tensor?]) throws -> (starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?) {
        if let p = attributeParameters { return (p.starts, p.ends, p.axes, nil) }
        return (try label.intList(label.required(inputs, 1), "starts"), try label.intList(label.required(inputs, 2), "ends"),
                try label.optional(inputs, 3).map { try label.intList($0, "axes") },
                try label.optional(inputs, 4).map { try label.intList($0, "steps") })
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        if let folded = try foldConstants(inputs) { return folded }
        guard let dims = x.dims else { return [ValueShape(dtype: x.dtype, dims: nil)] }
        var constants: [Tensor?] = [nil]
        for i in 1..<max(1, inputs.count) {
            guard let v = inputs[i] else { constants.append(nil); continue }
            guard let c = v.constant else { return [ValueShape(dtype: x.dtype, dims: unknownDims(rank: dims.count))] }
            constants.append(c)
        }
        let p = try parameters(constants)
        let axes = try label.axes(p.axes ?? Array(0..<p.starts.count), rank: dims.count)
        // Unknown dims that are not sliced pass through; a sliced unknown dim stays unknown.
        guard axes.allSatisfy({ dims[$0] != nil }) else {
            var out = dims
            for a in axes { out[a] = nil }
            return [ValueShape(dtype: x.dtype, dims: out)]
        }
        let w = try window(shape: dims.map { $0 ?? -1 }, starts: p.starts, ends: p.ends, axes: p.axes, steps: p.steps)
        return [ValueShape(dtype: x.dtype, dims: zip(dims, w.shape).map { $0 == nil ? nil : $1 })]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, attributeParameters == nil ? 3...5 : 1...1)
        let x = try label.required(inputs, 0)
        let p = try parameters(inputs)
        let w = try window(shape: x.shape, starts: p.starts, ends: p.ends, axes: p.axes, steps: p.steps)
        if let runs = contiguousRuns(w) {
            let y = x.dtype == .float32 ? Tensor(shape: w.shape, floats: copyRuns(x.floats, w.base, runs))
                                        : Tensor(shape: w.shape, ints: copyRuns(x.ints, w.base, runs))
            return ForwardResult([y], saved: w)
        }
        return ForwardResult([x.strided(base: w.base, strides: w.strides, shape: w.shape)], saved: w)
    }

    /// A window whose innermost dim is read with step 1, as runs of contiguous elements:
    /// trailing dims merged while they are taken whole (so slicing [N, C, H, W] along H reads
    /// runs of whole rows), the outer dims left to walk. `nil` when the innermost step is not 1.
    func contiguousRuns(_ w: Window) -> (outer: [Int], strides: [Int], run: Int)? {
        guard let last = w.shape.indices.last, w.strides[last] == 1 || w.shape[last] == 1 else { return nil }
        var run = w.shape[last], d = last - 1
        // Dim d joins the run when its step in x is exactly the run's length (or it has one element).
        while d >= 0, w.strides[d] == run || w.shape[d] == 1 {
            run *= w.shape[d]
            d -= 1
        }
        return (Array(w.shape[0..<(d + 1)]), Array(w.strides[0..<(d + 1)]), run)
    }

    /// Copies each run (`runs.run` elements from `base` plus the outer dims' offsets) into a
    /// new array, in output order: one block copy per run instead of one step per element.
    func copyRuns<T>(_ x: [T], _ base: Int, _ runs: (outer: [Int], strides: [Int], run: Int)) -> [T] {
        let rows = runs.outer.reduce(1, *), n = rows * runs.run
        guard n > 0 else { return [] }
        return x.withUnsafeBufferPointer { px in
            [T](unsafeUninitializedCapacity: n) { out, count in
                let rank = runs.outer.count
                var index = [Int](repeating: 0, count: rank)
                var offset = base
                for r in 0..<rows {
                    (out.baseAddress! + r * runs.run).initialize(from: px.baseAddress! + offset, count: runs.run)
                    // Odometer over the outer dims, carrying the offset incrementally.
                    var k = rank - 1
                    while k >= 0 {
                        index[k] += 1
                        offset += runs.strides[k]
                        if index[k] < runs.outer[k] { break }
                        offset -= runs.strides[k] * runs.outer[k]
                        index[k] = 0
                        k -= 1
                    }
                }
                count = n
            }
        }
    }

    // dx = zeros with dy written back where forward read (windows never overlap themselves).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return result }
        let w: Window
        if let saved = record.saved as? Window { w = saved } else {
            let p = try parameters(record.inputs)
            w = try window(shape: x.shape, starts: p.starts, ends: p.ends, axes: p.axes, steps: p.steps)
        }
        let g = gradient(gradOutputs, 0, shape: w.shape)
        result[0] = Tensor(shape: x.shape, floats: stridedScatterAdd(g, count: x.count, base: w.base, strides: w.strides, shape: w.shape))
        return result
    }
}
