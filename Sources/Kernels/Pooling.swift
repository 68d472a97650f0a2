// Max and average pooling over one [inD, inH, inW] plane, forward and backward. Offsets inside a
// plane are far from Int's range, so the inner loops use wrapping arithmetic (no overflow checks
// in the way of vectorizing).

import _CKernels

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
                            let i = rowStart &+ kw &* g.dW
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

/// The pick of `maxPoolForward`'s scan: `v` replaces the running maximum `m` when it is
/// larger, or NaN while `m` is not (so the first maximum in scan order stays, NaN wins).
/// NaN is tested as `v != v`: plain compares vectorize, `isNaN` did not (twice the time).
@inline(__always)
func maxPoolPick(_ m: Float, _ v: Float) -> Float {
    v > m || (v != v && m == m) ? v : m
}

/// Whether `maxPool2DForward` handles `g`: one depth slice (1-D and 2-D pools) and no dilation.
public func maxPool2DApplies(_ g: WindowGeometry) -> Bool {
    g.inD == 1 && g.kD == 1 && g.outD == 1 && g.dD == 1 && g.dH == 1 && g.dW == 1
}

/// Max pooling of one [inH, inW] plane with no dilation and no argmax (inference): the same
/// bits as `maxPoolForward`, since every output sees its window in the same scan order with
/// the same pick. Per window row, the output columns whose window lies inside the input row
/// run as one branch-free loop over the output row; only the edge columns check bounds.
/// Requires `maxPool2DApplies(g)`.
public func maxPool2DForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: WindowGeometry) {
    let inW = g.inW, outW = g.outW, kW = g.kW, sW = g.sW, pW = g.pW
    // Interior columns [wLo, wHi): ow*sW - pW >= 0 and ow*sW - pW + kW <= inW.
    let wLo = min(outW, (pW + sW - 1) / sW)
    let wHi = inW - kW + pW < 0 ? wLo : max(wLo, min(outW, (inW - kW + pW) / sW + 1))
    let interior = wHi - wLo
    for oh in 0..<g.outH {
        let yRow = y + oh * outW
        for ow in 0..<outW { yRow[ow] = -Float.infinity }
        let (h0, h1) = windowRange(oh, stride: g.sH, pad: g.pH, dilation: 1, input: g.inH, kernel: g.kH)
        let hBase = oh * g.sH - g.pH
        for kh in h0..<h1 {
            let row = x + (hBase + kh) * inW
            for ow in 0..<wLo { maxPoolEdgeColumn(row, yRow, ow, g) }
            for ow in wHi..<outW { maxPoolEdgeColumn(row, yRow, ow, g) }
            if interior == 0 { continue }
            let yInterior = yRow + wLo
            let r = row + (wLo * sW - pW)
            if kW == 3 && sW == 2 {
                // The stem's 3x3 stride-2 pool: one pass per window row, kw in scan order (C,
                // 8 outputs per vector).
                manet_max3_stride2(yInterior, r, interior)
                continue
            }
            if kW == 3 && sW == 1 {
                for i in 0..<interior {
                    yInterior[i] = maxPoolPick(maxPoolPick(maxPoolPick(yInterior[i], r[i]), r[i &+ 1]), r[i &+ 2])
                }
                continue
            }
            // Other windows: one pass per window element, kw in scan order.
            for kw in 0..<kW {
                let rk = r + kw
                // Constant strides let the compiler vectorize the common cases.
                switch sW {
                case 1: for i in 0..<interior { yInterior[i] = maxPoolPick(yInterior[i], rk[i]) }
                case 2: for i in 0..<interior { yInterior[i] = maxPoolPick(yInterior[i], rk[2 &* i]) }
                default: for i in 0..<interior { yInterior[i] = maxPoolPick(yInterior[i], rk[sW &* i]) }
                }
            }
        }
    }
}

/// Max pooling of one [inH, inW] plane with its argmax (training): `maxPool2DForward`'s passes,
/// each output keeping the plane offset of the element it holds, replaced together with it (and
/// while none is held yet, so a window of -inf alone keeps its first element). Every output sees
/// its window in scan order, so y has `maxPool2DForward`'s bits and the argmax is
/// `maxPoolForward`'s: the first maximum in scan order, the first NaN, -1 for a window with no
/// element. Requires `maxPool2DApplies(g)`.
public func maxPool2DForwardArgmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   _ argmax: UnsafeMutablePointer<Int32>, _ g: WindowGeometry) {
    let inW = g.inW, outW = g.outW, kW = g.kW, sW = g.sW, pW = g.pW
    let wLo = min(outW, (pW + sW - 1) / sW)
    let wHi = inW - kW + pW < 0 ? wLo : max(wLo, min(outW, (inW - kW + pW) / sW + 1))
    let interior = wHi - wLo
    for oh in 0..<g.outH {
        let yRow = y + oh * outW, aRow = argmax + oh * outW
        for ow in 0..<outW {
            yRow[ow] = -Float.infinity
            aRow[ow] = -1
        }
        let (h0, h1) = windowRange(oh, stride: g.sH, pad: g.pH, dilation: 1, input: g.inH, kernel: g.kH)
        let hBase = oh * g.sH - g.pH
        for kh in h0..<h1 {
            let rowStart = (hBase + kh) * inW
            let row = x + rowStart
            for ow in 0..<wLo { maxPoolEdgeColumn(row, rowStart, yRow, aRow, ow, g) }
            for ow in wHi..<outW { maxPoolEdgeColumn(row, rowStart, yRow, aRow, ow, g) }
            if interior == 0 { continue }
            let yInterior = yRow + wLo, aInterior = aRow + wLo
            let start = wLo &* sW &- pW
            if kW == 3 && sW == 2 {
                manet_max3_stride2_argmax(yInterior, aInterior, row + start, Int32(rowStart + start), interior)
                continue
            }
            for kw in 0..<kW {
                for i in 0..<interior {
                    let at = start &+ sW &* i &+ kw
                    let v = row[at], m = yInterior[i]
                    if v > m || (v != v && m == m) || aInterior[i] < 0 {
                        yInterior[i] = v
                        aInterior[i] = Int32(truncatingIfNeeded: rowStart &+ at)
                    }
                }
            }
        }
    }
}

/// One window row of an edge output column (its window crosses the row's start or end), keeping
/// the index of the pick; `rowStart` is the row's plane offset.
@inline(__always)
func maxPoolEdgeColumn(_ row: UnsafePointer<Float>, _ rowStart: Int, _ yRow: UnsafeMutablePointer<Float>,
                       _ aRow: UnsafeMutablePointer<Int32>, _ ow: Int, _ g: WindowGeometry) {
    let (w0, w1) = windowRange(ow, stride: g.sW, pad: g.pW, dilation: 1, input: g.inW, kernel: g.kW)
    let wBase = ow * g.sW - g.pW
    var best = yRow[ow], index = aRow[ow]
    for kw in w0..<w1 {
        let v = row[wBase &+ kw]
        if v > best || (v != v && best == best) || index < 0 {
            best = v
            index = Int32(truncatingIfNeeded: rowStart &+ wBase &+ kw)
        }
    }
    yRow[ow] = best
    aRow[ow] = index
}

/// One window row of an edge output column (its window crosses the row's start or end).
@inline(__always)
func maxPoolEdgeColumn(_ row: UnsafePointer<Float>, _ yRow: UnsafeMutablePointer<Float>, _ ow: Int, _ g: WindowGeometry) {
    let (w0, w1) = windowRange(ow, stride: g.sW, pad: g.pW, dilation: 1, input: g.inW, kernel: g.kW)
    let wBase = ow * g.sW - g.pW
    var best = yRow[ow]
    for kw in w0..<w1 { best = maxPoolPick(best, row[wBase &+ kw]) }
    yRow[ow] = best
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
                        for kw in w0..<w1 { sum += x[rowStart &+ kw &* g.dW] }
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
                            for kw in w0..<w1 { dx[rowStart &+ kw &* g.dW] += share }
                        }
                    }
                }
                out += 1
            }
        }
    }
}
