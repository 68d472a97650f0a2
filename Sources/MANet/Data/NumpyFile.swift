// Writes NumPy .npy files (format 1.0) so Python tools can read what the data code produced.

import Foundation

public enum NumpyFile {
    /// An .npy file of `values` (uint8) with `shape`, C order.
    public static func encode(uint8 values: [UInt8], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) disagrees with \(values.count) values")
        return header(descr: "|u1", shape: shape) + Data(values)
    }

    /// An .npy file of `values` (little-endian int64) with `shape`, C order.
    public static func encode(int64 values: [Int64], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) disagrees with \(values.count) values")
        var data = header(descr: "<i8", shape: shape)
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// Magic, version 1.0, header length, then the header dict padded with spaces so the data
    /// starts on a 64-byte boundary, as the format specification asks.
    private static func header(descr: String, shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(dict.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(dict.utf8))
        return data
    }
}
