// Convolution backward for narrow planes: the images of a batch share one GEMM per gradient.

public enum ConvolutionBackward {
    /// dW += dY_mat [M, N*P] x col^T and dX = col2im(W^T x dY_mat), with the columns of a chunk
    /// of images side by side (as `ConvolutionForward.sharedGEMM`): a 7x7 plane gives GEMMs of
    /// width or depth 49 per image, far too thin for the GEMM kernel; over 16 images it is 784.
    /// dW: accumulated into (zeroed by the caller); dX: accumulated into (zeroed by the caller).
    /// Deterministic for a given thread count: chunks and groups run in a fixed order, and the
    /// GEMMs split their columns over the threads, never their inner (summed) dimension
    /// (`GEMM.sgemmColumnSplit`: no OpenBLAS threads left spinning between the steps).
    public static func sharedGEMM(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  dW: UnsafeMutablePointer<Float>?, dX: UnsafeMutablePointer<Float>?,
                                  _ s: ConvolutionShape, threads: Int) {
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
                               c: dW + grp * s.filtersPerGroup * rows, ldc: rows, threads: threads)
                }
            }
            if let dX {
                for grp in 0..<s.group {
                    GEMM.sgemmColumnSplit(transA: true, m: rows, n: cols, k: s.filtersPerGroup,
                               a: w + grp * s.filtersPerGroup * rows, lda: rows,
                               b: gradients + grp * s.filtersPerGroup * cols, ldb: cols,
                               c: columns + grp * rows * cols, ldc: cols, threads: threads)
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
