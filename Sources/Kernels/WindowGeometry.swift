// The geometry of a sliding window (convolution or pooling) over up to three spatial dims.

/// Sizes, kernel, strides, pads and dilations of a sliding window, always seen as 3-D
/// (depth, height, width): 1-D and 2-D cases get leading dims of size 1 with a 1-wide
/// kernel, so one kernel implementation serves every spatial rank ONNX uses.
public struct WindowGeometry: Equatable, Sendable {
    public var inD: Int, inH: Int, inW: Int
    public var kD: Int, kH: Int, kW: Int
    public var sD: Int, sH: Int, sW: Int
    /// Padding before the first element of each dim.
    public var pD: Int, pH: Int, pW: Int
    /// Padding after the last element (needed for AveragePool's count_include_pad divisor).
    public var pDEnd: Int, pHEnd: Int, pWEnd: Int
    public var dD: Int, dH: Int, dW: Int
    public var outD: Int, outH: Int, outW: Int

    /// From per-dim arrays of equal length 1...3 (spatial rank), innermost dim last.
    /// `padsBegin`/`padsEnd`/`output` are already resolved by the caller.
    public init(input: [Int], kernel: [Int], strides: [Int], padsBegin: [Int], padsEnd: [Int],
                dilations: [Int], output: [Int]) {
        precondition(input.count >= 1 && input.count <= 3, "spatial rank \(input.count) is not 1...3")
        func lift(_ a: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: 3 - a.count) + a }
        let i = lift(input, 1), k = lift(kernel, 1), s = lift(strides, 1)
        let pb = lift(padsBegin, 0), pe = lift(padsEnd, 0), d = lift(dilations, 1), o = lift(output, 1)
        (inD, inH, inW) = (i[0], i[1], i[2])
        (kD, kH, kW) = (k[0], k[1], k[2])
        (sD, sH, sW) = (s[0], s[1], s[2])
        (pD, pH, pW) = (pb[0], pb[1], pb[2])
        (pDEnd, pHEnd, pWEnd) = (pe[0], pe[1], pe[2])
        (dD, dH, dW) = (d[0], d[1], d[2])
        (outD, outH, outW) = (o[0], o[1], o[2])
    }

    public var inputPlane: Int { inD * inH * inW }
    public var outputPlane: Int { outD * outH * outW }
    public var kernelVolume: Int { kD * kH * kW }

    /// True when the window is a plain 1x1 projection: every output element reads exactly the
    /// input element at the same position, so convolution is one GEMM with no im2col.
    public var isPointwise: Bool {
        kD == 1 && kH == 1 && kW == 1 && sD == 1 && sH == 1 && sW == 1
            && pD == 0 && pH == 0 && pW == 0 && outD == inD && outH == inH && outW == inW
    }
}

/// The output positions `o` in `0..<count` for which `o * stride + offset` lies in
/// `0..<limit`, as a half-open range (empty when none): lets inner loops copy a contiguous
/// run with no per-element bounds test.
@inlinable
func validRange(offset: Int, stride: Int, limit: Int, count: Int) -> (Int, Int) {
    // lo: first o with o*stride + offset >= 0.
    let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // hi: one past the last o with o*stride + offset <= limit - 1.
    let last = limit - 1 - offset
    let hi = last < 0 ? 0 : last / stride + 1
    let l = min(lo, count), h = min(hi, count)
    return (l, max(l, h))
}
