// The shared body of Add, Sub, Mul and Div: input checks, broadcasting, shape inference.

import Kernels
import ONNXIR

/// A two-argument element formula as a type. Kernels that run it inside a parallel loop body
/// take it this way, so that they are specialized on it and the formula is inlined into the
/// loop (a closure captured by that body would be an indirect call per element).
protocol ElementFormula {
    associatedtype Element
    func callAsFunction(_ a: Element, _ b: Element) -> Element
    /// `acc` combined with x[0], x[1], ..., x[count - 1] in that order (a reduction's run).
    func fold(_ acc: Element, _ x: UnsafePointer<Element>, _ count: Int) -> Element
}

extension ElementFormula {
    @inline(__always)
    func fold(_ acc: Element, _ x: UnsafePointer<Element>, _ count: Int) -> Element {
        var a = acc
        for k in 0..<count { a = self(a, x[k]) }
        return a
    }
}

/// A closure as a formula, for callers that run on one thread.
struct ClosureFormula<Element>: ElementFormula {
    let f: (Element, Element) -> Element
    @inline(__always) func callAsFunction(_ a: Element, _ b: Element) -> Element { f(a, b) }
}

/// a + b
struct FloatSum: ElementFormula {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b }
}

/// a * b
struct FloatProduct: ElementFormula {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b }
}

/// Helpers for the four broadcasting arithmetic operators, which differ only in their
/// element formula and its derivative (kept in each operator's own file).
enum BinaryElementwise {
    /// Output type and (broadcast) shape; int64 constants are folded so that index arithmetic
    /// exported by PyTorch (Shape -> Gather -> Div -> Concat -> Reshape) stays constant.
    static func inferShapes<Op: Operator>(_ op: Op, _ inputs: [ValueShape?], _ label: NodeLabel) throws -> [ValueShape] {
        guard inputs.count == 2, let a = inputs[0], let b = inputs[1] else { throw label.error("expected 2 inputs") }
        guard a.dtype == b.dtype else { throw label.error("input types differ: \(a.dtype) and \(b.dtype)") }
        if a.dtype == .int64, let folded = try op.foldConstants(inputs) { return folded }
        guard let da = a.dims, let db = b.dims else { return [ValueShape(dtype: a.dtype, dims: nil)] }
        guard let dims = Broadcast.shape(da, db) else {
            throw label.error("shapes \(da.map { $0.map(String.init) ?? "?" }) and \(db.map { $0.map(String.init) ?? "?" }) cannot be broadcast")
        }
        return [ValueShape(dtype: a.dtype, dims: dims)]
    }

    /// Both inputs, checked to share an element type, and their broadcast shape.
    static func operands(_ inputs: [Tensor?], _ label: NodeLabel) throws -> (Tensor, Tensor, [Int]) {
        try label.checkCount(inputs, 2...2)
        let a = try label.required(inputs, 0), b = try label.required(inputs, 1)
        guard a.dtype == b.dtype else { throw label.error("input types differ: \(a.dtype) and \(b.dtype)") }
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            throw label.error("shapes \(a.shape) and \(b.shape) cannot be broadcast")
        }
        return (a, b, shape)
    }

    /// out[o] = f(a[ia], b[ib]) over the broadcast shape. After collapsing dims
    /// (`Broadcast.collapsed`), each run along the innermost dim is one loop the compiler can
    /// vectorize (same shapes, or one operand per-channel / per-position constant along it), and
    /// large outputs split those runs over `threads` (each element is written once, so the
    /// bits do not depend on the thread count).
    @inline(__always)
    static func apply<F: ElementFormula>(_ a: [F.Element], _ aShape: [Int], _ b: [F.Element], _ bShape: [Int], _ shape: [Int],
                                         threads: Int, _ f: F) -> [F.Element] {
        typealias T = F.Element
        let n = ShapeMath.elementCount(shape) ?? 0
        guard n > 0 else { return [] }
        let (dims, sa, sb) = Broadcast.collapsed(shape, Broadcast.strides(of: aShape, in: shape),
                                                 Broadcast.strides(of: bShape, in: shape))
        let rank = dims.count, inner = dims[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                [T](unsafeUninitializedCapacity: n) { out, count in
                    let po = out.baseAddress!, xa = pa.baseAddress!, xb = pb.baseAddress!
                    if inner < 16 {
                        // Short runs: the odometer's per-element walk costs less than per-run setup.
                        Broadcast.forEach(dims, sa, sb) { o, i, j in (po + o).initialize(to: f(xa[i], xb[j])) }
                    } else {
                        let rows = n / inner
                        let workers = n >= parallelElements ? max(1, min(threads, rows)) : 1
                        parallelFor(workers, threads: workers) { w in
                            // Worker w takes rows [lo, hi), a static split.
                            let lo = rows * w / workers, hi = rows * (w + 1) / workers
                            for r in lo..<hi {
                                let (oa, ob) = rowOffsets(r, dims, sa, sb)
                                run(po + r * inner, xa + oa, ia, xb + ob, ib, inner, f)
                            }
                        }
                    }
                    count = n
                }
            }
        }
    }

    /// The same with the formula as a closure, on one thread.
    @inline(__always)
    static func apply<T>(_ a: [T], _ aShape: [Int], _ b: [T], _ bShape: [Int], _ shape: [Int],
                         _ f: (T, T) -> T) -> [T] {
        withoutActuallyEscaping(f) { apply(a, aShape, b, bShape, shape, threads: 1, ClosureFormula(f: $0)) }
    }

    /// Outputs at least this large split over threads (smaller ones cost less than a dispatch).
    static let parallelElements = 1 << 15

    /// One innermost run: out[k] = f(a[k * ia], b[k * ib]), with the contiguous and the
    /// broadcast-scalar cases as separate loops.
    @inline(__always)
    static func run<F: ElementFormula>(_ out: UnsafeMutablePointer<F.Element>, _ a: UnsafePointer<F.Element>, _ ia: Int,
                                       _ b: UnsafePointer<F.Element>, _ ib: Int, _ count: Int, _ f: F) {
        switch (ia, ib) {
        case (1, 1): for k in 0..<count { (out + k).initialize(to: f(a[k], b[k])) }
        case (0, 1):
            let s = a[0]
            for k in 0..<count { (out + k).initialize(to: f(s, b[k])) }
        case (1, 0):
            let s = b[0]
            for k in 0..<count { (out + k).initialize(to: f(a[k], s)) }
        default: for k in 0..<count { (out + k).initialize(to: f(a[k * ia], b[k * ib])) }
        }
    }

    /// The offsets into a and b of row `r` (all dims of the collapsed broadcast `dims` but the
    /// innermost): its outer index, digit by digit, times each operand's strides.
    @inline(__always)
    static func rowOffsets(_ r: Int, _ dims: [Int], _ sa: [Int], _ sb: [Int]) -> (a: Int, b: Int) {
        var rest = r, oa = 0, ob = 0
        for d in stride(from: dims.count - 2, through: 0, by: -1) {
            let i = rest % dims[d]
            rest /= dims[d]
            oa += i * sa[d]
            ob += i * sb[d]
        }
        return (oa, ob)
    }

    /// The gradients of a broadcasting binary op: `dA[ia] += fa(g, a, b)`, `dB[ib] += fb(g, a, b)`,
    /// summed over every output element — the reduction to each input's shape in one pass.
    /// Inlined into each operator's backward so that `fa` and `fb` are inlined into the loop
    /// (called through closure pointers, they cost a call per element and block vectorization).
    /// Every gradient element adds its terms in the output's row-major order, whatever the
    /// path: after collapsing dims (`Broadcast.collapsed`), the outermost dim is split over
    /// `threads` when neither wanted gradient is broadcast along it (its indices then touch
    /// disjoint gradient elements), and each innermost run is one loop: elementwise where the
    /// operand is not broadcast along it (vectorizable), an in-order sum where it is.
    @inline(__always)
    static func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ label: NodeLabel, threads: Int,
                         _ fa: (Float, Float, Float) -> Float,
                         _ fb: (Float, Float, Float) -> Float) throws -> [Tensor?] {
        let wantA = needsGradient.count > 0 && needsGradient[0]
        let wantB = needsGradient.count > 1 && needsGradient[1]
        guard wantA || wantB else { return [nil, nil] }
        let a = try recorded(record, 0, label), b = try recorded(record, 1, label)
        guard a.dtype == .float32 else { return [nil, nil] }
        guard let shape = Broadcast.shape(a.shape, b.shape) else { throw label.error("shapes \(a.shape) and \(b.shape) cannot be broadcast") }
        let g = gradient(gradOutputs, 0, shape: shape)
        var da = [Float](repeating: 0, count: wantA ? a.count : 0)
        var db = [Float](repeating: 0, count: wantB ? b.count : 0)
        let n = ShapeMath.elementCount(shape) ?? 0
        if n > 0 {
            let (dims, sa, sb) = Broadcast.collapsed(shape, Broadcast.strides(of: a.shape, in: shape),
                                                     Broadcast.strides(of: b.shape, in: shape))
            let rank = dims.count, inner = dims[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
            let outer = rank > 1 ? dims[0] : 1
            let splittable = rank > 1 && (sa[0] != 0 || !wantA) && (sb[0] != 0 || !wantB)
            let workers = splittable && n >= parallelElements ? max(1, min(threads, outer)) : 1
            a.floats.withUnsafeBufferPointer { pa in
            b.floats.withUnsafeBufferPointer { pb in
            g.withUnsafeBufferPointer { pg in
            da.withUnsafeMutableBufferPointer { pda in
            db.withUnsafeMutableBufferPointer { pdb in
                let xa = pa.baseAddress!, xb = pb.baseAddress!, xg = pg.baseAddress!
                let ga = pda.baseAddress, gb = pdb.baseAddress
                let rows = n / inner, rowsPerOuter = rows / outer
                parallelFor(workers, threads: workers) { w in
                    // Worker w takes the outermost indices [lo, hi): whole rows, in order.
                    let lo = outer * w / workers, hi = outer * (w + 1) / workers
                    for r in (lo * rowsPerOuter)..<(hi * rowsPerOuter) {
                        let (oa, ob) = rowOffsets(r, dims, sa, sb)
                        let rg = xg + r * inner, ra = xa + oa, rb = xb + ob
                        if wantA { gradientRun(ga! + oa, ia, rg, ra, ia, rb, ib, inner, fa) }
                        if wantB { gradientRun(gb! + ob, ib, rg, ra, ia, rb, ib, inner, fb) }
                    }
                }
            }}}}}
        }
        return [wantA ? Tensor(shape: a.shape, floats: da) : nil,
                wantB ? Tensor(shape: b.shape, floats: db) : nil]
    }

    /// One innermost run of a gradient: out[k * io] += f(g[k], a[k * ia], b[k * ib]) for k in
    /// order; a broadcast run (io = 0) is one in-order sum into out[0].
    @inline(__always)
    static func gradientRun(_ out: UnsafeMutablePointer<Float>, _ io: Int, _ g: UnsafePointer<Float>,
                            _ a: UnsafePointer<Float>, _ ia: Int, _ b: UnsafePointer<Float>, _ ib: Int, _ count: Int,
                            _ f: (Float, Float, Float) -> Float) {
        if io == 0 {
            var s = out[0]
            for k in 0..<count { s += f(g[k], a[k &* ia], b[k &* ib]) }
            out[0] = s
            return
        }
        switch (io, ia, ib) {
        case (1, 1, 1): for k in 0..<count { out[k] += f(g[k], a[k], b[k]) }
        case (1, 1, 0):
            let s = b[0]
            for k in 0..<count { out[k] += f(g[k], a[k], s) }
        case (1, 0, 1):
            let s = a[0]
            for k in 0..<count { out[k] += f(g[k], s, b[k]) }
        default: for k in 0..<count { out[k &* io] += f(g[k], a[k &* ia], b[k &* ib]) }
        }
    }
}
