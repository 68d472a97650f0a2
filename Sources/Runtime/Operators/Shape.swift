// Shape: the input's dims as a 1-D int64 tensor (start/end from opset 15).

import ONNXIR

public struct Shape: Operator {
    let label: NodeLabel
    let start: Int
    let end: Int?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        start = opset >= 15 ? try reader.int("start", default: 0) : 0
        end = opset >= 15 ? try reader.int("end") : nil
        try reader.finish()
    }

    /// start..<end after negative indices count from the back and both clamp to [0, rank].
    private func range(rank: Int) -> Range<Int> {
        func clamp(_ i: Int) -> Int { min(max(i < 0 ? i + rank : i, 0), rank) }
        let s = clamp(start), e = clamp(end ?? rank)
        return s..<max(s, e)
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        guard let dims = x.dims else { return [ValueShape(dtype: .int64, dims: [nil])] }
        let r = range(rank: dims.count)
        let part = Array(dims[r])
        // Known dims make the shape a constant, which is what lets Reshape targets built from
        // Shape -> Gather -> ... resolve at load.
        if part.allSatisfy({ $0 != nil }) {
            return [ValueShape(Tensor(shape: [part.count], ints: part.map { Int64($0!) }))]
        }
        return [ValueShape(dtype: .int64, dims: [part.count])]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.required(inputs, 0)
        let part = x.shape[range(rank: x.rank)]
        return ForwardResult([Tensor(shape: [part.count], ints: part.map { Int64($0) })])
    }
}
