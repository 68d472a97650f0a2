// Reshape: same elements, new shape (0 copies the input dim unless allowzero, -1 is inferred).

import ONNXIR

public struct Reshape: Operator {
    let label: NodeLabel
    let allowZero: Bool

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        let allowZero = opset >= 14 ? try reader.int("allowzero", default: 0) : 0
        guard allowZero == 0 || allowZero == 1 else { throw reader.fail("allowzero", "must be 0 or 1, got \(allowZero)") }
        self.allowZero = allowZero == 1
        try reader.finish()
    }

    /// The output shape for `input` (unknown dims as nil) and the requested `target`.
    func outputDims(_ input: [Int?], _ target: [Int]) throws -> [Int?] {
        var out: [Int?] = []
        var inferred: Int? = nil
        for (i, t) in target.enumerated() {
            switch t {
            case 0 where !allowZero:
                guard i < input.count else { throw label.error("shape entry \(i) is 0 but the input has rank \(input.count)") }
                out.append(input[i])
            case -1:
                guard inferred == nil else { throw label.error("shape \(target) has more than one -1") }
                if allowZero && target.contains(0) { throw label.error("shape \(target) has both -1 and 0 with allowzero") }
                inferred = i
                out.append(nil)
            default:
                guard t >= 0 else { throw label.error("shape \(target) has invalid entry \(t)") }
                out.append(t)
            }
        }
        let known = out.enumerated().filter { $0.offset != inferred }.map(\.element)
        let total: Int? = input.contains(where: { $0 == nil }) ? nil : try label.count(input.map { $0! })
        if let inferred {
            // -1 takes whatever is left; unknown while any dim it depends on is unknown.
            if let total, known.allSatisfy({ $0 != nil }) {
                let rest = try label.count(known.map { $0! })
                guard rest > 0, total % rest == 0 else { throw label.error("cannot reshape \(input.map { $0 ?? -1 }) to \(target)") }
                out[inferred] = total / rest
            }
        } else if let total, out.allSatisfy({ $0 != nil }), try label.count(out.map { $0! }) != total {
            throw label.error("cannot reshape \(input.map { $0 ?? -1 }) (\(total) elements) to \(target)")
        }
        return out
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count == 2, let x = inputs[0], let shape = inputs[1] else { throw label.error("expected 2 inputs") }
        if let folded = try foldConstants(inputs) { return folded }
        if let c = shape.constant {
            guard let dims = x.dims else {
                // Without the input's rank, only entries that are neither 0 nor -1 are known.
                return [ValueShape(dtype: x.dtype, dims: try label.intList(c, "shape").map { $0 > 0 || ($0 == 0 && allowZero) ? $0 : nil })]
            }
            return [ValueShape(dtype: x.dtype, dims: try outputDims(dims, label.intList(c, "shape")))]
        }
        let rank = shape.dims.flatMap { $0.count == 1 ? $0[0] : nil }
        return [ValueShape(dtype: x.dtype, dims: unknownDims(rank: rank))]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...2)
        let x = try label.required(inputs, 0)
        let dims = try outputDims(x.shape, label.intList(label.required(inputs, 1), "shape"))
        return ForwardResult([x.reshaped(dims.map { $0! })])
    }

    // dx = dy seen with x's shape.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil, nil] }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return [nil, nil] }
        return [Tensor(shape: x.shape, floats: gradient(gradOutputs, 0, shape: x.shape)), nil]
    }
}
