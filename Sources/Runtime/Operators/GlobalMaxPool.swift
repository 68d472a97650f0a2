// GlobalMaxPool: the maximum of each [N, C] plane; the gradient goes to the first maximum.

import Kernels
import ONNXIR

public struct GlobalMaxPool: Operator {
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

    // x: [N, C, spatial...] -> y: [N, C, 1, ...]; saved: the plane offset of each maximum.
    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        guard x.rank >= 2 else { throw label.error("X must have rank >= 2 ([N, C, ...]), got shape \(x.shape)") }
        let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
        // CBAM's pools at batch 1 (512 x 49 values) cost less than a fork and join.
        let threads = planes * size >= BinaryElementwise.parallelElements ? context.threads : 1
        guard size > 0 else { throw label.error("the maximum of an empty plane is undefined (X shape \(x.shape))") }
        var argmax = [Int32](repeating: 0, count: planes)
        let y = [Float].filled(count: planes) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                argmax.withUnsafeMutableBufferPointer { ab in
                    parallelFor(planes, threads: threads) { p in
                        let plane = xb.baseAddress! + p * size
                        var best = plane[0], at = 0
                        for i in 1..<max(1, size) where plane[i] > best || (plane[i].isNaN && !best.isNaN) {
                            best = plane[i]; at = i
                        }
                        yp[p] = best
                        ab[p] = Int32(at)
                    }
                }
            }
        }
        return ForwardResult([Tensor(shape: Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2), floats: y)], saved: argmax,
                             backwardReads: .shapes)
    }

    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        guard let argmax = record.saved as? [Int32] else { throw label.error("backward needs the forward's argmax") }
        guard let xShape = record.inputShapes.first ?? nil else { throw label.error("backward needs the shape of X") }
        let size = xShape.dropFirst(2).reduce(1, *)
        let dy = gradient(gradOutputs, 0, shape: Array(xShape[0..<2]) + [Int](repeating: 1, count: xShape.count - 2))
        var dx = [Float](repeating: 0, count: xShape.reduce(1, *))
        for p in 0..<argmax.count { dx[p * size + Int(argmax[p])] += dy[p] }
        return [Tensor(shape: xShape, floats: dx)]
    }
}
