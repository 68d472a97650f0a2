// Max and average pooling over one [inD, inH, inW] plane, forward and backward.

/// Window positions k in `0..<g.k?` that land inside the input for output position o of one dim.
@inlinable
func windowRange(_ o: Int, stride: Int, pad: Int, dilation: Int, input: Int, kernel: Int) -> (Int, Int) {
    validRange(offset: o * stride - pad, stride: dilation, limit: input, count: kernel)
}

/// Max pooling of one plane. x: [inD, inH, inW]; y: [outD, outH, outW]; `argmax` (same
/// size as y) receives the plane offset of the chosen element: the first maximum in window
/// scan order (as PyTorch), with NaN winning over numbers. A window that covers only padding
/// gives -inf and argmax -1.
public func maxPoolForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                           _ argmax: UnsafeMutablePointer<Int32>?, _ g: WindowGeometry) {
    var out = 0
    for od in 0..<g.outD {
        let (d0, d1) = windowRange(od, stride: g.sD, pad: g.pD, dilation: g.dD, input: g.inD, kernel: g.kD)
        let dBase = od * g.sD - g.pD
        for oh in 0..<g.outH {
            let (h0, h1) = windowRange(oh, stride: g.sH, pad: g.pH, dilation: g.dH, input: g.inH, kernel: g.kH)
            let hBase = oh * g.sH - g.pH
            for ow in 0..<g.outW {
                let (w0, w1) = windowRange(ow, stride: g.sW, pad: g.pW, dilation: g.dW, input: g.inW, kernel: g.kW)
                let wBase = ow * g.sW - g.pW
                var best = -Float.infinity
                var bestIndex = -1
                for kd in d0..<d1 {
                    let id = dBase + kd * g.dD
                    for kh in h0..<h1 {
                        let rowStart = (id * g.inH + hBase + kh * g.dH) * g.inW + wBase
                        for kw in w0..<w1 {
                            let i = rowStart + kw * g.dW
                            let v = x[i]
                            if v > best || (v.isNaN && !best.isNaN) || bestIndex < 0 {
                                best = v
                                bestIndex = i
                            }
                        }
                    }
                }
                y[out] = best
                argmax?[out] = Int32(bestIndex)
                out += 1
            }
        }
    }
}

/// Max pooling's gradient: each output gradient goes to the element its forward chose.
/// dy, argmax: [outD, outH, outW]; dx: [inD, inH, inW], accumulated into.
public func maxPoolBackward(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<Int32>,
                            _ dx: UnsafeMutablePointer<Float>, outputCount: Int) {
    for o in 0..<outputCount {
        let i = Int(argmax[o])
        if i >= 0 { dx[i] += dy[o] }
    }
}

/// The divisor of one average-pooling window: the positions inside the padded input when
/// `countIncludePad` (a ceil_mode window hanging past the end padding does not count them,
/// as in PyTorch and ONNX), else only the positions inside the input.
@inlinable
func averageDivisor(_ od: Int, _ oh: Int, _ ow: Int, _ g: WindowGeometry, countIncludePad: Bool,
                    valid: Int) -> Int {
    if !countIncludePad { return valid }
    // Padded coordinate of window element k is o*s + k*d, inside [0, in + padBegin + padEnd).
    let (d0, d1) = validRange(offset: od * g.sD, stride: g.dD, limit: g.inD + g.pD + g.pDEnd, count: g.kD)
    let (h0, h1) = validRange(offset: oh * g.sH, stride: g.dH, limit: g.inH + g.pH + g.pHEnd, count: g.kH)
    let (w0, w1) = validRange(offset: ow * g.sW, stride: g.dW, limit: g.inW + g.pW + g.pWEnd, count: g.kW)
    return (d1 - d0) * (h1 - h0) * (w1 - w0)
}

/// Average pooling of one plane. x: [inD, inH, inW]; y: [outD, outH, outW].
public func averagePoolForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               _ g: WindowGeometry, countIncludePad: Bool) {
    var out = 0
    for od in 0..<g.outD {
        let (d0, d1) = windowRange(od, stride: g.sD, pad: g.pD, dilation: g.dD, input: g.inD, kernel: g.kD)
        let dBase = od * g.sD - g.pD
        for oh in 0..<g.outH {
            let (h0, h1) = windowRange(oh, stride: g.sH, pad: g.pH, dilation: g.dH, input: g.inH, kernel: g.kH)
            let hBase = oh * g.sH - g.pH
            for ow in 0..<g.outW {
                let (w0, w1) = windowRange(ow, stride: g.sW, pad: g.pW, dilation: g.dW, input: g.inW, kernel: g.kW)
                let wBase = ow * g.sW - g.pW
                var sum: Float = 0
                for kd in d0..<d1 {
                    let id = dBase + kd * g.dD
                    for kh in h0..<h1 {
                        let rowStart = (id * g.inH + hBase + kh * g.dH) * g.inW + wBase
                        for kw in w0..<w1 { sum += x[rowStart + kw * g.dW] }
                    }
                }
                let valid = (d1 - d0) * (h1 - h0) * (w1 - w0)
                let divisor = averageDivisor(od, oh, ow, g, countIncludePad: countIncludePad, valid: valid)
                y[out] = divisor > 0 ? sum / Float(divisor) : 0
                out += 1
            }
        }
    }
}

/// Average pooling's gradient: each output gradient is shared equally (by the forward
/// divisor) among the input elements of its window. dy: [outD, outH, outW]; dx: [inD, inH,
/// inW], accumulated into.
public func averagePoolBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                _ g: WindowGeometry, countIncludePad: Bool) {
    var out = 0
    for od in 0..<g.outD {
        let (d0, d1) = windowRange(od, stride: g.sD, pad: g.pD, dilation: g.dD, input: g.inD, kernel: g.kD)
        let dBase = od * g.sD - g.pD
        for oh in 0..<g.outH {
            let (h0, h1) = windowRange(oh, stride: g.sH, pad: g.pH, dilation: g.dH, input: g.inH, kernel: g.kH)
            let hBase = oh * g.sH - g.pH
            for ow in 0..<g.outW {
                let (w0, w1) = windowRange(ow, stride: g.sW, pad: g.pW, dilation: g.dW, input: g.inW, kernel: g.kW)
                let wBase = ow * g.sW - g.pW
                let valid = (d1 - d0) * (h1 - h0) * (w1 - w0)
                let divisor = averageDivisor(od, oh, ow, g, countIncludePad: countIncludePad, valid: valid)
                if divisor > 0 {
                    let share = dy[out] / Float(divisor)
                    for kd in d0..<d1 {
                        let id = dBase + kd * g.dD
                        for kh in h0..<h1 {
                            let rowStart = (id * g.inH + hBase + kh * g.dH) * g.inW + wBase
                            for kw in w0..<w1 { dx[rowStart + kw * g.dW] += share }
                        }
                    }
                }
                out += 1
            }
        }
    }
}
