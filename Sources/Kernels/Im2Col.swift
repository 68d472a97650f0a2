// im2col / col2im: unfold sliding windows into GEMM columns, and fold gradients back. Offsets
// inside an image are far from Int's range: the inner loops use wrapping arithmetic.

/// Unfolds the windows of channels `channels` of one image into `col`.
/// x: [C, inD, inH, inW]; col: [C * kD * kH * kW, outD * outH * outW] (rows of all C
/// channels, only those of `channels` written). Padding reads as zero.
public func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>,
                   channels: Range<Int>, _ g: WindowGeometry) {
    im2col(x, col, rowStride: g.outputPlane, channels: channels, g)
}

/// `im2col` into rows `rowStride` floats apart, so that several images' columns can sit side
/// by side in one matrix (one GEMM for a batch of narrow planes).
public func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, rowStride: Int,
                   channels: Range<Int>, _ g: WindowGeometry) {
    let outPlane = rowStride, inPlane = g.inputPlane
    for c in channels {
        let xc = x + c * inPlane
        for kd in 0..<g.kD {
            for kh in 0..<g.kH {
                for kw in 0..<g.kW {
                    let row = col + (((c * g.kD + kd) * g.kH + kh) * g.kW + kw) * outPlane
                    let offW = kw * g.dW - g.pW
                    let (lo, hi) = validRange(offset: offW, stride: g.sW, limit: g.inW, count: g.outW)
                    for od in 0..<g.outD {
                        let id = od * g.sD - g.pD + kd * g.dD
                        for oh in 0..<g.outH {
                            let ih = oh * g.sH - g.pH + kh * g.dH
                            let dst = row + (od * g.outH + oh) * g.outW
                            if id < 0 || id >= g.inD || ih < 0 || ih >= g.inH {
                                dst.update(repeating: 0, count: g.outW)
                                continue
                            }
                            let src = xc + (id * g.inH + ih) * g.inW + offW
                            if lo > 0 { dst.update(repeating: 0, count: lo) }
                            if g.sW == 1 {
                                (dst + lo).update(from: src + lo, count: hi - lo)
                            } else if g.sW == 2 {
                                copyEvery2nd(src, dst, lo, hi)
                            } else {
                                let sW = g.sW
                                var ow = lo
                                while ow < hi { dst[ow] = src[ow &* sW]; ow &+= 1 }
                            }
                            if hi < g.outW { (dst + hi).update(repeating: 0, count: g.outW - hi) }
                        }
                    }
                }
            }
        }
    }
}

/// dst[o] = src[2 * o] for o in lo..<hi: 8 outputs per 16-float load, keeping the even lanes.
/// The vector loop stops while its last load (src[2 * o + 15]) is still inside the valid run
/// (<= src[2 * (hi - 1)]); the rest is scalar.
@inline(__always)
func copyEvery2nd(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int) {
    var o = lo
    let raw = UnsafeRawPointer(src), out = UnsafeMutableRawPointer(dst)
    while o &+ 8 < hi {
        let v = raw.loadUnaligned(fromByteOffset: 2 &* o &* MemoryLayout<Float>.stride, as: SIMD16<Float>.self)
        out.storeBytes(of: v.evenHalf, toByteOffset: o &* MemoryLayout<Float>.stride, as: SIMD8<Float>.self)
        o &+= 8
    }
    while o < hi { dst[o] = src[2 &* o]; o &+= 1 }
}

/// The adjoint of `im2col`: adds every column entry back onto the input position it was read
/// from (entries read from padding are dropped). dx: [C, inD, inH, inW], accumulated into
/// for channels `channels`; col: [C * kD * kH * kW, outD * outH * outW].
public func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                   channels: Range<Int>, _ g: WindowGeometry) {
    col2im(col, dx, rowStride: g.outputPlane, channels: channels, g)
}

/// `col2im` from rows `rowStride` floats apart (one image's columns inside a wider matrix).
public func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rowStride: Int,
                   channels: Range<Int>, _ g: WindowGeometry) {
    let outPlane = rowStride, inPlane = g.inputPlane, sW = g.sW
    for c in channels {
        let xc = dx + c * inPlane
        for kd in 0..<g.kD {
            for kh in 0..<g.kH {
                for kw in 0..<g.kW {
                    let row = col + (((c * g.kD + kd) * g.kH + kh) * g.kW + kw) * outPlane
                    let offW = kw * g.dW - g.pW
                    let (lo, hi) = validRange(offset: offW, stride: g.sW, limit: g.inW, count: g.outW)
                    for od in 0..<g.outD {
                        let id = od * g.sD - g.pD + kd * g.dD
                        if id < 0 || id >= g.inD { continue }
                        for oh in 0..<g.outH {
                            let ih = oh * g.sH - g.pH + kh * g.dH
                            if ih < 0 || ih >= g.inH { continue }
                            let src = row + (od * g.outH + oh) * g.outW
                            let dst = xc + (id * g.inH + ih) * g.inW + offW
                            if sW == 1 {
                                var ow = lo
                                while ow < hi { dst[ow] += src[ow]; ow &+= 1 }
                            } else {
                                var ow = lo
                                while ow < hi { dst[ow &* sW] += src[ow]; ow &+= 1 }
                            }
                        }
                    }
                }
            }
        }
    }
}
