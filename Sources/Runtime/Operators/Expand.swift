// Expand: broadcasts the input against a target shape (either side may be 1);
// backward sums dy back over the broadcast dims.

import ONNXIR

public struct Expand: Operator {
    let label: NodeLabel

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        try AttributeReader(node).finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count == 2, let x = inputs[0], let shape = inputs[1] else { throw label.error("expected 2 inputs") }
        if let folded = try foldConstants(inputs) { return folded }
        guard let c = shape.constant, let dims = x.dims else { return [ValueShape(dtype: x.dtype, dims: nil)] }
        let target = try label.intList(c, "shape")
        guard let out = Broadcast.shape(dims, target.map { Optional($0) }) else {
            throw label.error("input shape cannot be broadcast to \(target)")
        }
        if out.allSatisfy({ $0 != nil }) { _ = try label.allocatableCount(out.map { $0! }) }
        return [ValueShape(dtype: x.dtype, dims: out)]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...2)
        let x = try label.required(inputs, 0)
        let target = try label.intList(label.required(inputs, 1), "shape")
        guard target.allSatisfy({ $0 >= 0 }), let out = Broadcast.shape(x.shape, target) else {
            throw label.error("shape \(x.shape) cannot be broadcast to \(target)")
        }
        _ = try label.allocatableCount(out, bytesPerElement: x.dtype == .float32 ? 4 : 8)
        if x.dtype == .float32 { return ForwardResult([Tensor(shape: out, floats: Broadcast.expand(x.floats, from: x.shape, to: out))]) }
        return ForwardResult([Tensor(shape: out, ints: Broadcast.expand(x.ints, from: x.shape, to: out))])
    }

    // dx = dy summed over every dim Expand broadcast along.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true, let y = record.outputs.first else { return [nil, nil] }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return [nil, nil] }
        return [Tensor(shape: x.shape, floats: Broadcast.reduce(gradient(gradOutputs, 0, shape: y.shape), from: y.shape, to: x.shape)), nil]
    }
}
