// Convolution forward over a batch: picks how images share GEMMs and threads, then applies bias and ReLU.

/// The shape of one convolution call, as the forward driver needs it.
public struct ConvolutionShape: Sendable {
    public var batch: Int, channels: Int, filters: Int, group: Int
    public var geometry: WindowGeometry

    public init(batch: Int, channels: Int, filters: Int, group: Int, geometry: WindowGeometry) {
        self.batch = batch
        self.channels = channels
        self.filters = filters
        self.group = group
        self.geometry = geometry
    }

    public var channelsPerGroup: Int { channels / group }
    public var filtersPerGroup: Int { filters / group }
    /// Rows of one group's column matrix.
    public var columnRows: Int { channelsPerGroup * geometry.kernelVolume }
}

public enum ConvolutionForward {
    /// Below this many output positions per image, one GEMM per image is too narrow for the
    /// GEMM kernel's blocking (MA-Net's 7x7 and 14x14 layers), so images share one GEMM.
    public static let narrowPlane = 1024
    /// Below this many multiply-adds a convolution is not split over threads: its work is a
    /// few microseconds, less than the fork and join (CBAM's 7x7 2->1 spatial attention, 4.8 K
    /// multiply-adds, 16 calls per MA-Net image, ran faster on the calling thread alone).
    public static let tinyMultiplyAdds = 1 << 16
    /// Upper bound on the scratch floats of the shared-GEMM path (columns + result), ~64 MiB.
    static let scratchLimit = 16 << 20

    /// y[n, m, p] = relu?(sum_{c,k} w[m, c, k] * x[n, c, window(p, k)] + bias[m]).
    /// x: [N, C, in...]; w: [M, C/group, k...]; bias: [M] or nil; y: [N, M, out...], fully written.
    ///
    /// Three schedules, all deterministic for a given thread count (no reduction depends on
    /// timing; GEMM splits rows and columns, never the inner dimension):
    /// - narrow planes: im2col of a chunk of images side by side, one threaded GEMM per group
    ///   over all their columns, then scattered back to NCHW;
    /// - a batch of at least `threads` images: images spread over threads, each with its own
    ///   columns and a single-threaded GEMM (no fork/join per GEMM, no idle BLAS threads);
    /// - otherwise (batch 1, wide planes): one image at a time, the GEMM threaded.
    /// A convolution of fewer than `tinyMultiplyAdds` runs on the calling thread alone.
    public static func run(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                           _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool, threads: Int,
                           options: KernelOptions = .default) {
        let g = s.geometry
        let plane = g.outputPlane
        if s.batch == 0 || s.filters == 0 || plane == 0 { return }
        let threads = s.batch * s.filters * plane * s.columnRows < tinyMultiplyAdds ? 1 : threads
        if plane < narrowPlane {
            sharedGEMM(x, w, bias: bias, y, s, relu: relu, threads: threads, options: options)
        } else if s.batch >= threads && threads > 1 {
            let scratch = g.isPointwise ? 0 : s.channels * g.kernelVolume * plane
            let buffers = UnsafeMutablePointer<Float>.allocate(capacity: max(1, scratch * threads))
            defer { buffers.deallocate() }
            if GEMM.usesOpenBLAS(options) { GEMM.setThreads(1) }
            parallelFor(threads, threads: threads) { t in
                // Static image ranges: worker t always gets the same images.
                let lo = t * s.batch / threads, hi = (t + 1) * s.batch / threads
                for n in lo..<hi {
                    image(x, w, bias: bias, y, s, n: n, columns: buffers + t * scratch, relu: relu, threads: 1, options: options)
                }
            }
        } else {
            let scratch = g.isPointwise ? 0 : s.channels * g.kernelVolume * plane
            let columns = UnsafeMutablePointer<Float>.allocate(capacity: max(1, scratch))
            defer { columns.deallocate() }
            for n in 0..<s.batch {
                image(x, w, bias: bias, y, s, n: n, columns: columns, relu: relu, threads: threads, options: options)
            }
        }
    }

    /// One image: im2col (unless pointwise), one GEMM per group straight into y, epilogue.
    static func image(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, n: Int,
                      columns: UnsafeMutablePointer<Float>, relu: Bool, threads: Int, options: KernelOptions) {
        let g = s.geometry
        let inPlane = g.inputPlane, plane = g.outputPlane, rows = s.columnRows
        let xn = x + n * s.channels * inPlane
        let yn = y + n * s.filters * plane
        if !g.isPointwise {
            if threads > 1 {
                parallelFor(s.channels, threads: threads) { c in im2col(xn, columns, channels: c..<(c + 1), g) }
            } else {
                im2col(xn, columns, channels: 0..<s.channels, g)
            }
        }
        for grp in 0..<s.group {
            let b = g.isPointwise ? xn + grp * s.channelsPerGroup * inPlane : UnsafePointer(columns + grp * rows * plane)
            GEMM.sgemmColumnSplit(m: s.filtersPerGroup, n: plane, k: rows,
                       a: w + grp * s.filtersPerGroup * rows, lda: rows, b: b, ldb: plane,
                       c: yn + grp * s.filtersPerGroup * plane, ldc: plane, threads: threads, options: options)
        }
        if bias != nil || relu {
            if threads > 1 {
                parallelFor(s.filters, threads: threads) { m in epilogue(yn + m * plane, plane, bias?[m] ?? 0, relu) }
            } else {
                for m in 0..<s.filters { epilogue(yn + m * plane, plane, bias?[m] ?? 0, relu) }
            }
        }
    }

    /// Narrow planes: the columns of `chunk` images sit side by side ([rows, chunk * P]) so
    /// each group is one GEMM of width chunk * P; its [Mg, chunk * P] result is scattered to
    /// NCHW with the epilogue on the way.
    static func sharedGEMM(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                           _ y: UnsafeMutablePointer<Float>, _ s: ConvolutionShape, relu: Bool, threads: Int,
                           options: KernelOptions) {
        let g = s.geometry
        let inPlane = g.inputPlane, plane = g.outputPlane, rows = s.columnRows
        let allRows = s.channels * g.kernelVolume
        let perImage = (allRows + s.filtersPerGroup) * plane
        let chunk = max(1, min(s.batch, scratchLimit / max(1, perImage)))
        let width = chunk * plane
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: max(1, allRows * width))
        let result = UnsafeMutablePointer<Float>.allocate(capacity: max(1, s.filtersPerGroup * width))
        defer { columns.deallocate(); result.deallocate() }
        var start = 0
        while start < s.batch {
            let images = min(chunk, s.batch - start)
            let cols = images * plane
            // Column j = i * P + p of row r reads image start + i; the row stride is `cols`.
            parallelFor(images * s.channels, threads: threads) { t in
                let i = t / s.channels, c = t % s.channels
                im2col(x + (start + i) * s.channels * inPlane, columns + i * plane, rowStride: cols,
                       channels: c..<(c + 1), g)
            }
            for grp in 0..<s.group {
                GEMM.sgemmColumnSplit(m: s.filtersPerGroup, n: cols, k: rows,
                           a: w + grp * s.filtersPerGroup * rows, lda: rows,
                           b: columns + grp * rows * cols, ldb: cols,
                           c: result, ldc: cols, threads: threads, options: options)
                parallelFor(images * s.filtersPerGroup, threads: threads) { t in
                    let i = t / s.filtersPerGroup, m = t % s.filtersPerGroup
                    let filter = grp * s.filtersPerGroup + m
                    let dst = y + ((start + i) * s.filters + filter) * plane
                    let src = result + m * cols + i * plane
                    let b = bias?[filter] ?? 0
                    if relu {
                        for p in 0..<plane { dst[p] = max(src[p] + b, 0) }
                    } else {
                        for p in 0..<plane { dst[p] = src[p] + b }
                    }
                }
            }
            start += images
        }
    }

    /// y = relu?(y + b) over one output plane.
    @inline(__always)
    static func epilogue(_ y: UnsafeMutablePointer<Float>, _ count: Int, _ b: Float, _ relu: Bool) {
        if relu {
            for p in 0..<count { y[p] = max(y[p] + b, 0) }
        } else if b != 0 {
            for p in 0..<count { y[p] += b }
        }
    }
}
