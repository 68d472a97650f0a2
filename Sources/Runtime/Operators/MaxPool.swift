// MaxPool: windowed maximum (pads, strides, dilations, ceil_mode, auto_pad, optional Indices);
// the gradient goes to the chosen element, the first maximum in scan order as in PyTorch.

import Kernels
import ONNXIR

public struct MaxPool: Operator {
    let label: NodeLabel
    let window: WindowAttributes
    /// Indices output layout: 0 row-major, 1 column-major over the spatial dims.
    let storageOrder: Int
    /// Whether the node names an Indices output; when not, forward skips building it.
    let wantsIndices: Bool

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        window = try WindowAttributes(&reader, label: label, readCeilMode: true)
        guard window.kernelShape != nil else { throw reader.fail("kernel_shape", "is required") }
        storageOrder = try reader.int("storage_order", default: 0)
        guard storageOrder == 0 || storageOrder == 1 else { throw reader.fail("storage_order", "must be 0 or 1, got \(storageOrder)") }
        try reader.finish()
        wantsIndices = node.outputs.count > 1 && !node.outputs[1].isEmpty
    }

    func geometry(_ x: [Int]) throws -> WindowGeometry {
        guard x.count >= 3 else { throw label.error("X must have rank >= 3 ([N, C, spatial...]), got shape \(x)") }
        return try window.resolve(input: Array(x[2...]), kernel: window.kernelShape!)
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let first = inputs.first, let x = first else { throw label.error("input X is required") }
        guard let xd = x.dims else { return [ValueShape(dtype: .float32, dims: nil), ValueShape(dtype: .int64, dims: nil)] }
        guard xd.count >= 3 else { throw label.error("X must have rank >= 3") }
        let dims = [xd[0], xd[1]] + (try window.outputDims(input: Array(xd[2...]), kernel: window.kernelShape!))
        return [ValueShape(dtype: .float32, dims: dims), ValueShape(dtype: .int64, dims: dims)]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        let g = try geometry(x.shape)
        let planes = x.shape[0] * x.shape[1]
        let inPlane = g.inputPlane, outPlane = g.outputPlane
        let outShape = Array(x.shape[0..<2]) + g.outputDims(rank: x.rank - 2)
        if !context.training && !wantsIndices && maxPool2DApplies(g) {
            // Inference: the same values from the branch-free kernel, without argmax; a backward
            // through an inference pass recomputes the argmax (`argmax(_:_:threads:)`).
            let y = [Float].filled(count: planes * outPlane) { yp in
                x.floats.withUnsafeBufferPointer { xb in
                    parallelFor(planes, threads: context.threads) { p in
                        maxPool2DForward(xb.baseAddress! + p * inPlane, yp + p * outPlane, g)
                    }
                }
            }
            return ForwardResult([Tensor(shape: outShape, floats: y)])
        }
        let fast2D = maxPool2DApplies(g)
        var y: [Float] = []
        // Both kernels write every output and its argmax.
        let argmax = [Int32](unsafeUninitializedCapacity: planes * outPlane) { ab, count in
            y = [Float].filled(count: planes * outPlane) { yp in
                x.floats.withUnsafeBufferPointer { xb in
                    parallelFor(planes, threads: context.threads) { p in
                        let xp = xb.baseAddress! + p * inPlane, ypl = yp + p * outPlane, apl = ab.baseAddress! + p * outPlane
                        if fast2D {
                            // The vectorised kernel's y (same bits) with the argmax of its picks.
                            maxPool2DForwardArgmax(xp, ypl, apl, g)
                        } else {
                            maxPoolForward(xp, ypl, apl, g)
                        }
                    }
                }
            }
            count = planes * outPlane
        }
        // The argmax stays (backward reads it); the int64 Indices tensor only if the node has that output.
        // With the argmax saved, backward needs only X's shape.
        if !wantsIndices { return ForwardResult([Tensor(shape: outShape, floats: y)], saved: argmax, backwardReads: .shapes) }
        // Indices: positions in the whole flattened X, the spatial part in `storage_order`.
        var indices = [Int64](repeating: 0, count: argmax.count)
        for p in 0..<planes {
            for o in 0..<outPlane {
                let local = Int(argmax[p * outPlane + o])
                var index = local
                if storageOrder == 1 && local >= 0 {
                    let w = local % g.inW, h = (local / g.inW) % g.inH, d = local / (g.inW * g.inH)
                    index = d + g.inD * (h + g.inH * w)
                }
                indices[p * outPlane + o] = local < 0 ? -1 : Int64(p * inPlane + index)
            }
        }
        return ForwardResult([Tensor(shape: outShape, floats: y), Tensor(shape: outShape, ints: indices)], saved: argmax,
                             backwardReads: .shapes)
    }

    /// The argmax of every output (plane offsets), for a backward whose forward took the
    /// inference path and saved none.
    static func argmax(_ x: Tensor, _ g: WindowGeometry, threads: Int) -> [Int32] {
        let planes = x.shape[0] * x.shape[1]
        let inPlane = g.inputPlane, outPlane = g.outputPlane
        var argmax = [Int32](repeating: -1, count: planes * outPlane)
        var y = [Float](repeating: 0, count: planes * outPlane)
        x.floats.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                argmax.withUnsafeMutableBufferPointer { ab in
                    parallelFor(planes, threads: threads) { p in
                        maxPoolForward(xb.baseAddress! + p * inPlane, yb.baseAddress! + p * outPlane, ab.baseAddress! + p * outPlane, g)
                    }
                }
            }
        }
        return argmax
    }

    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        guard let xShape = record.inputShapes.first ?? nil else { throw label.error("backward needs the shape of X") }
        let g = try geometry(xShape)
        let planes = xShape[0] * xShape[1]
        let inPlane = g.inputPlane, outPlane = g.outputPlane
        let argmax = try record.saved as? [Int32] ?? Self.argmax(recorded(record, 0, label), g, threads: context.threads)
        let dy = gradient(gradOutputs, 0, shape: Array(xShape[0..<2]) + g.outputDims(rank: xShape.count - 2))
        let dx = [Float].accumulated(count: planes * inPlane) { dxp in
            dy.withUnsafeBufferPointer { dyb in
                argmax.withUnsafeBufferPointer { ab in
                    parallelFor(planes, threads: context.threads) { p in
                        maxPoolBackward(dyb.baseAddress! + p * outPlane, ab.baseAddress! + p * outPlane,
                                        dxp + p * inPlane, outputCount: outPlane)
                    }
                }
            }
        }
        return [Tensor(shape: xShape, floats: dx)]
    }
}
