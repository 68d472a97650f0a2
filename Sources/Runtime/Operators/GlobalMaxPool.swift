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
                        let at = Self.firstMaximum(xb.baseAddress! + p * size, count: size)
                        yp[p] = xb[p * size + at]
                        ab[p] = Int32(at)
                    }
                }
            }
        }
        return ForwardResult([Tensor(shape: Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2), floats: y)], saved: argmax,
                             backwardReads: .shapes)
    }

    /// The index of a plane's first NaN if it has one, else of its first maximum: what
    /// `for i in 1..<count where v[i] > best || (v[i].isNaN && !best.isNaN)` finds (+0 and -0
    /// equal, so the first of them). The maximum and whether there is a NaN come from a vector
    /// pass (CBAM's 49-value planes: one scalar compare-and-branch per value took most of the
    /// operator's time), then a scan for the first value equal to it. count >= 1.
    static func firstMaximum(_ v: UnsafePointer<Float>, count: Int) -> Int {
        var top = SIMD8<Float>(repeating: -.infinity), nan = SIMDMask<SIMD8<Int32>>(repeating: false)
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(v + i).loadUnaligned(as: SIMD8<Float>.self)
            nan .|= x .!= x
            top.replace(with: x, where: x .> top)
            i += 8
        }
        var best = top.max(), hasNaN = any(nan)
        while i < count {
            if v[i].isNaN { hasNaN = true } else if v[i] > best { best = v[i] }
            i += 1
        }
        var at = 0
        if hasNaN {
            while !v[at].isNaN { at += 1 }
        } else {
            while !(v[at] == best) { at += 1 }
        }
        return at
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
