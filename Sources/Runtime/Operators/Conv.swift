// Conv: N-D convolution (1-, 2- or 3-D) through im2col + sgemm, with groups, and its backward;
// stride-1 3x3 2-D convolutions take the Winograd path where it pays (`WinogradPath`).

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
    // per image and group one GEMM of [Mg, Cg*K] x [Cg*K, P].
    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...3)
        let x = try label.float(inputs, 0), w = try label.float(inputs, 1)
        let bias = label.optional(inputs, 2)
        if let bias, bias.dtype != .float32 { throw label.error("bias B must be float") }
        let l = try layout(x.shape, w.shape, bias: bias?.shape)
        let count = try label.count(l.outputShape)
        let y = Conv.convolve(x, w, bias: bias, l, group: group, relu: false, threads: context.threads, count: count,
                              winograd: context.training ? WinogradPath.training : nil)
        return ForwardResult([Tensor(shape: l.outputShape, floats: y)], backwardReads: .inputs)
    }

    /// Whether the Winograd path can compute this node for any input size: 2-D 3x3 kernel,
    /// strides and dilations 1, one group (the input size decides the rest, see `WinogradPath`).
    func winogradCandidate(weightShape w: [Int]) -> Bool {
        group == 1 && w.count == 4 && w[2] == 3 && w[3] == 3
            && (window.strides ?? [1, 1]).allSatisfy { $0 == 1 } && (window.dilations ?? [1, 1]).allSatisfy { $0 == 1 }
    }

    /// The forward arithmetic on checked inputs, shared with the fused inference operator
    /// (which passes a `WinogradPath` to take the Winograd path where it applies).
    static func convolve(_ x: Tensor, _ w: Tensor, bias: Tensor?, _ l: Layout, group: Int, relu: Bool,
                         threads: Int, count: Int, winograd: WinogradPath? = nil) -> [Float] {
        let shape = ConvolutionShape(batch: l.batch, channels: l.channels, filters: l.filters, group: group,
                                     geometry: l.geometry)
        if let winograd, let tile = winograd.tile(for: shape) {
            let kept = winograd.keptFilters(w, tile: tile, threads: threads)
            return [Float].filled(count: count) { yp in
                x.floats.withUnsafeBufferPointer { xb in
                    w.floats.withUnsafeBufferPointer { wb in
                        (kept ?? []).withUnsafeBufferPointer { kb in
                            let run = { (b: UnsafePointer<Float>?) in
                                Winograd.run(xb.baseAddress!, wb.baseAddress!, tile: tile,
                                             transformed: kept == nil ? nil : kb.baseAddress, bias: b, yp, shape,
                                             relu: relu, threads: threads)
                            }
                            if let bias { bias.floats.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                        }
                    }
                }
            }
        }
        return [Float].filled(count: count) { yp in
            x.floats.withUnsafeBufferPointer { xb in
                w.floats.withUnsafeBufferPointer { wb in
                    guard let xp = xb.baseAddress, let wp = wb.baseAddress else {
                        // No input channels (or no filters): y is the bias alone.
                        let plane = l.geometry.outputPlane
                        for t in 0..<(l.batch * l.filters) {
                            let b = bias?.floats[t % l.filters] ?? 0
                            for p in 0..<plane { yp[t * plane + p] = relu ? max(b, 0) : b }
                        }
                        return
                    }
                    if let bias {
                        bias.floats.withUnsafeBufferPointer { bb in
                            ConvolutionForward.run(xp, wp, bias: bb.baseAddress, yp, shape, relu: relu, threads: threads)
                        }
                    } else {
                        ConvolutionForward.run(xp, wp, bias: nil, yp, shape, relu: relu, threads: threads)
                    }
                }
            }
        }
    }

    /// The forward with packed filters (`PackedFilters`, ungrouped): the Winograd path where it
    /// applies (filters transformed from the packed layout), else the packed-filter GEMM.
    static func convolve(_ x: Tensor, _ w: PackedFilters, bias: Tensor?, _ l: Layout, relu: Bool, threads: Int,
                         count: Int, winograd: WinogradPath?) -> [Float] {
        let shape = ConvolutionShape(batch: l.batch, channels: l.channels, filters: l.filters, group: 1,
                                     geometry: l.geometry)
        let tile = winograd?.tile(for: shape, filtersPacked: true)
        return w.withPointer { wp in
            // Filters transformed in chunks per call are not kept (that path reads the packed ones).
            let kept = tile.flatMap {
                Winograd.transformsInChunks(shape, tile: $0) ? nil
                    : winograd?.keptFilters(wp, filters: l.filters, channels: l.channels, packed: true, tile: $0, threads: threads)
            }
            return [Float].filled(count: count) { yp in
                x.floats.withUnsafeBufferPointer { xb in
                    (kept ?? []).withUnsafeBufferPointer { kb in
                        let run = { (b: UnsafePointer<Float>?) in
                            if let tile {
                                Winograd.run(xb.baseAddress!, wp, tile: tile, transformed: kept == nil ? nil : kb.baseAddress,
                                             bias: b, yp, shape, relu: relu, threads: threads, filtersPacked: true)
                            } else {
                                ConvolutionForward.runPacked(xb.baseAddress!, w, bias: b, yp, shape, relu: relu, threads: threads)
                            }
                        }
                        if let bias { bias.floats.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                    }
                }
            }
        }
    }

    // dB[m] = sum_{n,p} dY;  dW_g += dY_g [Mg, P] x col_g^T [P, Cg*K] over images (in image
    // order, so the sum is the same bits every run);  dcol_g = W_g^T x dY_g, folded by col2im.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        let x = try recorded(record, 0, label), w = try recorded(record, 1, label)
        let bias = record.inputs.count > 2 ? record.inputs[2] : nil
        let l = try layout(x.shape, w.shape, bias: bias?.shape)
        let g = l.geometry
        let inPlane = g.inputPlane, outPlane = g.outputPlane, rows = l.columnRows
        let threads = context.threads
        let needX = needsGradient.count > 0 && needsGradient[0]
        let needW = needsGradient.count > 1 && needsGradient[1]
        let needB = needsGradient.count > 2 && needsGradient[2] && bias != nil
        let dy = gradient(gradOutputs, 0, shape: l.outputShape)

        var dB: Tensor? = nil
        if needB {
            let sums = [Float].filled(count: l.filters) { bp in
                dy.withUnsafeBufferPointer { dyb in
                    parallelFor(l.filters, threads: threads) { m in
                        var s: Double = 0
                        for n in 0..<l.batch {
                            let plane = dyb.baseAddress! + (n * l.filters + m) * outPlane
                            for p in 0..<outPlane { s += Double(plane[p]) }
                        }
                        bp[m] = Float(s)
                    }
                }
            }
            dB = Tensor(shape: [l.filters], floats: sums)
        }
        if !needX && !needW { return Array([nil, nil, dB].prefix(record.inputs.count)) }

        var dW = needW ? [Float](repeating: 0, count: w.count) : []
        // dX of a stride-1 3x3 convolution is itself one (of dY with the filters transposed and
        // flipped); the Winograd path computes it where it pays in training, writing all of it.
        let winogradDX = needX && context.training ? transposedWinograd(l, w, threads: threads) : nil
        let gemmDX = needX && winogradDX == nil   // whether the GEMM paths below compute dX (accumulating)
        var dX = gemmDX ? [Float](repeating: 0, count: x.count) : []
        if let (shape, tile, flipped) = winogradDX {
            dX = [Float].filled(count: x.count) { dXp in
                dy.withUnsafeBufferPointer { dyb in
                    flipped.withUnsafeBufferPointer { fb in
                        Winograd.run(dyb.baseAddress!, fb.baseAddress!, tile: tile, bias: nil, dXp, shape,
                                     relu: false, threads: threads)
                    }
                }
            }
        }
        x.floats.withUnsafeBufferPointer { xb in
        w.floats.withUnsafeBufferPointer { wb in
        dy.withUnsafeBufferPointer { dyb in
        dW.withUnsafeMutableBufferPointer { dWb in
        dX.withUnsafeMutableBufferPointer { dXb in
            guard let xp = xb.baseAddress, let wp = wb.baseAddress, let dyp = dyb.baseAddress else { return }
            if outPlane < ConvolutionForward.narrowPlane && l.batch > 1 {
                // Narrow planes: one GEMM per gradient over the whole batch (see ConvolutionBackward).
                let shape = ConvolutionShape(batch: l.batch, channels: l.channels, filters: l.filters, group: group, geometry: g)
                ConvolutionBackward.sharedGEMM(xp, wp, dyp, dW: needW ? dWb.baseAddress : nil, dX: gemmDX ? dXb.baseAddress : nil,
                                               shape, threads: threads)
                return
            }
            if g.isPointwise {
                for n in 0..<l.batch {
                    for grp in 0..<group {
                        let dyg = dyp + (n * l.filters + grp * l.filtersPerGroup) * outPlane
                        let xg = xp + (n * l.channels + grp * l.channelsPerGroup) * inPlane
                        if needW {
                            GEMM.sgemmColumnSplit(transB: true, m: l.filtersPerGroup, n: rows, k: outPlane,
                                       a: dyg, lda: outPlane, b: xg, ldb: inPlane, beta: 1,
                                       c: dWb.baseAddress! + grp * l.filtersPerGroup * rows, ldc: rows, threads: threads)
                        }
                        if gemmDX {
                            GEMM.sgemmColumnSplit(transA: true, m: rows, n: outPlane, k: l.filtersPerGroup,
                                       a: wp + grp * l.filtersPerGroup * rows, lda: rows, b: dyg, ldb: outPlane,
                                       c: dXb.baseAddress! + (n * l.channels + grp * l.channelsPerGroup) * inPlane,
                                       ldc: inPlane, threads: threads)
                        }
                    }
                }
                return
            }
            let imageColumns = l.channels * g.kernelVolume * outPlane
            let chunk = min(l.batch, threads)
            let scratch = ScratchBuffer(count: chunk * imageColumns)
            var start = 0
            while start < l.batch {
                let images = min(chunk, l.batch - start)
                if needW {
                    parallelFor(images * l.channels, threads: threads) { t in
                        let i = t / l.channels, c = t % l.channels
                        im2col(xp + (start + i) * l.channels * inPlane, scratch.pointer + i * imageColumns,
                               channels: c..<(c + 1), g)
                    }
                    for i in 0..<images {
                        for grp in 0..<group {
                            GEMM.sgemmColumnSplit(transB: true, m: l.filtersPerGroup, n: rows, k: outPlane,
                                       a: dyp + ((start + i) * l.filters + grp * l.filtersPerGroup) * outPlane, lda: outPlane,
                                       b: scratch.pointer + i * imageColumns + grp * rows * outPlane, ldb: outPlane,
                                       beta: 1, c: dWb.baseAddress! + grp * l.filtersPerGroup * rows, ldc: rows,
                                       threads: threads)
                        }
                    }
                }
                if gemmDX {
                    // The columns are consumed; the same scratch now holds dcol.
                    for i in 0..<images {
                        for grp in 0..<group {
                            GEMM.sgemmColumnSplit(transA: true, m: rows, n: outPlane, k: l.filtersPerGroup,
                                       a: wp + grp * l.filtersPerGroup * rows, lda: rows,
                                       b: dyp + ((start + i) * l.filters + grp * l.filtersPerGroup) * outPlane, ldb: outPlane,
                                       c: scratch.pointer + i * imageColumns + grp * rows * outPlane, ldc: outPlane,
                                       threads: threads)
                        }
                    }
                    parallelFor(images * l.channels, threads: threads) { t in
                        let i = t / l.channels, c = t % l.channels
                        col2im(scratch.pointer + i * imageColumns, dXb.baseAddress! + (start + i) * l.channels * inPlane,
                               channels: c..<(c + 1), g)
                    }
                }
                start += images
            }
        }}}}}
        let grads = [needX ? Tensor(shape: x.shape, floats: dX) : nil,
                     needW ? Tensor(shape: w.shape, floats: dW) : nil, dB]
        return Array(grads.prefix(record.inputs.count))
    }
}

extension Conv {
    /// For dX of this convolution by Winograd: the shape of dX = conv(dY, W') with W'[c, m] =
    /// W[m, c] rotated by 180 degrees and pads 2 - p, the path, and W'; nil when the training
    /// Winograd path is off or does not take that shape (stride/dilation not 1, groups, pads > 2).
    func transposedWinograd(_ l: Layout, _ w: Tensor, threads: Int) -> (ConvolutionShape, WinogradTile, [Float])? {
        let g = l.geometry
        guard let path = WinogradPath.training, group == 1, g.kD == 1, g.kH == 3, g.kW == 3, g.sH == 1, g.sW == 1,
              g.dH == 1, g.dW == 1, [g.pH, g.pW, g.pHEnd, g.pWEnd].allSatisfy({ (0...2).contains($0) }) else { return nil }
        let t = WindowGeometry(input: [g.outH, g.outW], kernel: [3, 3], strides: [1, 1],
                               padsBegin: [2 - g.pH, 2 - g.pW], padsEnd: [2 - g.pHEnd, 2 - g.pWEnd], dilations: [1, 1],
                               output: [g.inH, g.inW])
        let shape = ConvolutionShape(batch: l.batch, channels: l.filters, filters: l.channels, group: 1, geometry: t)
        guard let tile = path.tile(for: shape) else { return nil }
        let (M, C) = (l.filters, l.channels)
        // One run of W' [c, :, :, :] per task, written in order (a plain copy: any split gives the same bits).
        let flipped = [Float].filled(count: w.count) { out in
            w.floats.withUnsafeBufferPointer { wb in
                parallelFor(C, threads: threads) { c in
                    for m in 0..<M {
                        let src = wb.baseAddress! + (m * C + c) * 9, dst = out + (c * M + m) * 9
                        for k in 0..<9 { dst[k] = src[8 - k] }
                    }
                }
            }
        }
        return (shape, tile, flipped)
    }
}

/// Which Winograd tile (if any) one convolution takes, by call shape, and its transformed
/// filters when the plan's `WinogradFilterStore` has room for them (otherwise `Winograd.run`
/// transforms them per call). An inference path lives in a fused plan, which the executor
/// drops when an initializer changes, so kept filters never outlive the weights they came from.
final class WinogradPath: @unchecked Sendable {
    /// The tiles this path may take, most preferred first.
    let tiles: [WinogradTile]
    let store: WinogradFilterStore?
    private let lock = NSLock()
    private var kept: [WinogradTile: [Float]] = [:]

    /// Fewer input channels or filters than this take the direct path.
    let minimumChannels: Int

    init(tiles: [WinogradTile], store: WinogradFilterStore? = nil, minimumChannels: Int = WinogradPath.minimumChannels) {
        self.tiles = tiles
        self.store = store
        self.minimumChannels = minimumChannels
    }

    /// Inference's path from `MANET_CONV`: by default F(4x4,3x3) where it has enough tiles, else
    /// F(2x2,3x3) where that has (e.g. the 28x28 layers at batch 1), else direct; `winograd4`
    /// or `winograd2` allow only that tile; `direct` turns Winograd off (nil). F(4x4) comes first:
    /// on full MA-Net at batch 16 it takes ~30% less CPU than F(2x2) on every layer shape with the
    /// vectorised transforms (docs/PERFORMANCE.md), at ~10x F(2x2)'s rounding error (still
    /// ~5e-6 of max |y| per layer against float64, see WinogradTests).
    static let inferenceTiles: [WinogradTile]? = {
        switch ProcessInfo.processInfo.environment["MANET_CONV"] {
        case "direct": return nil
        case "winograd2": return [.f2x2]
        case "winograd4": return [.f4x4]
        default: return [.f4x4, .f2x2]
        }
    }()

    /// Training's path (forward and dX of unfused convolutions in training mode): F(2x2,3x3)
    /// only, as accurate as the direct path (so training parity is unchanged); nil with
    /// `MANET_CONV=direct`.
    /// Only from 128 channels: the 64-channel layers' transforms (56x56 planes at batch 16) are
    /// memory-bound and cost about what they save (docs/PERFORMANCE.md).
    static let training: WinogradPath? = inferenceTiles == nil ? nil : WinogradPath(tiles: [.f2x2], minimumChannels: 128)

    /// Where Winograd beats im2col + GEMM on full MA-Net (docs/PERFORMANCE.md): at least this
    /// many tiles over the batch, or the 16/36 GEMMs are too thin for the transforms to pay, and
    /// at least `minimumChannels` channels and filters. F(4x4) from 32 tiles (batch 1: 28x28
    /// planes, 49 tiles, 2x faster than direct), F(2x2) from 49 (at batch 1 on 7x7 planes, 16
    /// tiles, F(2x2) lost to the packed direct path by 25%, F(4x4) with 4 tiles by 2.2x; on
    /// 14x14 planes, since the direct path reads its input in place (row (y)), F(2x2)'s 49
    /// tiles beat F(4x4)'s 16: chains alternating with onnxruntime, 8 256->256 14x14 13.2 vs
    /// 18.0 ms (direct 18.0, onnxruntime 13.1), 16 64->64 14x14 2.80 vs 3.35 (direct 2.64)).
    /// Read once: `ProcessInfo.environment` builds a dictionary of the whole environment on every
    /// access (~30 us, a per-call cost that was ~10% of a small convolution at batch 1).
    static func minimumTiles(_ tile: WinogradTile) -> Int {
        if let forcedMinimumTiles { return forcedMinimumTiles }
        return tile == .f4x4 ? 32 : 49
    }
    private static let forcedMinimumTiles = ProcessInfo.processInfo.environment["MANET_MIN_TILES"].flatMap { Int($0) }
    static let minimumChannels = 64

    /// The tile a call of this shape takes, or nil for the direct path. With `filtersPacked`
    /// (inference's packed filters), F(2x2) also takes the calls with few tiles whose filters
    /// `Winograd.run` transforms chunk by chunk right before multiplying them
    /// (`Winograd.transformsInChunks`: batch 1's 7x7 planes), which beat the direct path there.
    func tile(for s: ConvolutionShape, filtersPacked: Bool = false) -> WinogradTile? {
        guard Winograd.applies(s), s.channels >= minimumChannels, s.filters >= minimumChannels else { return nil }
        return tiles.first { tile in
            let m = tile == .f2x2 ? 2 : 4
            return s.batch * ((s.geometry.outH + m - 1) / m) * ((s.geometry.outW + m - 1) / m) >= WinogradPath.minimumTiles(tile)
        } ?? (filtersPacked && tiles.contains(.f2x2) && Winograd.transformsInChunks(s, tile: .f2x2) ? .f2x2 : nil)
    }

    /// The transformed filters of `weight` [M, C, 3, 3] for `tile` if kept (made now when the
    /// store has room), else nil.
    func keptFilters(_ weight: Tensor, tile: WinogradTile, threads: Int) -> [Float]? {
        weight.floats.withUnsafeBufferPointer {
            keptFilters($0.baseAddress!, filters: weight.shape[0], channels: weight.shape[1], packed: false,
                        tile: tile, threads: threads)
        }
    }

    /// The same for filters at `w`, [M, C, 3, 3] or in `PackedFilters`' layout (`packed`).
    func keptFilters(_ w: UnsafePointer<Float>, filters: Int, channels: Int, packed: Bool, tile: WinogradTile,
                     threads: Int) -> [Float]? {
        lock.lock()
        defer { lock.unlock() }
        if let made = kept[tile] { return made }
        guard let store, store.reserve(bytes: tile.alpha * tile.alpha * filters * channels * 4) else { return nil }
        let made = Winograd.transformFilters(w, filters: filters, channels: channels, tile: tile, threads: threads,
                                             packed: packed)
        kept[tile] = made
        return made
    }
}

/// The bytes of transformed Winograd filters one inference plan may keep between runs. Filters
/// are kept first come, first served (in execution order) until the budget is spent; the
/// rest are transformed per call. `MANET_WINOGRAD_KEEP` sets the budget in MiB (0 keeps none).
final class WinogradFilterStore: @unchecked Sendable {
    private let lock = NSLock()
    private var remaining: Int

    init(budgetBytes: Int) { remaining = max(0, budgetBytes) }

    /// The default budget for a plan whose weights take `weightBytes`: a quarter of them
    /// (docs/PERFORMANCE.md: keeping every F(4x4) transform costs 4x the weights of the
    /// layers on the path; the early, small-filter layers gain most per byte kept).
    static func forPlan(weightBytes: Int) -> WinogradFilterStore {
        if let mib = ProcessInfo.processInfo.environment["MANET_WINOGRAD_KEEP"].flatMap({ Int($0) }) {
            return WinogradFilterStore(budgetBytes: mib << 20)
        }
        return WinogradFilterStore(budgetBytes: weightBytes / 4)
    }

    /// Takes `bytes` from the budget if they fit.
    func reserve(bytes: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard bytes <= remaining else { return false }
        remaining -= bytes
        return true
    }
}

extension Conv: ProfiledOperator {
    func profileDetail(_ inputs: [Tensor?]) -> String {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1] else { return "Conv" }
        return Conv.describe(x: x.shape, w: w.shape, window: window, path: "direct")
    }

    static func describe(x: [Int], w: [Int], window: WindowAttributes, path: String) -> String {
        let k = w.dropFirst(2).map(String.init).joined(separator: "x")
        let s = (window.strides ?? []).first ?? 1
        let plane = x.dropFirst(2).map(String.init).joined(separator: "x")
        return "Conv k\(k) s\(s) \(x.count > 1 ? x[1] : 0)->\(w.first ?? 0) \(plane) \(path)"
    }
}

extension FusedConv: ProfiledOperator {
    func profileDetail(_ inputs: [Tensor?]) -> String {
        guard let x = inputs.first ?? nil else { return "Conv" }
        var path = "direct"
        if let winograd, let l = try? conv.layout(x.shape, weightShape, bias: bias?.shape) {
            let s = ConvolutionShape(batch: l.batch, channels: l.channels, filters: l.filters, group: conv.group, geometry: l.geometry)
            let packed = if case .packed = filters { true } else { false }
            if let tile = winograd.tile(for: s, filtersPacked: packed) { path = tile == .f2x2 ? "winograd2" : "winograd4" }
        }
        return Conv.describe(x: x.shape, w: weightShape, window: conv.window, path: path)
    }
}
