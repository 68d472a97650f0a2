// ReduceMax: maximum over axes (attribute before opset 18, input from 18); float or int64.
// Backward follows PyTorch for ties (see `backward`).

import Kernels
import ONNXIR

/// The running maximum's update: NaN wins, as in numpy and PyTorch (tested as `x != x`,
/// which vectorizes where `isNaN` does not).
struct MaxKeepingNaN: ElementFormula {
    @inline(__always) func callAsFunction(_ m: Float, _ v: Float) -> Float { (v > m || v != v) && m == m ? v : m }

    /// A run's maximum through eight running maxima side by side (vector compares and
    /// blends). That is the in-order scan's value bit for bit unless the result is a zero
    /// (+0 and -0 tie; the scan keeps the first) or NaN (the scan keeps the first NaN's
    /// payload): those runs are scanned again in order.
    func fold(_ acc: Float, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var m = SIMD8<Float>(repeating: -.infinity)
        let raw = UnsafeRawPointer(x)
        var i = 0
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD8<Float>.self)
            m.replace(with: v, where: (v .> m) .| ((v .!= v) .& (m .== m)))
            i += 8
        }
        var r = acc
        for j in 0..<8 { r = self(r, m[j]) }
        for k in i..<count { r = self(r, x[k]) }
        if r != 0 && r == r { return r }
        r = acc
        for k in 0..<count { r = self(r, x[k]) }
        return r
    }
}

public struct ReduceMax: Operator {
    let attributes: ReductionAttributes

    public init(node: Node, opset: Int64) throws {
        attributes = try ReductionAttributes(node, opset: opset, inputAxesSince: 18)
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        if let folded = try foldConstants(inputs) { return folded }
        return try attributes.inferShapes(inputs)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        let p = try attributes.plan(inputs)
        guard p.axes != nil else { return ForwardResult([p.x]) }
        let n = ShapeMath.elementCount(p.out) ?? 0
        if p.x.dtype == .int64 {
            return ForwardResult([Tensor(shape: p.out, ints: Reduction.accumulate(p.x.ints, shape: p.x.shape, strides: p.strides, outCount: n, initial: Int64.min, max))])
        }
        // NaN wins, as in numpy and PyTorch; an empty reduction is -inf (ONNX's identity for max).
        let values = Reduction.accumulate(p.x.floats, shape: p.x.shape, strides: p.strides, outCount: n, initial: -Float.infinity,
                                          threads: context.threads, MaxKeepingNaN())
        return ForwardResult([Tensor(shape: p.out, floats: values)])
    }

    // Where several elements tie for the maximum, PyTorch's spellings differ and the ONNX
    // node cannot say which one it came from:
    //  - `torch.max(x, dim)[0]` (CBAM's ChannelPool) sends dy to ONE element, the first maximal
    //    index on CPU; both exporters emit ReduceMax(axes=[dim], keepdims=0) for it;
    //  - `torch.amax` and full `torch.max(x)` split dy evenly among the ties.
    // Rule: one axis with keepdims=0 follows torch.max(x, dim); everything else splits evenly.
    // Pinned by fixtures/opgrad/reducemax_ties_torch_{max_dim,amax}. `torch.amax(x, d)` without
    // keepdim would be treated as torch.max(x, d): gradients differ only where ties occur.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let p = try attributes.plan(record.inputs)
        guard p.x.dtype == .float32, let y = record.outputs.first else { return result }
        guard let axes = p.axes else {
            result[0] = Tensor(shape: p.x.shape, floats: gradient(gradOutputs, 0, shape: p.x.shape))
            return result
        }
        let g = gradient(gradOutputs, 0, shape: p.out)
        let firstOnly = axes.count == 1 && !attributes.keepDims
        var dx = [Float](repeating: 0, count: p.x.count)
        // Ties per output: row-major order visits a reduced axis in increasing index order,
        // so the first match seen is the first maximal index.
        var ties = [Float](repeating: 0, count: y.count)
        guard p.x.count > 0 else { result[0] = Tensor(shape: p.x.shape, floats: dx); return result }
        // The collapsed walk visits x in row-major order; when the outermost dim is not reduced,
        // its indices own disjoint outputs and split over threads (each output's order unchanged).
        let (dims, so, _) = Broadcast.collapsed(p.x.shape, p.strides, Tensor.strides(p.x.shape))
        let outer = dims.count > 1 && so[0] != 0 ? dims[0] : 1
        let part = Array(dims.count > 1 && so[0] != 0 ? dims.dropFirst() : dims[...])
        let partStrides = Array(dims.count > 1 && so[0] != 0 ? so.dropFirst() : so[...])
        let xStep = p.x.count / outer, oStep = outer > 1 ? so[0] : 0
        let workers = p.x.count >= 1 << 15 ? min(max(1, context.threads), outer) : 1
        y.floats.withUnsafeBufferPointer { py in
            p.x.floats.withUnsafeBufferPointer { px in
                ties.withUnsafeMutableBufferPointer { pt in
                    dx.withUnsafeMutableBufferPointer { pd in
                        parallelFor(workers, threads: workers) { w in
                            for k in (outer * w / workers)..<(outer * (w + 1) / workers) {
                                let x0 = px.baseAddress! + k * xStep, d0 = pd.baseAddress! + k * xStep
                                let y0 = py.baseAddress! + k * oStep, t0 = pt.baseAddress! + k * oStep
                                let g0 = k * oStep
                                Broadcast.forEach(part, partStrides, partStrides) { i, o, _ in
                                    let hit = x0[i] == y0[o] || (x0[i] != x0[i] && y0[o] != y0[o])
                                    guard hit else { return }
                                    if firstOnly {
                                        if t0[o] == 0 { d0[i] = g[g0 + o] }
                                    }
                                    t0[o] += 1
                                }
                                if !firstOnly {
                                    Broadcast.forEach(part, partStrides, partStrides) { i, o, _ in
                                        if x0[i] == y0[o] || (x0[i] != x0[i] && y0[o] != y0[o]) { d0[i] = g[g0 + o] / t0[o] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        result[0] = Tensor(shape: p.x.shape, floats: dx)
        return result
    }
}
