// GlobalAveragePool: the mean of each [N, C] plane over all spatial dims, and its backward.

import Kernels
import ONNXIR

public struct GlobalAveragePool: Operator {
    let label: NodeLabel

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        try AttributeReader(node).finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let first = inputs.first, let x = first else { throw label.error("input X is required") }
        guard let xd = x.dims else { return [ValueShape(dtype: .float32, dims: nil)] }
        guard xd.count >= 2 else { throw label.error("X must have rank >= 2") }
        return [ValueShape(dtype: .float32, dims: [xd[0], xd[1]] + [Int?](repeating: 1, count: xd.count - 2))]
    }

    // x: [N, C, spatial...] -> y: [N, C, 1, ...]; summed in Double so large planes keep precision.
    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        guard x.rank >= 2 else { throw label.error("X must have rank >= 2 ([N, C, ...]), got shape \(x.shape)") }
        let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
        // CBAM's pools at batch 1 (512 x 49 values) cost less than a fork and join.
        let threads = planes * size >= BinaryElementwise.parallelElements ? context.threads : 1
        let y = [Float].filled(count: planes) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                parallelFor(planes, threads: threads) { p in
                    let plane = xb.baseAddress! + p * size
                    var s: Double = 0
                    for i in 0..<size { s += Double(plane[i]) }
                    yp[p] = size > 0 ? Float(s / Double(size)) : .nan
                }
            }
        }
        return ForwardResult([Tensor(shape: Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2), floats: y)],
                             backwardReads: .shapes)
    }

    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        guard let xShape = record.inputShapes.first ?? nil else { throw label.error("backward needs the shape of X") }
        let planes = xShape[0] * xShape[1], size = xShape.dropFirst(2).reduce(1, *)
        let dy = gradient(gradOutputs, 0, shape: Array(xShape[0..<2]) + [Int](repeating: 1, count: xShape.count - 2))
        let dx = [Float].filled(count: planes * size) { dxp in
            parallelFor(planes, threads: context.threads) { p in
                let share = dy[p] / Float(size)
                (dxp + p * size).update(repeating: share, count: size)
            }
        }
        return [Tensor(shape: xShape, floats: dx)]
    }
}
