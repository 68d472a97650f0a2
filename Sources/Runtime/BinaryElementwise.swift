// The shared body of Add, Sub, Mul and Div: input checks, broadcasting, shape inference.

import ONNXIR

/// Helpers for the four broadcasting arithmetic operators, which differ only in their
/// element formula and its derivative (kept in each operator's own file).
enum BinaryElementwise {
    /// Output type and (broadcast) shape; int64 constants are folded so that index arithmetic
    /// exported by PyTorch (Shape -> Gather -> Div -> Concat -> Reshape) stays constant.
    static func inferShapes<Op: Operator>(_ op: Op, _ inputs: [ValueShape?], _ label: NodeLabel) throws -> [ValueShape] {
        guard inputs.count == 2, let a = inputs[0], let b = inputs[1] else { throw label.error("expected 2 inputs") }
        guard a.dtype == b.dtype else { throw label.error("input types differ: \(a.dtype) and \(b.dtype)") }
        if a.dtype == .int64, let folded = try op.foldConstants(inputs) { return folded }
        guard let da = a.dims, let db = b.dims else { return [ValueShape(dtype: a.dtype, dims: nil)] }
        guard let dims = Broadcast.shape(da, db) else {
            throw label.error("shapes \(da.map { $0.map(String.init) ?? "?" }) and \(db.map { $0.map(String.init) ?? "?" }) cannot be broadcast")
        }
        return [ValueShape(dtype: a.dtype, dims: dims)]
    }

    /// Both inputs, checked to share an element type, and their broadcast shape.
    static func operands(_ inputs: [Tensor?], _ label: NodeLabel) throws -> (Tensor, Tensor, [Int]) {
        try label.checkCount(inputs, 2...2)
        let a = try label.required(inputs, 0), b = try label.required(inputs, 1)
        guard a.dtype == b.dtype else { throw label.error("input types differ: \(a.dtype) and \(b.dtype)") }
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            throw label.error("shapes \(a.shape) and \(b.shape) cannot be broadcast")
        }
        return (a, b, shape)
    }

    /// out[o] = f(a[ia], b[ib]) over the broadcast shape.
    @inline(__always)
    static func apply<T>(_ a: [T], _ aShape: [Int], _ b: [T], _ bShape: [Int], _ shape: [Int],
                         _ f: (T, T) -> T) -> [T] {
        let n = ShapeMath.elementCount(shape) ?? 0
        if aShape == bShape {
            // Same shapes: a plain zip, the common case (residual adds).
            return (0..<n).map { f(a[$0], b[$0]) }
        }
        let sa = Broadcast.strides(of: aShape, in: shape), sb = Broadcast.strides(of: bShape, in: shape)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                [T](unsafeUninitializedCapacity: n) { out, count in
                    Broadcast.forEach(shape, sa, sb) { o, i, j in (out.baseAddress! + o).initialize(to: f(pa[i], pb[j])) }
                    count = n
                }
            }
        }
    }

    /// The gradients of a broadcasting binary op: `dA[ia] += fa(g, a, b)`, `dB[ib] += fb(g, a, b)`,
    /// summed over every output element — the reduction to each input's shape in one pass.
    static func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ label: NodeLabel,
                         _ fa: (Float, Float, Float) -> Float,
                         _ fb: (Float, Float, Float) -> Float) throws -> [Tensor?] {
        let wantA = needsGradient.count > 0 && needsGradient[0]
        let wantB = needsGradient.count > 1 && needsGradient[1]
        guard wantA || wantB else { return [nil, nil] }
        let a = try recorded(record, 0, label), b = try recorded(record, 1, label)
        guard a.dtype == .float32 else { return [nil, nil] }
        guard let shape = Broadcast.shape(a.shape, b.shape) else { throw label.error("shapes \(a.shape) and \(b.shape) cannot be broadcast") }
        let g = gradient(gradOutputs, 0, shape: shape)
        var da = [Float](repeating: 0, count: wantA ? a.count : 0)
        var db = [Float](repeating: 0, count: wantB ? b.count : 0)
        let sa = Broadcast.strides(of: a.shape, in: shape), sb = Broadcast.strides(of: b.shape, in: shape)
        a.floats.withUnsafeBufferPointer { pa in
            b.floats.withUnsafeBufferPointer { pb in
                g.withUnsafeBufferPointer { pg in
                    da.withUnsafeMutableBufferPointer { pda in
                        db.withUnsafeMutableBufferPointer { pdb in
                            Broadcast.forEach(shape, sa, sb) { o, i, j in
                                if wantA { pda[i] += fa(pg[o], pa[i], pb[j]) }
                                if wantB { pdb[j] += fb(pg[o], pa[i], pb[j]) }
                            }
                        }
                    }
                }
            }
        }
        return [wantA ? Tensor(shape: a.shape, floats: da) : nil,
                wantB ? Tensor(shape: b.shape, floats: db) : nil]
    }
}
