// Relu: y = max(x, 0), float or int64.

import Kernels
import ONNXIR

public struct Relu: Operator {
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
        let x = try label.required(inputs, 0)
        if x.dtype == .int64 { return ForwardResult([Tensor(shape: x.shape, ints: x.ints.map { max($0, 0) })]) }
        let n = x.count
        let y = [Float].filled(count: n) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!
                // Large tensors in contiguous static chunks, one per thread (same bits for any count).
                let workers = n >= BinaryElementwise.parallelElements ? max(1, context.threads) : 1
                parallelFor(workers, threads: workers) { w in
                    for i in (n * w / workers)..<(n * (w + 1) / workers) { yp[i] = max(xp[i], 0) }
                }
            }
        }
        // Backward reads only y (y > 0 exactly where x > 0), so the record lets x go.
        return ForwardResult([Tensor(shape: x.shape, floats: y)], backwardReads: .outputs)
    }

    // dx = dy where y > 0 (PyTorch's choice at x == 0: zero gradient).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true, let y = record.outputs.first, y.dtype == .float32 else { return [nil] }
        let g = gradient(gradOutputs, 0, shape: y.shape)
        let n = y.count
        let dx = [Float].filled(count: n) { dxp in
            y.floats.withUnsafeBufferPointer { yb in
                g.withUnsafeBufferPointer { gb in
                    let yp = yb.baseAddress!, gp = gb.baseAddress!
                    let workers = n >= BinaryElementwise.parallelElements ? max(1, context.threads) : 1
                    parallelFor(workers, threads: workers) { w in
                        let end = n * (w + 1) / workers
                        var i = n * w / workers
                        // Eight lanes at a time as a select, without a branch per element (the sign
                        // of y is data, so a branch mispredicts half the time); +0 where y <= 0.
                        while i + 8 <= end {
                            let y = UnsafeRawPointer(yp + i).loadUnaligned(as: SIMD8<Float>.self)
                            let g = UnsafeRawPointer(gp + i).loadUnaligned(as: SIMD8<Float>.self)
                            let dx = SIMD8<Float>(repeating: 0).replacing(with: g, where: y .> 0)
                            UnsafeMutableRawPointer(dxp + i).storeBytes(of: dx, as: SIMD8<Float>.self)
                            i += 8
                        }
                        while i < end {
                            dxp[i] = yp[i] > 0 ? gp[i] : 0
                            i += 1
                        }
                    }
                }
            }
        }
        return [Tensor(shape: y.shape, floats: dx)]
    }
}
