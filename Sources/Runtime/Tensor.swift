// The runtime's tensor: float32 values for compute, int64 for shapes and indices.

import ONNXIR

/// Element types the runtime computes with. Other ONNX types are converted on load when the
/// conversion is exact, and refused otherwise (see `Tensor.init(_ data: TensorData)`).
public enum DType: Sendable, Equatable, CustomStringConvertible {
    case float32
    case int64

    public var description: String { self == .float32 ? "float" : "int64" }
    public var onnxType: ElementType { self == .float32 ? .float : .int64 }
}

/// A dense, row-major tensor. Exactly one of `floats` / `ints` holds the data, chosen by
/// `dtype`; arrays keep copy-on-write value semantics and give kernels contiguous buffers.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public let dtype: DType
    /// The elements when `dtype == .float32`, else empty.
    public var floats: [Float]
    /// The elements when `dtype == .int64`, else empty.
    public var ints: [Int64]

    public var count: Int { dtype == .float32 ? floats.count : ints.count }
    public var rank: Int { shape.count }

    /// A float tensor; `values.count` must equal the product of `shape`.
    public init(shape: [Int], floats values: [Float]) {
        precondition(ShapeMath.elementCount(shape) == values.count, "shape \(shape) disagrees with \(values.count) values")
        self.shape = shape
        self.dtype = .float32
        self.floats = values
        self.ints = []
    }

    /// An int64 tensor; `values.count` must equal the product of `shape`.
    public init(shape: [Int], ints values: [Int64]) {
        precondition(ShapeMath.elementCount(shape) == values.count, "shape \(shape) disagrees with \(values.count) values")
        self.shape = shape
        self.dtype = .int64
        self.floats = []
        self.ints = values
    }

    /// A zero-filled tensor.
    public init(zeros shape: [Int], dtype: DType = .float32) {
        let n = ShapeMath.elementCount(shape) ?? 0
        if dtype == .float32 {
            self.init(shape: shape, floats: [Float](repeating: 0, count: n))
        } else {
            self.init(shape: shape, ints: [Int64](repeating: 0, count: n))
        }
    }

    /// A float scalar (rank 0).
    public init(scalar: Float) { self.init(shape: [], floats: [scalar]) }

    /// The same elements seen with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(ShapeMath.elementCount(newShape) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Element strides of a row-major tensor of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }
}

extension Tensor {
    /// Converts ONNX tensor contents to a runtime tensor. Float-like types become float32
    /// (float16 and bfloat16 exactly; double only when every value is exactly representable),
    /// integer and bool types become int64. Strings and complex numbers are refused.
    public init(_ data: TensorData) throws {
        guard let count = data.elementCount else {
            throw RuntimeError.invalidTensor(name: data.name, reason: "dims \(data.dims) are negative or overflow")
        }
        if data.elementType != .string, let size = data.elementType.byteSize, data.bytes.count != count * size {
            throw RuntimeError.invalidTensor(name: data.name, reason: "\(data.bytes.count) bytes for \(count) elements of \(data.elementType)")
        }
        let dims = data.dims
        func load<T>(_ type: T.Type, _ size: Int) -> [T] {
            data.bytes.withUnsafeBytes { raw in
                (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * size, as: T.self) }
            }
        }
        switch data.elementType {
        case .float:
            self.init(shape: dims, floats: load(UInt32.self, 4).map { Float(bitPattern: UInt32(littleEndian: $0)) })
        case .float16:
            self.init(shape: dims, floats: load(UInt16.self, 2).map { Float(Float16(bitPattern: UInt16(littleEndian: $0))) })
        case .bfloat16:
            self.init(shape: dims, floats: load(UInt16.self, 2).map { Float(bitPattern: UInt32(UInt16(littleEndian: $0)) << 16) })
        case .double:
            let doubles = load(UInt64.self, 8).map { Double(bitPattern: UInt64(littleEndian: $0)) }
            var floats = [Float](repeating: 0, count: count)
            for (i, d) in doubles.enumerated() {
                let f = Float(d)
                guard Double(f) == d || d.isNaN else {
                    throw RuntimeError.invalidTensor(name: data.name, reason: "double value \(d) at index \(i) is not exactly representable as float32")
                }
                floats[i] = f
            }
            self.init(shape: dims, floats: floats)
        case .int64:
            self.init(shape: dims, ints: load(Int64.self, 8).map { Int64(littleEndian: $0) })
        case .int32:
            self.init(shape: dims, ints: load(Int32.self, 4).map { Int64(Int32(littleEndian: $0)) })
        case .int16:
            self.init(shape: dims, ints: load(Int16.self, 2).map { Int64(Int16(littleEndian: $0)) })
        case .int8:
            self.init(shape: dims, ints: load(Int8.self, 1).map { Int64($0) })
        case .uint8, .bool:
            self.init(shape: dims, ints: load(UInt8.self, 1).map { Int64($0) })
        case .uint16:
            self.init(shape: dims, ints: load(UInt16.self, 2).map { Int64(UInt16(littleEndian: $0)) })
        case .uint32:
            self.init(shape: dims, ints: load(UInt32.self, 4).map { Int64(UInt32(littleEndian: $0)) })
        case .uint64:
            let values = load(UInt64.self, 8).map { UInt64(littleEndian: $0) }
            guard values.allSatisfy({ $0 <= UInt64(Int64.max) }) else {
                throw RuntimeError.invalidTensor(name: data.name, reason: "uint64 value does not fit int64")
            }
            self.init(shape: dims, ints: values.map { Int64($0) })
        case .string, .complex64, .complex128:
            throw RuntimeError.unsupportedType(name: data.name, type: data.elementType.description)
        }
    }

    /// The tensor as ONNX contents (float32 or int64), named `name`.
    public func tensorData(name: String = "") -> TensorData {
        dtype == .float32 ? TensorData(name: name, dims: shape, floats: floats)
                          : TensorData(name: name, dims: shape, int64s: ints)
    }
}
