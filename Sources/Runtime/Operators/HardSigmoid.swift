// HardSigmoid: y = max(0, min(1, alpha * x + beta)).

import ONNXIR

public struct HardSigmoid: Operator {
    let label: NodeLabel
    let alpha: Float
    let beta: Float

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        alpha = try reader.float("alpha", default: 0.2)
        beta = try reader.float("beta", default: 0.5)
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try sameAsInput0(inputs, label)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        let (a, b) = (alpha, beta)
        return ForwardResult([Tensor(shape: x.shape, floats: x.floats.map { max(0, min(1, a * $0 + b)) })])
    }

    // dx = alpha * dy inside the linear part, 0 where clamped (PyTorch: strict inequalities).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        let g = gradient(gradOutputs, 0, shape: x.shape)
        var dx = [Float](repeating: 0, count: x.count)
        for i in 0..<dx.count {
            let t = alpha * x.floats[i] + beta
            if t > 0 && t < 1 { dx[i] = alpha * g[i] }
        }
        return [Tensor(shape: x.shape, floats: dx)]
    }
}
