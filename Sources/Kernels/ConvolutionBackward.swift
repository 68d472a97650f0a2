// Convolution backward: dB, dW and dX of one call (im2col + GEMM, col2im; Winograd for dX where
// training's path takes it; training's wide planes read in place, dX as the packed implicit
// convolution of dY, dW by `manet_conv_dw_implicit`), and the narrow-plane schedule where the
// images of a batch share one GEMM per gradient.

import _CKernels

public enum ConvolutionBackward {
    /// The gradients of y = conv(x, w) + b given dY, each computed only when its buffer is
    /// given, and fully written: dB [M] (sums in Double, in image order), dW [M, C/group, k...]
    /// (dY_g [Mg, P] x col_g^T [P, Cg*K] summed over images in image order), dX [N, C, in...]
    /// (W_g^T x dY_g folded by col2im, or, where `winograd` takes the shape, the Winograd
    /// convolution of dY with the filters transposed and flipped). x, w, dy nil when they hold
    /// no elements. The same bits every run for a thread count.
    public static func run(_ x: UnsafePointer<Float>?, _ w: UnsafePointer<Float>?, _ dy: UnsafePointer<Float>?,
                           _ s: ConvolutionShape, dX: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>?,
                           dB: UnsafeMutablePointer<Float>?, winograd: WinogradPath?, packsPerCall: Bool = false,
                           threads: Int, options: KernelOptions = .default) {
        let g = s.geometry
        let inPlane = g.inputPlane, outPlane = g.outputPlane, rows = s.columnRows
        let (batch, channels, filters, group) = (s.batch, s.channels, s.filters, s.group)
        let (filtersPerGroup, channelsPerGroup) = (s.filtersPerGroup, s.channelsPerGroup)
        if let dB {
            parallelFor(filters, threads: threads) { m in
                var sum: Double = 0
                if let dy {
                    for n in 0..<batch {
                        let plane = dy + (n * filters + m) * outPlane
                        for p in 0..<outPlane { sum += Double(plane[p]) }
                    }
                }
                dB[m] = Float(sum)
            }
        }
        if dX == nil && dW == nil { return }
        // dX of a stride-1 3x3 convolution is itself one (of dY with the filters transposed and
        // flipped); the Winograd path computes it where it pays in training, writing all of it.
        var gemmDX = dX
        let dXPath = winograd?.inputGradient ?? winograd
        if let dX, let w, let dy, let (shape, tile) = transposedWinograd(s, winograd) {
            if let dXPath, dXPath.packsFilters(shape, tile: tile) {
                // Flipped straight into 16-row blocks (`WinogradPath.packsF4x4Filters`).
                let packed = PackedFilters(flipping: w, filters: filters, channels: channels, volume: 9, threads: threads)
                packed.withPointer {
                    Winograd.run(dy, $0, tile: tile, bias: nil, dX, shape, relu: false, threads: threads, filtersPacked: true,
                                 options: options.pointOrder)
                }
            } else {
                let flipped = flippedFilters(w, filters: filters, channels: channels, threads: threads)
                flipped.withUnsafeBufferPointer { fb in
                    Winograd.run(dy, fb.baseAddress!, tile: tile, bias: nil, dX, shape, relu: false, threads: threads,
                                 options: options)
                }
            }
            gemmDX = nil
        } else if packsPerCall, let dX, let w, let dy, let shape = transposedShape(s),
                  ConvolutionForward.trainingImplicit(shape, options: options) {
            // Wide planes (training): the same convolution read in place, filters packed per call.
            let packed = PackedFilters(flipping: w, filters: filters, channels: channels, volume: g.kernelVolume, threads: threads)
            if ConvolutionForward.runImplicitImages(dy, packed, bias: nil, dX, shape, relu: false, threads: threads,
                                                    isa: options.isa) != nil {
                gemmDX = nil
            }
        }
        gemmDX?.initialize(repeating: 0, count: batch * channels * inPlane)
        // dW of a stride-1 3x3 convolution by Winograd F(3x3,2x2), or F(3x3,4x4) on the planes
        // where the path takes F(4x4,3x3) (`WinogradWeightGradient.tile`), where training's path takes it.
        var dW = dW
        if let gradient = dW, let x, let dy, WinogradWeightGradient.applies(s, winograd),
           WinogradWeightGradient.run(x, dy, s, dW: gradient, tile: WinogradWeightGradient.tile(s, winograd, options: options),
                                      threads: threads, options: options) {
            dW = nil
        }
        // The other dW paths add into it (Winograd's writes all of it: no zeroing pass there).
        dW?.initialize(repeating: 0, count: filters * rows)
        if let gradient = dW, packsPerCall, let x, let dy,
           implicitWeightGradient(x, dy, s, dW: gradient, threads: threads, options: options) {
            dW = nil
        }
        if gemmDX == nil && dW == nil { return }
        guard let xp = x, let wp = w, let dyp = dy else { return }
        if outPlane < ConvolutionForward.narrowPlane && batch > 1 {
            // Narrow planes: one GEMM per gradient over the whole batch.
            sharedGEMM(xp, wp, dyp, dW: dW, dX: gemmDX, s, threads: threads, options: options)
            return
        }
        if g.isPointwise {
            for n in 0..<batch {
                for grp in 0..<group {
                    let dyg = dyp + (n * filters + grp * filtersPerGroup) * outPlane
                    let xg = xp + (n * channels + grp * channelsPerGroup) * inPlane
                    if let dW {
                        GEMM.sgemmColumnSplit(transB: true, m: filtersPerGroup, n: rows, k: outPlane,
                                              a: dyg, lda: outPlane, b: xg, ldb: inPlane, beta: 1,
                                              c: dW + grp * filtersPerGroup * rows, ldc: rows, threads: threads, options: options)
                    }
                    if let gemmDX {
                        GEMM.sgemmColumnSplit(transA: true, m: rows, n: outPlane, k: filtersPerGroup,
                                              a: wp + grp * filtersPerGroup * rows, lda: rows, b: dyg, ldb: outPlane,
                                              c: gemmDX + (n * channels + grp * channelsPerGroup) * inPlane,
                                              ldc: inPlane, threads: threads, options: options)
                    }
                }
            }
            return
        }
        let imageColumns = channels * g.kernelVolume * outPlane
        let chunk = min(batch, threads)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, chunk * imageColumns))
        defer { scratch.deallocate() }
        var start = 0
        while start < batch {
            let images = min(chunk, batch - start)
            if let dW {
                parallelFor(images * channels, threads: threads) { t in
                    let i = t / channels, c = t % channels
                    im2col(xp + (start + i) * channels * inPlane, scratch + i * imageColumns, channels: c..<(c + 1), g)
                }
                for i in 0..<images {
                    for grp in 0..<group {
                        GEMM.sgemmColumnSplit(transB: true, m: filtersPerGroup, n: rows, k: outPlane,
                                              a: dyp + ((start + i) * filters + grp * filtersPerGroup) * outPlane, lda: outPlane,
                                              b: scratch + i * imageColumns + grp * rows * outPlane, ldb: outPlane,
                                              beta: 1, c: dW + grp * filtersPerGroup * rows, ldc: rows, threads: threads, options: options)
                    }
                }
            }
            if let gemmDX {
                // The columns are consumed; the same scratch now holds dcol.
                for i in 0..<images {
                    for grp in 0..<group {
                        GEMM.sgemmColumnSplit(transA: true, m: rows, n: outPlane, k: filtersPerGroup,
                                              a: wp + grp * filtersPerGroup * rows, lda: rows,
                                              b: dyp + ((start + i) * filters + grp * filtersPerGroup) * outPlane, ldb: outPlane,
                                              c: scratch + i * imageColumns + grp * rows * outPlane, ldc: outPlane,
                                              threads: threads, options: options)
                    }
                }
                parallelFor(images * channels, threads: threads) { t in
                    let i = t / channels, c = t % channels
                    col2im(scratch + i * imageColumns, gemmDX + (start + i) * channels * inPlane, channels: c..<(c + 1), g)
                }
            }
            start += images
        }
    }

    /// Pieces per worker of `implicitWeightGradient`'s taps, taken by whichever worker is free.
    static let weightGradientPiecesPerWorker = 4

    /// Whether `implicitWeightGradient` takes dW of shape `s`: the wide planes of
    /// `ConvolutionForward.trainingImplicit` at stride 1.
    public static func implicitWeightGradientApplies(_ s: ConvolutionShape, options: KernelOptions) -> Bool {
        ConvolutionForward.trainingImplicit(s, options: options) && s.geometry.sH == 1 && s.geometry.sW == 1
    }

    /// dW += the weight gradient of a stride-1 2-D convolution with x read in place
    /// (`manet_conv_dw_implicit`): per image, x is zero-padded and dY's rows padded to the same
    /// width (two buffers made once, their borders zeroed once), then the taps are split into
    /// pieces taken by whichever worker is free. Every element is one fixed sum per image, added
    /// in image order: the same bits for any thread count and instruction set. On the 64->64
    /// 56x56 layers it replaces a 7.2 MB column matrix per image (im2col, then a GEMM streaming
    /// it). False (nothing written) for shapes it does not take.
    public static func implicitWeightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ s: ConvolutionShape,
                                              dW: UnsafeMutablePointer<Float>, threads: Int,
                                              options: KernelOptions = .default) -> Bool {
        guard implicitWeightGradientApplies(s, options: options),
              let (padH, padW, koff, _) = ConvolutionForward.implicitOffsets(s) else { return false }
        let g = s.geometry, rows = s.columnRows
        let length = g.outH * padW, rounded = (length + 15) / 16 * 16
        // The runs of the last taps reach past the last padded plane by less than this.
        let planeP = padH * padW, inputFloats = s.channels * planeP + (rounded - length) + padW
        let total = inputFloats + s.filters * rounded
        guard total < Int(Int32.max) else { return false }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: total)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0, count: total)
        let gradients = buffer + inputFloats
        let triples = (rows + 2) / 3
        let workers = max(1, min(threads, triples))
        let pieces = workers == 1 ? 1 : min(triples, weightGradientPiecesPerWorker * workers)
        koff.withUnsafeBufferPointer { ko in
            for n in 0..<s.batch {
                parallelFor(s.channels + s.filters, threads: threads) { t in
                    if t < s.channels {
                        ConvolutionForward.copyIntoPadded(x + (n * s.channels + t) * g.inputPlane, channels: 1,
                                                          buffer + t * planeP, padH: padH, padW: padW, g)
                    } else {
                        let m = t - s.channels
                        let from = dy + (n * s.filters + m) * g.outputPlane, to = gradients + m * rounded
                        for r in 0..<g.outH { (to + r * padW).update(from: from + r * g.outW, count: g.outW) }
                    }
                }
                parallelForDynamic(pieces, threads: workers) { _, piece in
                    let r0 = min(rows, triples * piece / pieces * 3), r1 = min(rows, triples * (piece + 1) / pieces * 3)
                    if r1 > r0 {
                        manet_conv_dw_implicit(options.isa.code, gradients, s.filters, rounded, buffer, ko.baseAddress!,
                                               r0, r1, dW, rows)
                    }
                }
            }
        }
        return true
    }

    /// For dX by Winograd: the shape of dX = conv(dY, W') with W'[c, m] = W[m, c] rotated by
    /// 180 degrees and pads 2 - p, and its tile on the path's dX policy (`inputGradient`, else
    /// the path itself); nil when there is no path or it does not take that shape
    /// (stride/dilation not 1, groups, pads > 2).
    public static func transposedWinograd(_ s: ConvolutionShape, _ path: WinogradPath?) -> (ConvolutionShape, WinogradTile)? {
        let g = s.geometry
        guard let path = path?.inputGradient ?? path, g.kH == 3, g.kW == 3, let shape = transposedShape(s), let tile = path.tile(for: shape) else { return nil }
        return (shape, tile)
    }

    /// The shape of dX = conv(dY, W') for a 2-D stride-1, undilated, ungrouped convolution:
    /// W'[c, m] = W[m, c] rotated by 180 degrees, pads k - 1 - p; nil for other convolutions
    /// (or pads past k - 1).
    public static func transposedShape(_ s: ConvolutionShape) -> ConvolutionShape? {
        let g = s.geometry
        guard s.group == 1, g.kD == 1, g.inD == 1, g.outD == 1, g.sH == 1, g.sW == 1, g.dH == 1, g.dW == 1,
              (0..<g.kH).contains(g.pH), (0..<g.kH).contains(g.pHEnd),
              (0..<g.kW).contains(g.pW), (0..<g.kW).contains(g.pWEnd) else { return nil }
        let t = WindowGeometry(input: [g.outH, g.outW], kernel: [g.kH, g.kW], strides: [1, 1],
                               padsBegin: [g.kH - 1 - g.pH, g.kW - 1 - g.pW], padsEnd: [g.kH - 1 - g.pHEnd, g.kW - 1 - g.pWEnd],
                               dilations: [1, 1], output: [g.inH, g.inW])
        return ConvolutionShape(batch: s.batch, channels: s.filters, filters: s.channels, group: 1, geometry: t)
    }

    /// W' [C, M, k...] of w [M, C, k...] (`volume` taps): transposed, each window rotated by 180
    /// degrees. One run of W' [c, :, :, :] per task, written in order (a plain copy: any split
    /// gives the same bits).
    static func flippedFilters(_ w: UnsafePointer<Float>, filters M: Int, channels C: Int, volume v: Int = 9,
                               threads: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: M * C * v) { out, n in
            let base = out.baseAddress!
            parallelFor(C, threads: threads) { c in
                for m in 0..<M {
                    let src = w + (m * C + c) * v, dst = base + (c * M + m) * v
                    for k in 0..<v { dst[k] = src[v - 1 - k] }
                }
            }
            n = M * C * v
        }
    }

    /// dW += dY_mat [M, N*P] x col^T and dX = col2im(W^T x dY_mat), with the columns of a chunk
    /// of images side by side (as `ConvolutionForward.sharedGEMM`): a 7x7 plane gives GEMMs of
    /// width or depth 49 per image, far too thin for the GEMM kernel; over 16 images it is 784.
    /// dW: accumulated into (zeroed by the caller); dX: accumulated into (zeroed by the caller).
    /// Deterministic for a given thread count: chunks and groups run in a fixed order, and the
    /// GEMMs split their columns over the threads, never their inner (summed) dimension
    /// (`GEMM.sgemmColumnSplit`: no OpenBLAS threads left spinning between the steps).
    public static func sharedGEMM(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  dW: UnsafeMutablePointer<Float>?, dX: UnsafeMutablePointer<Float>?,
                                  _ s: ConvolutionShape, threads: Int, options: KernelOptions = .default) {
        let g = s.geometry
        let inPlane = g.inputPlane, plane = g.outputPlane, rows = s.columnRows
        let allRows = s.channels * g.kernelVolume
        let perImage = (allRows + s.filters) * plane
        let chunk = max(1, min(s.batch, ConvolutionForward.scratchLimit / max(1, perImage)))
        let width = chunk * plane
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: max(1, allRows * width))
        let gradients = UnsafeMutablePointer<Float>.allocate(capacity: max(1, s.filters * width))
        defer { columns.deallocate(); gradients.deallocate() }
        var start = 0
        while start < s.batch {
            let images = min(chunk, s.batch - start)
            let cols = images * plane
            // dY of these images as [M, images * P]: column i * P + p is image start + i.
            parallelFor(images * s.filters, threads: threads) { t in
                let i = t / s.filters, m = t % s.filters
                (gradients + m * cols + i * plane).update(from: dy + ((start + i) * s.filters + m) * plane, count: plane)
            }
            if let dW {
                parallelFor(images * s.channels, threads: threads) { t in
                    let i = t / s.channels, c = t % s.channels
                    im2col(x + (start + i) * s.channels * inPlane, columns + i * plane, rowStride: cols,
                           channels: c..<(c + 1), g)
                }
                for grp in 0..<s.group {
                    GEMM.sgemmColumnSplit(transB: true, m: s.filtersPerGroup, n: rows, k: cols,
                               a: gradients + grp * s.filtersPerGroup * cols, lda: cols,
                               b: columns + grp * rows * cols, ldb: cols, beta: 1,
                               c: dW + grp * s.filtersPerGroup * rows, ldc: rows, threads: threads, options: options)
                }
            }
            if let dX {
                for grp in 0..<s.group {
                    GEMM.sgemmColumnSplit(transA: true, m: rows, n: cols, k: s.filtersPerGroup,
                               a: w + grp * s.filtersPerGroup * rows, lda: rows,
                               b: gradients + grp * s.filtersPerGroup * cols, ldb: cols,
                               c: columns + grp * rows * cols, ldc: cols, threads: threads, options: options)
                }
                parallelFor(images * s.channels, threads: threads) { t in
                    let i = t / s.channels, c = t % s.channels
                    col2im(columns + i * plane, dX + (start + i) * s.channels * inPlane, rowStride: cols,
                           channels: c..<(c + 1), g)
                }
            }
            start += images
        }
    }
}
