// Conv: N-D convolution (1-, 2- or 3-D) with groups, and its backward: attributes and shapes here,
// the arithmetic in Kernels (`ConvolutionPlan` picks im2col + GEMM, the packed-filter GEMM or
// Winograd per call shape; `ConvolutionBackward` computes the gradients).

import Foundation
import Kernels
import ONNXIR

public struct Conv: Operator {
    let label: NodeLabel
    let window: WindowAttributes
    let group: Int

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        window = try WindowAttributes(&reader, label: label, readCeilMode: false)
        group = try reader.int("group", default: 1)
        guard group >= 1 else { throw reader.fail("group", "must be >= 1, got \(group)") }
        try reader.finish()
    }

    /// What forward and backward both derive from the input shapes.
    struct Layout {
        var batch: Int, channels: Int, filters: Int
        var channelsPerGroup: Int, filtersPerGroup: Int
        var geometry: WindowGeometry
        var outputShape: [Int]
        /// Rows of one group's im2col matrix: channelsPerGroup * kernel volume.
        var columnRows: Int { channelsPerGroup * geometry.kernelVolume }
    }

    func layout(_ x: [Int], _ w: [Int], bias: [Int]?) throws -> Layout {
        guard x.count >= 3 else { throw label.error("input X must have rank >= 3 ([N, C, spatial...]), got shape \(x)") }
        guard w.count == x.count else { throw label.error("weight W has shape \(w), expected rank \(x.count) like X \(x)") }
        let channels = x[1], filters = w[0]
        guard channels % group == 0, filters % group == 0 else {
            throw label.error("group \(group) does not divide input channels \(channels) and filters \(filters)")
        }
        guard w[1] * group == channels else {
            throw label.error("weight W \(w) expects \(w[1] * group) input channels for group \(group), X \(x) has \(channels)")
        }
        let kernel = Array(w[2...])
        if let k = window.kernelShape, k != kernel {
            throw label.attributeError("kernel_shape", "\(k) disagrees with the weight's spatial dims \(kernel)")
        }
        if let bias, bias != [filters] { throw label.error("bias B has shape \(bias), expected [\(filters)]") }
        let g = try window.resolve(input: Array(x[2...]), kernel: kernel)
        return Layout(batch: x[0], channels: channels, filters: filters,
                      channelsPerGroup: channels / group, filtersPerGroup: filters / group, geometry: g,
                      outputShape: [x[0], filters] + g.outputDims(rank: x.count - 2))
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1] else { throw label.error("inputs X and W are required") }
        guard let xd = x.dims, let wd = w.knownDims else { return [ValueShape(dtype: .float32, dims: nil)] }
        guard xd.count == wd.count, xd.count >= 3 else { throw label.error("X rank \(xd.count) and W rank \(wd.count) must agree and be >= 3") }
        let spatial = try window.outputDims(input: Array(xd[2...]), kernel: Array(wd[2...]))
        return [ValueShape(dtype: .float32, dims: [xd[0], wd[0]] + spatial)]
    }

    // Y[n, g*Mg + m, p] = sum_{c, k} W[g*Mg + m, c, k] * col_n[g*Cg + c, k, p] + B[m]:
    // per image and group one GEMM of [Mg, Cg*K] x [Cg*K, P] (`ConvolutionPlan`).
    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...3)
        let x = try label.float(inputs, 0), w = try label.float(inputs, 1)
        let bias = label.optional(inputs, 2)
        if let bias, bias.dtype != .float32 { throw label.error("bias B must be float") }
        let l = try layout(x.shape, w.shape, bias: bias?.shape)
        let count = try label.count(l.outputShape)
        let plan = ConvolutionPlan(filters: .plain(w.floats),
                                   winograd: Conv.trainingWinograd(context),
                                   packsPerCall: context.training)
        let y = Conv.convolve(x, plan, bias: bias, l, group: group, relu: false, count: count, context)
        return ForwardResult([Tensor(shape: l.outputShape, floats: y)], backwardReads: .inputs)
    }

    /// Training's Winograd path (`WinogradPath.training`) for the context's options; nil in inference.
    static func trainingWinograd(_ context: ExecutionContext) -> WinogradPath? {
        guard context.training else { return nil }
        return WinogradPath.training(context.options.convolution, reach: context.options.kernels.trainingWinograd)
    }

    /// Whether the Winograd path can compute this node for any input size: 2-D 3x3 kernel,
    /// strides and dilations 1, one group (the input size decides the rest, see `WinogradPath`).
    func winogradCandidate(weightShape w: [Int]) -> Bool {
        group == 1 && w.count == 4 && w[2] == 3 && w[3] == 3
            && (window.strides ?? [1, 1]).allSatisfy { $0 == 1 } && (window.dilations ?? [1, 1]).allSatisfy { $0 == 1 }
    }

    func shape(_ l: Layout) -> ConvolutionShape {
        ConvolutionShape(batch: l.batch, channels: l.channels, filters: l.filters, group: group, geometry: l.geometry)
    }

    /// The forward arithmetic on checked inputs, shared with the fused inference operator.
    static func convolve(_ x: Tensor, _ plan: ConvolutionPlan, bias: Tensor?, _ l: Layout, group: Int, relu: Bool,
                         count: Int, _ context: ExecutionContext) -> [Float] {
        let shape = ConvolutionShape(batch: l.batch, channels: l.channels, filters: l.filters, group: group,
                                     geometry: l.geometry)
        return [Float].filled(count: count) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                let run = { (b: UnsafePointer<Float>?) in
                    plan.forward(xb.baseAddress, bias: b, yp, shape, relu: relu, threads: context.threads,
                                 options: context.options.kernels)
                }
                if let bias { bias.floats.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
            }
        }
    }

    /// dB, dW and dX (`ConvolutionBackward.run`; dX by Winograd where training's path takes it).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        let x = try recorded(record, 0, label), w = try recorded(record, 1, label)
        let bias = record.inputs.count > 2 ? record.inputs[2] : nil
        let l = try layout(x.shape, w.shape, bias: bias?.shape)
        let needX = needsGradient.count > 0 && needsGradient[0]
        let needW = needsGradient.count > 1 && needsGradient[1]
        let needB = needsGradient.count > 2 && needsGradient[2] && bias != nil
        let dy = gradient(gradOutputs, 0, shape: l.outputShape)
        var dX = [Float](), dW = [Float](), dB = [Float]()
        func buffer(_ a: inout [Float], _ count: Int, _ body: (UnsafeMutablePointer<Float>?) -> Void) {
            // Written in full by the kernel.
            a = [Float](unsafeUninitializedCapacity: count) { b, n in body(b.baseAddress); n = count }
        }
        let winograd = Conv.trainingWinograd(context)
        x.floats.withUnsafeBufferPointer { xb in
        w.floats.withUnsafeBufferPointer { wb in
        dy.withUnsafeBufferPointer { dyb in
            buffer(&dX, needX ? x.count : 0) { dXp in
            buffer(&dW, needW ? w.count : 0) { dWp in
            buffer(&dB, needB ? l.filters : 0) { dBp in
                ConvolutionBackward.run(xb.baseAddress, wb.baseAddress, dyb.baseAddress, shape(l),
                                        dX: needX ? dXp : nil, dW: needW ? dWp : nil, dB: needB ? dBp : nil,
                                        winograd: winograd, packsPerCall: context.training, threads: context.threads,
                                        options: context.options.kernels)
            }}}
        }}}
        let grads = [needX ? Tensor(shape: x.shape, floats: dX) : nil,
                     needW ? Tensor(shape: w.shape, floats: dW) : nil,
                     needB ? Tensor(shape: [l.filters], floats: dB) : nil]
        return Array(grads.prefix(record.inputs.count))
    }
}

extension Conv: ProfiledOperator {
    /// The path the call took: the forward's ("direct", "winograd2" or "winograd4"), or the
    /// backward's ("dX winograd4 dW winograd4": dX as a Winograd convolution of dY, dW by
    /// F(3x3,2x2) ("winograd2") or F(3x3,4x4) ("winograd4"); "implicit" where training reads
    /// the input in place; "direct" for the im2col + GEMM gradients), as `forward` and
    /// `backward` choose them.
    func profileDetail(_ inputs: [Tensor?], backward: Bool, _ context: ExecutionContext) -> String {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1] else { return "Conv" }
        var path = "direct"
        if let l = try? layout(x.shape, w.shape, bias: inputs.count > 2 ? inputs[2]?.shape : nil) {
            let winograd = Conv.trainingWinograd(context)
            let s = shape(l)
            func name(_ tile: WinogradTile?) -> String {
                switch tile { case .f2x2?: "winograd2"; case .f4x4?: "winograd4"; case nil: "direct" }
            }
            let options = context.options.kernels
            // Training's wide planes read their input in place (`packsPerCall`): "implicit".
            func implicit(_ shape: ConvolutionShape?) -> Bool {
                guard context.training, let shape else { return false }
                return ConvolutionForward.trainingImplicit(shape, options: options)
            }
            if !backward {
                let tile = winograd?.tile(for: s, options: options)
                path = tile == nil && implicit(s) ? "implicit" : name(tile)
            } else {
                let tile = ConvolutionBackward.transposedWinograd(s, winograd)?.1
                let dX = tile == nil && implicit(ConvolutionBackward.transposedShape(s)) ? "implicit" : name(tile)
                let dW = WinogradWeightGradient.applies(s, winograd) ? name(WinogradWeightGradient.tile(s, winograd, options: options))
                    : context.training && ConvolutionBackward.implicitWeightGradientApplies(s, options: options) ? "implicit"
                    : "direct"
                if dX != "direct" || dW != "direct" { path = "dX \(dX) dW \(dW)" }
            }
        }
        return Conv.describe(x: x.shape, w: w.shape, window: window, path: path)
    }

    static func describe(x: [Int], w: [Int], window: WindowAttributes, path: String) -> String {
        let k = w.dropFirst(2).map(String.init).joined(separator: "x")
        let s = (window.strides ?? []).first ?? 1
        let plane = x.dropFirst(2).map(String.init).joined(separator: "x")
        return "Conv k\(k) s\(s) \(x.count > 1 ? x[1] : 0)->\(w.first ?? 0) \(plane) \(path)"
    }
}

extension FusedConv: ProfiledOperator {
    func profileDetail(_ inputs: [Tensor?], backward: Bool, _ context: ExecutionContext) -> String {
        guard let x = inputs.first ?? nil else { return "Conv" }
        var path = "direct"
        if let l = try? conv.layout(x.shape, weightShape, bias: bias?.shape),
           case .winograd(let tile) = plan.algorithm(for: conv.shape(l)) {
            path = tile == .f2x2 ? "winograd2" : "winograd4"
        }
        return Conv.describe(x: x.shape, w: weightShape, window: conv.window, path: path)
    }
}
