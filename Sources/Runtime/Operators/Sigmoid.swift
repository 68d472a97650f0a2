// Sigmoid: y = 1 / (1 + exp(-x)); CBAM's channel and spatial gates.

import Foundation
import ONNXIR

public struct Sigmoid: Operator {
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
        // Both branches avoid exp overflow: exp is only taken of a non-positive number.
        let y = x.floats.map { v -> Float in
            if v >= 0 { return 1 / (1 + expf(-v)) }
            let e = expf(v)
            return e / (1 + e)
        }
        return ForwardResult([Tensor(shape: x.shape, floats: y)], backwardReads: .outputs)
    }

    // dx = dy * y * (1 - y)
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true, let y = record.outputs.first else { return [nil] }
        let g = gradient(gradOutputs, 0, shape: y.shape)
        var dx = [Float](repeating: 0, count: y.count)
        for i in 0..<dx.count { dx[i] = g[i] * y.floats[i] * (1 - y.floats[i]) }
        return [Tensor(shape: y.shape, floats: dx)]
    }
}
