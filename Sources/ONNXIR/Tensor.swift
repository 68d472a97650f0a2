// A tensor value as ONNX stores it: element type, dims, and bytes (or strings).

import Foundation

/// Tensor contents as they appear in a model: an initializer, a `Constant`'s value, a tensor
/// attribute or a test-data `.pb`. Numbers are kept as raw little-endian bytes (ONNX's
/// `raw_data` layout) whatever field the file used, so comparing two tensors compares bytes.
public struct TensorData: Equatable, Sendable {
    public var name: String
    public var elementType: ElementType
    public var dims: [Int]
    /// Raw little-endian element bytes; empty for string tensors.
    public var bytes: [UInt8]
    /// Elements of a string tensor, as bytes (ONNX strings need not be UTF-8).
    public var strings: [[UInt8]]
    public var docString: String

    public init(name: String = "", elementType: ElementType, dims: [Int],
                bytes: [UInt8] = [], strings: [[UInt8]] = [], docString: String = "") {
        self.name = name
        self.elementType = elementType
        self.dims = dims
        self.bytes = bytes
        self.strings = strings
        self.docString = docString
    }

    /// Number of elements, or `nil` when a dim is negative or the product overflows `Int`.
    public var elementCount: Int? { ShapeMath.elementCount(dims) }

    /// A float tensor from values.
    public init(name: String = "", dims: [Int], floats: [Float]) {
        precondition(ShapeMath.elementCount(dims) == floats.count, "dims disagree with data")
        var bytes = [UInt8](repeating: 0, count: floats.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in floats.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        self.init(name: name, elementType: .float, dims: dims, bytes: bytes)
    }

    /// An int64 tensor from values.
    public init(name: String = "", dims: [Int], int64s: [Int64]) {
        precondition(ShapeMath.elementCount(dims) == int64s.count, "dims disagree with data")
        var bytes = [UInt8](repeating: 0, count: int64s.count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in int64s.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * 8, as: Int64.self) }
        }
        self.init(name: name, elementType: .int64, dims: dims, bytes: bytes)
    }

    /// The elements of a float tensor.
    public var floats: [Float]? {
        guard elementType == .float else { return nil }
        return bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// The elements of an int64 tensor.
    public var int64s: [Int64]? {
        guard elementType == .int64 else { return nil }
        return bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 8)).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        }
    }
}

/// Shape arithmetic that never traps on user-supplied dims.
public enum ShapeMath {
    /// Product of dims, or `nil` if any dim is negative or the product overflows.
    public static func elementCount(_ dims: [Int]) -> Int? {
        var count = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = p
        }
        return count
    }

    /// Bytes of `dims` elements of `type`, or `nil` on overflow, negative dims or strings.
    public static func byteCount(_ dims: [Int], _ type: ElementType) -> Int? {
        guard let n = elementCount(dims), let size = type.byteSize else { return nil }
        let (b, overflow) = n.multipliedReportingOverflow(by: size)
        return overflow ? nil : b
    }
}
