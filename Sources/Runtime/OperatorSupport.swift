// Helpers every operator file uses: node-named errors, input checks, axes, constant folding.

import ONNXIR

/// The node an operator was configured for, kept so that run-time errors can name it.
public struct NodeLabel: Sendable, Equatable {
    public let name: String
    public let opType: String

    public init(_ node: Node) {
        name = node.name
        opType = node.opType
    }

    /// An `invalidInput` error about this node.
    public func error(_ reason: String) -> RuntimeError {
        .invalidInput(node: name, opType: opType, reason: reason)
    }

    /// An `invalidAttribute` error about this node.
    public func attributeError(_ attribute: String, _ reason: String) -> RuntimeError {
        .invalidAttribute(node: name, opType: opType, attribute: attribute, reason: reason)
    }

    /// Checks the number of inputs (omitted trailing optional inputs may be absent).
    public func checkCount<T>(_ inputs: [T], _ range: ClosedRange<Int>) throws {
        guard range.contains(inputs.count) else {
            let expected = range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
            throw error("expected \(expected) inputs, got \(inputs.count)")
        }
    }

    /// Input `i`, which must be present.
    public func required(_ inputs: [Tensor?], _ i: Int) throws -> Tensor {
        guard i < inputs.count, let t = inputs[i] else { throw error("input \(i) is required") }
        return t
    }

    /// Input `i`, which must be present and float.
    public func float(_ inputs: [Tensor?], _ i: Int) throws -> Tensor {
        let t = try required(inputs, i)
        guard t.dtype == .float32 else { throw error("input \(i) must be float, got \(t.dtype)") }
        return t
    }

    /// Input `i` if present (an omitted optional input is absent or `nil`).
    public func optional(_ inputs: [Tensor?], _ i: Int) -> Tensor? {
        i < inputs.count ? inputs[i] : nil
    }

    /// The values of an int64 input that holds a list (axes, shape, pads, ...).
    public func intList(_ t: Tensor, _ what: String) throws -> [Int] {
        guard t.dtype == .int64 else { throw error("\(what) must be int64, got \(t.dtype)") }
        guard t.rank <= 1 else { throw error("\(what) must be a scalar or 1-D, got shape \(t.shape)") }
        return t.ints.map { Int(truncatingIfNeeded: $0) }
    }

    /// `axis` in `-rank..<rank` mapped to `0..<rank`.
    public func axis(_ axis: Int, rank: Int, _ what: String = "axis") throws -> Int {
        guard axis >= -rank && axis < rank else {
            throw error("\(what) \(axis) is out of range for rank \(rank)")
        }
        return axis < 0 ? axis + rank : axis
    }

    /// Normalised, duplicate-free axes.
    public func axes(_ list: [Int], rank: Int) throws -> [Int] {
        var seen = Set<Int>()
        var result: [Int] = []
        for a in list {
            let n = try axis(a, rank: rank)
            guard seen.insert(n).inserted else { throw error("axis \(a) is repeated in \(list)") }
            result.append(n)
        }
        return result
    }

    /// Element count of a shape, or an error when dims are negative or overflow.
    public func count(_ shape: [Int]) throws -> Int {
        guard let n = ShapeMath.elementCount(shape) else { throw error("invalid shape \(shape)") }
        return n
    }

    /// Element count of an output shape that input data chose (Expand's target, Pad's pads): an
    /// error naming the node, not a crash, when the count overflows or its bytes exceed the
    /// machine's physical memory, checked before anything is allocated.
    public func allocatableCount(_ shape: [Int], bytesPerElement: Int = 4) throws -> Int {
        guard let n = ShapeMath.elementCount(shape) else {
            throw error("output shape \(shape) has more elements than an Int can count")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: bytesPerElement)
        let memory = PhysicalMemory.bytes
        if overflow || bytes > memory {
            throw error("output shape \(shape) needs \(overflow ? "more than \(Int.max)" : "\(bytes)") bytes, more than this machine's \(memory) bytes of memory")
        }
        return n
    }

    /// `a + b + c` for dims and pads, or an error when it overflows.
    public func sum(_ a: Int, _ b: Int, _ c: Int) throws -> Int {
        let (ab, o1) = a.addingReportingOverflow(b)
        let (abc, o2) = ab.addingReportingOverflow(c)
        guard !o1, !o2 else { throw error("\(a) + \(b) + \(c) overflows") }
        return abc
    }
}

extension Operator {
    /// Shape inference by running forward on constant inputs: shape arithmetic
    /// (Shape -> Gather -> Div -> Concat -> Reshape) stays constant through the graph, so a
    /// Reshape's target is known at load. Returns `nil` unless every present input is a
    /// constant of at most `limit` elements (large float folding is the optimizer's job).
    func foldConstants(_ inputs: [ValueShape?], limit: Int = 4096) throws -> [ValueShape]? {
        var tensors: [Tensor?] = []
        for input in inputs {
            guard let input else { tensors.append(nil); continue }
            guard let c = input.constant, c.count <= limit else { return nil }
            tensors.append(c)
        }
        return try forward(tensors, ExecutionContext(threads: 1)).outputs.map { ValueShape($0) }
    }
}

extension ValueShape {
    /// Fully known dims, or `nil` if the rank or any dim is unknown.
    public var knownDims: [Int]? {
        guard let dims else { return nil }
        var out: [Int] = []
        for d in dims {
            guard let d else { return nil }
            out.append(d)
        }
        return out
    }
}

/// A shape inferred from a known input only in rank: every dim unknown.
func unknownDims(rank: Int?) -> [Int?]? {
    rank.map { [Int?](repeating: nil, count: $0) }
}

/// Shape inference for operators whose output looks like input 0 (activations, Identity).
func sameAsInput0(_ inputs: [ValueShape?], _ label: NodeLabel) throws -> [ValueShape] {
    guard let first = inputs.first, let x = first else { throw label.error("input 0 is required") }
    return [ValueShape(dtype: x.dtype, dims: x.dims)]
}

/// `ForwardRecord.inputs[i]`, which backward needs (the executor keeps it in training mode).
func recorded(_ record: ForwardRecord, _ i: Int, _ label: NodeLabel) throws -> Tensor {
    guard i < record.inputs.count, let t = record.inputs[i] else {
        throw label.error("backward needs input \(i), which the forward record lacks")
    }
    return t
}

/// The gradient of output `i`, zeros of `shape` when none flows back.
func gradient(_ grads: [Tensor?], _ i: Int, shape: [Int]) -> [Float] {
    if i < grads.count, let g = grads[i] { return g.floats }
    return [Float](repeating: 0, count: ShapeMath.elementCount(shape) ?? 0)
}

/// `out[o] = x[base + offset(o)]` where the offset of output index `(i0, i1, ...)` is
/// `sum(ik * strides[k])` (strides may be negative or zero): Slice and Transpose.
func stridedCopy<T>(_ x: [T], base: Int, strides: [Int], shape: [Int]) -> [T] {
    let n = ShapeMath.elementCount(shape) ?? 0
    guard n > 0 else { return [] }
    return x.withUnsafeBufferPointer { px in
        [T](unsafeUninitializedCapacity: n) { out, count in
            Broadcast.forEach(shape, strides, strides) { o, s, _ in (out.baseAddress! + o).initialize(to: px[base + s]) }
            count = n
        }
    }
}

/// The adjoint of `stridedCopy`: adds `g[o]` into a zero buffer of `count` at `base + offset(o)`.
func stridedScatterAdd(_ g: [Float], count: Int, base: Int, strides: [Int], shape: [Int]) -> [Float] {
    var result = [Float](repeating: 0, count: count)
    result.withUnsafeMutableBufferPointer { r in
        g.withUnsafeBufferPointer { pg in
            Broadcast.forEach(shape, strides, strides) { o, s, _ in r[base + s] += pg[o] }
        }
    }
    return result
}

extension Tensor {
    /// `stridedCopy` on whichever element array the tensor uses.
    func strided(base: Int, strides: [Int], shape: [Int]) -> Tensor {
        dtype == .float32
            ? Tensor(shape: shape, floats: stridedCopy(floats, base: base, strides: strides, shape: shape))
            : Tensor(shape: shape, ints: stridedCopy(ints, base: base, strides: strides, shape: shape))
    }
}
