// AveragePool: windowed mean (pads, strides, ceil_mode, auto_pad, count_include_pad,
// dilations from opset 19) and its backward.

import Kernels
import ONNXIR

public struct AveragePool: Operator {
    let label: NodeLabel
    let window: WindowAttributes
    let countIncludePad: Bool

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        window = try WindowAttributes(&reader, label: label, readCeilMode: true, readDilations: opset >= 19)
        guard window.kernelShape != nil else { throw reader.fail("kernel_shape", "is required") }
        countIncludePad = try reader.int("count_include_pad", default: 0) != 0
        try reader.finish()
    }

    func geometry(_ x: [Int]) throws -> WindowGeometry {
        guard x.count >= 3 else { throw label.error("X must have rank >= 3 ([N, C, spatial...]), got shape \(x)") }
        return try window.resolve(input: Array(x[2...]), kernel: window.kernelShape!)
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let first = inputs.first, let x = first else { throw label.error("input X is required") }
        guard let xd = x.dims else { return [ValueShape(dtype: .float32, dims: nil)] }
        guard xd.count >= 3 else { throw label.error("X must have rank >= 3") }
        return [ValueShape(dtype: .float32, dims: [xd[0], xd[1]] + (try window.outputDims(input: Array(xd[2...]), kernel: window.kernelShape!)))]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        let g = try geometry(x.shape)
        let planes = x.shape[0] * x.shape[1]
        let inPlane = g.inputPlane, outPlane = g.outputPlane
        let y = [Float].filled(count: planes * outPlane) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                parallelFor(planes, threads: context.threads) { p in
                    averagePoolForward(xb.baseAddress! + p * inPlane, yp + p * outPlane, g, countIncludePad: countIncludePad)
                }
            }
        }
        return ForwardResult([Tensor(shape: Array(x.shape[0..<2]) + g.outputDims(rank: x.rank - 2), floats: y)])
    }

    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        let g = try geometry(x.shape)
        let planes = x.shape[0] * x.shape[1]
        let inPlane = g.inputPlane, outPlane = g.outputPlane
        let dy = gradient(gradOutputs, 0, shape: Array(x.shape[0..<2]) + g.outputDims(rank: x.rank - 2))
        let dx = [Float].accumulated(count: x.count) { dxp in
            dy.withUnsafeBufferPointer { dyb in
                parallelFor(planes, threads: context.threads) { p in
                    averagePoolBackward(dyb.baseAddress! + p * outPlane, dxp + p * inPlane, g, countIncludePad: countIncludePad)
                }
            }
        }
        return [Tensor(shape: x.shape, floats: dx)]
    }
}
