// Compares one output tensor with its reference the way numpy.allclose does, and explains the gap.

import Foundation
import ONNXIR

/// `|actual - reference| <= atol + rtol * |reference|` per element (numpy's `allclose`).
public struct Tolerance: Codable, Equatable, Sendable {
    public var rtol: Double
    public var atol: Double

    public init(rtol: Double, atol: Double) {
        self.rtol = rtol
        self.atol = atol
    }

    /// The project's default: loose enough for a different summation order in float32 kernels.
    public static let standard = Tolerance(rtol: 1e-3, atol: 1e-5)
    /// torch.testing's float32 defaults.
    public static let strict = Tolerance(rtol: 1.3e-6, atol: 1e-5)
}

/// How one output compares with its reference.
public struct OutputComparison: Codable, Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var referenceShape: [Int]
    public var elementCount: Int
    public var maxAbsDiff: Double
    /// Max of `|a - r| / |r|` over all elements; infinite when a zero reference was missed.
    public var maxRelDiff: Double
    /// Elements outside the tolerance.
    public var mismatches: Int
    /// The element furthest outside (or closest to leaving) the tolerance: the largest
    /// `|a - r| / (atol + rtol * |r|)`. `nil` for empty tensors.
    public var worstIndex: [Int]?
    public var worstActual: Double?
    public var worstReference: Double?
    /// The smallest atol that passes with this rtol: `max(|a - r| - rtol * |r|, 0)`.
    public var smallestPassingAtol: Double
    /// The smallest rtol that passes with this atol: `max((|a - r| - atol) / |r|, 0)`; infinite
    /// when some element misses a zero reference by more than atol (no rtol can help there).
    public var smallestPassingRtol: Double
    /// For 2-D `[N, C]` float outputs (logits or probabilities): rows whose argmax agrees.
    public var top1Agreement: Top1?
    /// Why the output could not be compared element by element (shape or type disagreement).
    public var problem: String?

    public struct Top1: Codable, Equatable, Sendable {
        public var agreeing: Int
        public var rows: Int
    }

    public var passed: Bool { problem == nil && mismatches == 0 }
}

/// Tensor contents as doubles, for comparison of any numeric element type.
public func doubleValues(_ t: TensorData) -> [Double]? {
    guard let count = t.elementCount, let size = t.elementType.byteSize, t.bytes.count == count * size else { return nil }
    return t.bytes.withUnsafeBytes { raw -> [Double]? in
        func load<T>(_: T.Type, _ convert: (T) -> Double) -> [Double] {
            (0..<count).map { convert(raw.loadUnaligned(fromByteOffset: $0 * size, as: T.self)) }
        }
        switch t.elementType {
        case .float: return load(UInt32.self) { Double(Float(bitPattern: UInt32(littleEndian: $0))) }
        case .double: return load(UInt64.self) { Double(bitPattern: UInt64(littleEndian: $0)) }
        case .float16: return load(UInt16.self) { Double(Float(Float16(bitPattern: UInt16(littleEndian: $0)))) }
        case .bfloat16: return load(UInt16.self) { Double(Float(bitPattern: UInt32(UInt16(littleEndian: $0)) << 16)) }
        case .int64: return load(Int64.self) { Double(Int64(littleEndian: $0)) }
        case .int32: return load(Int32.self) { Double(Int32(littleEndian: $0)) }
        case .int16: return load(Int16.self) { Double(Int16(littleEndian: $0)) }
        case .int8: return load(Int8.self) { Double($0) }
        case .uint8, .bool: return load(UInt8.self) { Double($0) }
        case .uint16: return load(UInt16.self) { Double(UInt16(littleEndian: $0)) }
        case .uint32: return load(UInt32.self) { Double(UInt32(littleEndian: $0)) }
        case .uint64: return load(UInt64.self) { Double(UInt64(littleEndian: $0)) }
        case .string, .complex64, .complex128: return nil
        }
    }
}

/// The multi-index of a flat row-major offset.
func multiIndex(_ offset: Int, shape: [Int]) -> [Int] {
    var index = [Int](repeating: 0, count: shape.count)
    var rest = offset
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        index[d] = rest % shape[d]
        rest /= shape[d]
    }
    return index
}

/// Element types that compare as numbers of the same kind (a float32 output against a float64
/// reference is fine; a float against an int is a type disagreement).
func isFloating(_ t: ElementType) -> Bool { [.float, .double, .float16, .bfloat16].contains(t) }

/// Compares `actual` with `reference` under `tolerance`.
public func compare(name: String, actual: TensorData, reference: TensorData, tolerance: Tolerance) -> OutputComparison {
    var result = OutputComparison(name: name, shape: actual.dims, referenceShape: reference.dims,
                                  elementCount: reference.elementCount ?? 0, maxAbsDiff: 0, maxRelDiff: 0,
                                  mismatches: 0, smallestPassingAtol: 0, smallestPassingRtol: 0)
    guard actual.dims == reference.dims else {
        result.problem = "shape \(actual.dims) differs from the reference's \(reference.dims)"
        result.mismatches = result.elementCount
        return result
    }
    guard isFloating(actual.elementType) == isFloating(reference.elementType) else {
        result.problem = "element type \(actual.elementType) differs in kind from the reference's \(reference.elementType)"
        result.mismatches = result.elementCount
        return result
    }
    guard let a = doubleValues(actual), let r = doubleValues(reference) else {
        result.problem = "element type \(reference.elementType) cannot be compared numerically"
        result.mismatches = result.elementCount
        return result
    }
    var worstScore = -1.0, worst = -1
    for k in 0..<r.count {
        let x = a[k], y = r[k]
        var diff: Double
        if x.isNaN || y.isNaN {
            // NaN matches NaN (as numpy.testing.assert_allclose, which ONNX's own backend tests
            // use); NaN against a number is an infinite difference.
            diff = (x.isNaN && y.isNaN) ? 0 : .infinity
        } else if x.isInfinite || y.isInfinite {
            diff = x == y ? 0 : .infinity
        } else {
            diff = abs(x - y)
        }
        let magnitude = y.isFinite ? abs(y) : 0
        let allowed = tolerance.atol + tolerance.rtol * magnitude
        if !(diff <= allowed) { result.mismatches += 1 }
        result.maxAbsDiff = max(result.maxAbsDiff, diff)
        if diff > 0 { result.maxRelDiff = max(result.maxRelDiff, magnitude > 0 ? diff / magnitude : .infinity) }
        result.smallestPassingAtol = max(result.smallestPassingAtol, diff - tolerance.rtol * magnitude)
        if diff > tolerance.atol {
            result.smallestPassingRtol = max(result.smallestPassingRtol, magnitude > 0 ? (diff - tolerance.atol) / magnitude : .infinity)
        }
        let score = allowed > 0 ? diff / allowed : (diff > 0 ? .infinity : 0)
        if score > worstScore { worstScore = score; worst = k }
    }
    if worst >= 0 {
        result.worstIndex = multiIndex(worst, shape: reference.dims)
        result.worstActual = a[worst]
        result.worstReference = r[worst]
    }
    if reference.dims.count == 2, isFloating(reference.elementType), reference.dims[1] > 1 {
        let rows = reference.dims[0], columns = reference.dims[1]
        var agreeing = 0
        for row in 0..<rows {
            let base = row * columns
            func argmax(_ v: [Double]) -> Int {
                var best = base
                for c in base..<(base + columns) where v[c] > v[best] { best = c }
                return best
            }
            if argmax(a) == argmax(r) { agreeing += 1 }
        }
        result.top1Agreement = .init(agreeing: agreeing, rows: rows)
    }
    return result
}
