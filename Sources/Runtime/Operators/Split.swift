// Split: cuts a tensor along one axis (sizes from the attribute < 13, the input >= 13, or
// `num_outputs` >= 18); backward concatenates the outputs' gradients.

import ONNXIR

public struct Split: Operator {
    let label: NodeLabel
    let opset: Int64
    let axis: Int
    let outputCount: Int
    /// Opset < 13: sizes from the `split` attribute (nil = equal parts).
    let attributeSizes: [Int]?
    /// Opset >= 18: `num_outputs`, where the last part may be smaller.
    let numOutputs: Int?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        self.opset = opset
        outputCount = node.outputs.count
        var reader = AttributeReader(node)
        axis = try reader.int("axis", default: 0)
        attributeSizes = opset < 13 ? try reader.ints("split") : nil
        numOutputs = opset >= 18 ? try reader.int("num_outputs") : nil
        if let n = numOutputs, n != outputCount {
            throw reader.fail("num_outputs", "is \(n) but the node has \(outputCount) outputs")
        }
        if let s = attributeSizes, s.count != outputCount {
            throw reader.fail("split", "has \(s.count) sizes but the node has \(outputCount) outputs")
        }
        if opset >= 18, numOutputs != nil, node.inputs.count > 1, !node.inputs[1].isEmpty {
            throw reader.fail("num_outputs", "must not be given together with the 'split' input")
        }
        try reader.finish()
    }

    /// The part sizes along the axis of length `dim`.
    private func sizes(dim: Int, splitInput: Tensor?) throws -> [Int] {
        var sizes: [Int]
        if let t = splitInput {
            sizes = try label.intList(t, "split")
        } else if let s = attributeSizes {
            sizes = s
        } else if let n = numOutputs {
            guard n > 0 else { throw label.attributeError("num_outputs", "must be positive, got \(n)") }
            let chunk = (dim + n - 1) / n
            sizes = (0..<n).map { max(0, min(chunk, dim - $0 * chunk)) }
        } else {
            guard outputCount > 0, dim % outputCount == 0 else {
                throw label.error("axis length \(dim) does not split evenly into \(outputCount) outputs")
            }
            sizes = [Int](repeating: dim / outputCount, count: outputCount)
        }
        guard sizes.count == outputCount else { throw label.error("split has \(sizes.count) sizes but the node has \(outputCount) outputs") }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == dim else {
            throw label.error("split sizes \(sizes) do not add up to the axis length \(dim)")
        }
        return sizes
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        if let folded = try foldConstants(inputs) { return folded }
        guard let dims = x.dims else { return (0..<outputCount).map { _ in ValueShape(dtype: x.dtype, dims: nil) } }
        let a = try label.axis(axis, rank: dims.count)
        let splitShape = inputs.count > 1 ? inputs[1] : nil
        var parts: [Int]? = nil
        if let d = dims[a] {
            if let s = splitShape {
                if let c = s.constant { parts = try sizes(dim: d, splitInput: c) }
            } else {
                parts = try sizes(dim: d, splitInput: nil)
            }
        }
        return (0..<outputCount).map { i in
            var out = dims
            out[a] = parts?[i]
            return ValueShape(dtype: x.dtype, dims: out)
        }
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...(opset >= 13 ? 2 : 1))
        let x = try label.required(inputs, 0)
        let a = try label.axis(axis, rank: x.rank)
        let parts = try sizes(dim: x.shape[a], splitInput: label.optional(inputs, 1))
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        let total = x.shape[a] * inner
        var outputs: [Tensor] = []
        var start = 0
        for p in parts {
            var shape = x.shape
            shape[a] = p
            let rows = p * inner
            // x: [outer, total]; part: columns start..<start+rows of every outer row.
            if x.dtype == .float32 {
                var values: [Float] = []
                values.reserveCapacity(outer * rows)
                for o in 0..<outer { values.append(contentsOf: x.floats[(o * total + start)..<(o * total + start + rows)]) }
                outputs.append(Tensor(shape: shape, floats: values))
            } else {
                var values: [Int64] = []
                values.reserveCapacity(outer * rows)
                for o in 0..<outer { values.append(contentsOf: x.ints[(o * total + start)..<(o * total + start + rows)]) }
                outputs.append(Tensor(shape: shape, ints: values))
            }
            start += rows
        }
        return ForwardResult(outputs)
    }

    // dx = the outputs' gradients joined along the axis (zeros for outputs without one).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return result }
        let a = try label.axis(axis, rank: x.rank)
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        let grads = record.outputs.enumerated().map { gradient(gradOutputs, $0.offset, shape: $0.element.shape) }
        let rows = record.outputs.map { $0.shape[a] * inner }
        var dx: [Float] = []
        dx.reserveCapacity(x.count)
        for o in 0..<outer {
            for (g, r) in zip(grads, rows) { dx.append(contentsOf: g[(o * r)..<((o + 1) * r)]) }
        }
        result[0] = Tensor(shape: x.shape, floats: dx)
        return result
    }
}
