// BatchNormalization: per-channel normalisation with running or batch statistics, the
// running-statistic update of training, and the backward for X, scale and B.

import Kernels
import ONNXIR

public struct BatchNormalization: Operator {
    let label: NodeLabel
    let epsilon: Float
    /// ONNX momentum: running = momentum * running + (1 - momentum) * batch
    /// (PyTorch's momentum 0.1 is ONNX's 0.9).
    let momentum: Float
    /// The node's own `training_mode` (opset 14+): batch statistics, and the updated running
    /// statistics as outputs 1 and 2.
    let trainingModeAttribute: Bool

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        epsilon = try reader.float("epsilon", default: 1e-5)
        momentum = try reader.float("momentum", default: 0.9)
        if opset < 9, let spatial = try reader.int("spatial"), spatial != 1 {
            throw reader.fail("spatial", "only spatial=1 (per-channel statistics) is supported")
        }
        trainingModeAttribute = opset >= 14 ? try reader.int("training_mode", default: 0) != 0 : false
        try reader.finish()
        let outputs = node.outputs.filter { !$0.isEmpty }.count
        if opset < 14 && outputs > 1 {
            throw label.error("the training outputs of opset \(opset) (mean, var, saved_mean, saved_var) are not supported; use opset 14+ training_mode")
        }
        if !trainingModeAttribute && outputs > 1 {
            throw label.error("running_mean and running_var outputs need training_mode=1")
        }
    }

    /// What backward needs: the statistics forward normalised with.
    struct Saved {
        var mean: [Float]
        var invStd: [Float]
        var batchStatistics: Bool
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let first = inputs.first, let x = first else { throw label.error("input X is required") }
        let c: Int? = (x.dims?.count ?? 0) >= 2 ? x.dims![1] : nil
        var result = [ValueShape(dtype: .float32, dims: x.dims)]
        if trainingModeAttribute {
            result += [ValueShape(dtype: .float32, dims: [c]), ValueShape(dtype: .float32, dims: [c])]
        }
        return result
    }

    /// (N, C, spatial size) of X, with the per-channel inputs checked against C.
    func layout(_ inputs: [Tensor?]) throws -> (Int, Int, Int) {
        let x = try label.float(inputs, 0)
        guard x.rank >= 2 else { throw label.error("X must have rank >= 2 ([N, C, ...]), got shape \(x.shape)") }
        let c = x.shape[1]
        for (i, name) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            let t = try label.float(inputs, i)
            guard t.shape == [c] else { throw label.error("\(name) has shape \(t.shape), expected [\(c)]") }
        }
        return (x.shape[0], c, x.shape.dropFirst(2).reduce(1, *))
    }

    // y = (x - mean) * invStd * scale + B per channel; in training the mean and biased
    // variance come from the batch, and the running statistics move towards the batch's.
    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 5...5)
        let (n, c, spatial) = try layout(inputs)
        let x = inputs[0]!, scale = inputs[1]!.floats, bias = inputs[2]!.floats
        let runningMean = inputs[3]!.floats, runningVar = inputs[4]!.floats
        let batchStatistics = context.training || trainingModeAttribute
        var mean = runningMean
        var variance = runningVar
        let count = n * spatial
        if batchStatistics {
            guard count > 0 else { throw label.error("batch statistics of an empty batch") }
            var m = [Double](repeating: 0, count: c), v = [Double](repeating: 0, count: c)
            x.floats.withUnsafeBufferPointer { xb in
                m.withUnsafeMutableBufferPointer { mb in
                v.withUnsafeMutableBufferPointer { vb in
                    // One channel per task, summed in a fixed order (`LaneSum`): the same bits on
                    // any thread count.
                    parallelFor(c, threads: context.threads) { ch in
                        var s = LaneSum()
                        for i in 0..<n {
                            let plane = xb.baseAddress! + (i * c + ch) * spatial
                            var p = 0
                            while p + 8 <= spatial { s.lanes += SIMD8<Double>(LaneSum.load(plane + p)); p += 8 }
                            while p < spatial { s.rest += Double(plane[p]); p += 1 }
                        }
                        let mu = s.total / Double(count)
                        var ss = LaneSum()
                        let mu8 = SIMD8<Double>(repeating: mu)
                        for i in 0..<n {
                            let plane = xb.baseAddress! + (i * c + ch) * spatial
                            var p = 0
                            while p + 8 <= spatial {
                                let d = SIMD8<Double>(LaneSum.load(plane + p)) - mu8
                                ss.lanes += d * d
                                p += 8
                            }
                            while p < spatial { let d = Double(plane[p]) - mu; ss.rest += d * d; p += 1 }
                        }
                        mb[ch] = mu
                        vb[ch] = ss.total
                    }
                }}
            }
            mean = m.map { Float($0) }
            variance = v.map { Float($0 / Double(count)) }
            var outputs: [Tensor] = []
            var updates: [Int: Tensor] = [:]
            let keep = momentum, take = 1 - momentum
            if context.training {
                // PyTorch's update: the unbiased variance goes into the running variance.
                let unbiased = v.map { Float($0 / Double(max(1, count - 1))) }
                updates[3] = Tensor(shape: [c], floats: (0..<c).map { keep * runningMean[$0] + take * mean[$0] })
                updates[4] = Tensor(shape: [c], floats: (0..<c).map { keep * runningVar[$0] + take * unbiased[$0] })
            }
            let y = normalize(x, n: n, c: c, spatial: spatial, mean: mean, variance: variance, scale: scale, bias: bias, context)
            outputs.append(y.0)
            if trainingModeAttribute {
                // ONNX defines these outputs with the batch's (biased) variance.
                outputs.append(Tensor(shape: [c], floats: (0..<c).map { keep * runningMean[$0] + take * mean[$0] }))
                outputs.append(Tensor(shape: [c], floats: (0..<c).map { keep * runningVar[$0] + take * variance[$0] }))
            }
            return ForwardResult(outputs, saved: Saved(mean: mean, invStd: y.1, batchStatistics: true), stateUpdates: updates,
                                 backwardReads: .inputs)
        }
        let y = normalize(x, n: n, c: c, spatial: spatial, mean: mean, variance: variance, scale: scale, bias: bias, context)
        return ForwardResult([y.0], saved: Saved(mean: mean, invStd: y.1, batchStatistics: false), backwardReads: .inputs)
    }

    /// Y from X and per-channel statistics; also returns 1 / sqrt(variance + epsilon).
    func normalize(_ x: Tensor, n: Int, c: Int, spatial: Int, mean: [Float], variance: [Float],
                   scale: [Float], bias: [Float], _ context: ExecutionContext) -> (Tensor, [Float]) {
        let invStd = variance.map { 1 / (($0 + epsilon).squareRoot()) }
        let y = [Float].filled(count: x.count) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                parallelFor(n * c, threads: context.threads) { t in
                    let ch = t % c
                    let a = scale[ch] * invStd[ch], b = bias[ch] - mean[ch] * a
                    let src = xb.baseAddress! + t * spatial, dst = yp + t * spatial
                    for p in 0..<spatial { dst[p] = src[p] * a + b }
                }
            }
        }
        return (Tensor(shape: x.shape, floats: y), invStd)
    }

    // With xhat = (x - mean) * invStd and M = N * spatial per channel:
    // dB = sum dy, dscale = sum dy * xhat; batch statistics:
    // dx = scale * invStd / M * (M * dy - dB - xhat * dscale); running statistics: dx = scale * invStd * dy.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard let saved = record.saved as? Saved else { throw label.error("backward needs the forward's saved statistics") }
        let x = try recorded(record, 0, label), scale = try recorded(record, 1, label).floats
        let n = x.shape[0], c = x.shape[1], spatial = x.shape.dropFirst(2).reduce(1, *)
        let dy = gradient(gradOutputs, 0, shape: x.shape)
        var dBias = [Double](repeating: 0, count: c), dScale = [Double](repeating: 0, count: c)
        x.floats.withUnsafeBufferPointer { xb in
        dy.withUnsafeBufferPointer { dyb in
        dBias.withUnsafeMutableBufferPointer { db in
        dScale.withUnsafeMutableBufferPointer { ds in
            parallelFor(c, threads: context.threads) { ch in
                let mu = saved.mean[ch], inv = saved.invStd[ch]
                let mu8 = SIMD8<Float>(repeating: mu), inv8 = SIMD8<Float>(repeating: inv)
                var sb = LaneSum(), ss = LaneSum()
                for i in 0..<n {
                    let off = (i * c + ch) * spatial
                    let xp = xb.baseAddress! + off, gp = dyb.baseAddress! + off
                    var p = 0
                    while p + 8 <= spatial {
                        let g = SIMD8<Double>(LaneSum.load(gp + p))
                        sb.lanes += g
                        ss.lanes += g * SIMD8<Double>((LaneSum.load(xp + p) - mu8) * inv8)
                        p += 8
                    }
                    while p < spatial {
                        let g = Double(gp[p])
                        sb.rest += g
                        ss.rest += g * Double((xp[p] - mu) * inv)
                        p += 1
                    }
                }
                db[ch] = sb.total
                ds[ch] = ss.total
            }
        }}}}
        var result: [Tensor?] = record.inputs.map { _ in nil }
        if needsGradient.count > 0 && needsGradient[0] {
            let m = Float(n * spatial)
            let dx = [Float].filled(count: x.count) { dxp in
                x.floats.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { dyb in
                    parallelFor(n * c, threads: context.threads) { t in
                        let ch = t % c
                        let mu = saved.mean[ch], inv = saved.invStd[ch]
                        let xp = xb.baseAddress! + t * spatial, gp = dyb.baseAddress! + t * spatial, out = dxp + t * spatial
                        if saved.batchStatistics {
                            let k = scale[ch] * inv / m
                            let sb = Float(dBias[ch]), ss = Float(dScale[ch])
                            for p in 0..<spatial { out[p] = k * (m * gp[p] - sb - (xp[p] - mu) * inv * ss) }
                        } else {
                            let k = scale[ch] * inv
                            for p in 0..<spatial { out[p] = k * gp[p] }
                        }
                    }
                }}
            }
            result[0] = Tensor(shape: x.shape, floats: dx)
        }
        if needsGradient.count > 1 && needsGradient[1] { result[1] = Tensor(shape: [c], floats: dScale.map { Float($0) }) }
        if needsGradient.count > 2 && needsGradient[2] { result[2] = Tensor(shape: [c], floats: dBias.map { Float($0) }) }
        return result
    }
}

/// A per-channel sum in a fixed order: whole runs of 8 values of each plane into 8 Double lanes
/// (lane j: position p = j mod 8 of the run), the positions past the last whole run one by one
/// into `rest`; the total adds the lanes pairwise, then `rest`. Eight independent chains instead
/// of one (a serial Double add waits on the previous one), the order fixed by the data's layout
/// alone, not by threads.
struct LaneSum {
    var lanes = SIMD8<Double>()
    var rest: Double = 0

    var total: Double {
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + rest
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
}
