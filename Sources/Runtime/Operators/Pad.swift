// Pad: constant, reflect, edge (and wrap from opset 19) padding; negative pads crop. Pads are
// an attribute before opset 11 and an input from 11 (with optional axes from 18).

import ONNXIR

public struct Pad: Operator {
    enum Mode: String { case constant, reflect, edge, wrap }

    let label: NodeLabel
    let opset: Int64
    let mode: Mode
    /// Opset < 11: `pads` and `value` from the attributes.
    let attributePads: [Int]?
    let attributeValue: Float

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        self.opset = opset
        var reader = AttributeReader(node)
        let name = try reader.string("mode", default: "constant")
        guard let mode = Mode(rawValue: name), mode != .wrap || opset >= 19 else {
            throw reader.fail("mode", "unknown mode '\(name)'")
        }
        self.mode = mode
        if opset < 11 {
            guard let pads = try reader.ints("pads") else { throw reader.fail("pads", "required attribute is missing") }
            attributePads = pads
            attributeValue = try reader.float("value", default: 0)
        } else {
            attributePads = nil
            attributeValue = 0
        }
        try reader.finish()
    }

    /// Per-dim (begin, end) pads for rank `rank` from the pads list and optional axes.
    private func padsPerDim(_ pads: [Int], axes: [Int]?, rank: Int) throws -> [(Int, Int)] {
        let axes = try label.axes(axes ?? Array(0..<rank), rank: rank)
        guard pads.count == 2 * axes.count else {
            throw label.error("pads has \(pads.count) values; expected \(2 * axes.count) for \(axes.count) axes")
        }
        var result = [(Int, Int)](repeating: (0, 0), count: rank)
        for (k, a) in axes.enumerated() { result[a] = (pads[k], pads[k + axes.count]) }
        return result
    }

    private func parameters(_ inputs: [Tensor?], rank: Int) throws -> [(Int, Int)] {
        if let p = attributePads { return try padsPerDim(p, axes: nil, rank: rank) }
        let pads = try label.intList(label.required(inputs, 1), "pads")
        let axes = try label.optional(inputs, 3).map { try label.intList($0, "axes") }
        return try padsPerDim(pads, axes: axes, rank: rank)
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
        let pads = try parameters(constants, rank: dims.count)
        let out = try zip(dims, pads).map { d, p in try d.map { try label.sum($0, p.0, p.1) } }
        if out.allSatisfy({ $0 != nil }) { _ = try label.allocatableCount(out.map { $0! }) }
        return [ValueShape(dtype: x.dtype, dims: out)]
    }

    /// For each dim, the input coordinate each output coordinate reads (-1: the constant).
    private func sourceMaps(_ shape: [Int], _ pads: [(Int, Int)], bytesPerElement: Int) throws -> [[Int]] {
        let sizes = try zip(shape, pads).map { dim, p in try label.sum(dim, p.0, p.1) }
        if sizes.allSatisfy({ $0 >= 0 }) { _ = try label.allocatableCount(sizes, bytesPerElement: bytesPerElement) }
        return try zip(shape, pads).enumerated().map { axis, item in
            let (dim, (begin, _)) = item
            let size = sizes[axis]
            guard size >= 0 else { throw label.error("pads crop axis \(axis) of length \(dim) below zero") }
            if dim == 0 && size > 0 && mode != .constant {
                throw label.error("\(mode.rawValue) padding of the empty axis \(axis) is undefined")
            }
            return (0..<size).map { j in
                let s = j - begin
                if s >= 0 && s < dim { return s }
                switch mode {
                case .constant: return -1
                case .edge: return s < 0 ? 0 : dim - 1
                case .wrap: return ((s % dim) + dim) % dim
                case .reflect:
                    // Mirror without repeating the edge: period 2 * (dim - 1).
                    guard dim > 1 else { return 0 }
                    let period = 2 * (dim - 1)
                    var r = ((s % period) + period) % period
                    if r >= dim { r = period - r }
                    return r
                }
            }
        }
    }

    /// Calls body(outIndex, inputOffset or -1) over the padded output, row by row.
    private func forEachSource(_ shape: [Int], _ maps: [[Int]], _ body: (Int, Int) -> Void) {
        let outShape = maps.map(\.count)
        let rank = outShape.count
        guard let total = ShapeMath.elementCount(outShape), total > 0 else { return }
        if rank == 0 { body(0, 0); return }
        let strides = Tensor.strides(shape)
        let inner = maps[rank - 1]
        var counter = [Int](repeating: 0, count: rank)
        var out = 0
        while out < total {
            // Offset of the current row in x, or -1 if an outer coordinate is padding.
            var rowOffset = 0
            for d in 0..<(rank - 1) {
                let s = maps[d][counter[d]]
                if s < 0 { rowOffset = -1; break }
                rowOffset += s * strides[d]
            }
            for k in 0..<inner.count {
                body(out + k, rowOffset < 0 || inner[k] < 0 ? -1 : rowOffset + inner[k])
            }
            out += inner.count
            var d = rank - 2
            while d >= 0 {
                counter[d] += 1
                if counter[d] < outShape[d] { break }
                counter[d] = 0
                d -= 1
            }
        }
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...(opset >= 18 ? 4 : (opset >= 11 ? 3 : 1)))
        let x = try label.required(inputs, 0)
        let maps = try sourceMaps(x.shape, parameters(inputs, rank: x.rank), bytesPerElement: x.dtype == .float32 ? 4 : 8)
        let outShape = maps.map(\.count)
        let n = try label.count(outShape)
        let valueInput = attributePads == nil ? label.optional(inputs, 2) : nil
        if let v = valueInput, v.count != 1 || v.dtype != x.dtype {
            throw label.error("constant_value must be a scalar of the input's type")
        }
        if x.dtype == .int64 {
            let fill = valueInput?.ints[0] ?? 0
            var out = [Int64](repeating: fill, count: n)
            forEachSource(x.shape, maps) { o, s in if s >= 0 { out[o] = x.ints[s] } }
            return ForwardResult([Tensor(shape: outShape, ints: out)])
        }
        let fill = valueInput?.floats[0] ?? attributeValue
        var out = [Float](repeating: fill, count: n)
        x.floats.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                forEachSource(x.shape, maps) { o, s in if s >= 0 { po[o] = px[s] } }
            }
        }
        return ForwardResult([Tensor(shape: outShape, floats: out)])
    }

    // dx[s] = sum of dy over every output that read x[s] (edge and reflect read some twice);
    // the pads, value and axes inputs get no gradient.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return result }
        let maps = try sourceMaps(x.shape, parameters(record.inputs, rank: x.rank), bytesPerElement: 4)
        let g = gradient(gradOutputs, 0, shape: maps.map(\.count))
        var dx = [Float](repeating: 0, count: x.count)
        dx.withUnsafeMutableBufferPointer { pd in
            forEachSource(x.shape, maps) { o, s in if s >= 0 { pd[s] += g[o] } }
        }
        result[0] = Tensor(shape: x.shape, floats: dx)
        return result
    }
}
