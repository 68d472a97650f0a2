// HardSwish: y = x * max(0, min(1, x / 6 + 1/2)) (MobileNetV3).

import ONNXIR

public struct HardSwish: Operator {
    let label: NodeLabel

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        try AttributeReader(node).finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try sameAsInput0(inputs, label)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        // ONNX defines alpha = 1/6; PyTorch computes x * relu6(x + 3) / 6, equal in exact math.
        return ForwardResult([Tensor(shape: x.shape, floats: x.floats.map { $0 * max(0, min(1, $0 / 6 + 0.5)) })])
    }

    // PyTorch's hardswish_backward: 0 for x < -3, dy * (x / 3 + 1/2) for -3 <= x <= 3, dy above.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        let g = gradient(gradOutputs, 0, shape: x.shape)
        var dx = [Float](repeating: 0, count: x.count)
        for i in 0..<dx.count {
            let v = x.floats[i]
            dx[i] = v < -3 ? 0 : (v <= 3 ? g[i] * (v / 3 + 0.5) : g[i])
        }
        return [Tensor(shape: x.shape, floats: dx)]
    }
}
