// A strict reader of the safetensors format (Hugging Face): an 8-byte header length, a JSON header, raw tensor bytes.

import Foundation
import ONNXIR

public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case invalid(file: String, reason: String)

    public var description: String {
        switch self {
        case let .invalid(file, reason): return "\(file): not a valid safetensors file: \(reason)"
        }
    }
}

/// Reads every tensor of a safetensors file. Everything in the header is checked before a byte
/// of data is trusted: the header length lies inside the file, the header is a JSON object of
/// entries with a known dtype, a non-negative shape and `data_offsets` [begin, end] inside the
/// data area whose size matches the shape, and no two tensors overlap.
public enum Safetensors {
    /// safetensors dtype names -> ONNX element types.
    static let dtypes: [String: ElementType] = [
        "F32": .float, "F64": .double, "F16": .float16, "BF16": .bfloat16,
        "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8,
        "U64": .uint64, "U32": .uint32, "U16": .uint16, "U8": .uint8, "BOOL": .bool,
    ]

    /// A header larger than this is refused before it is allocated (the reference
    /// implementation's limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public static func read(path: String) throws -> [TensorData] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError.invalid(file: path, reason: "cannot read the file")
        }
        return try parse([UInt8](data), file: path)
    }

    /// Tensors in file order of their data (by begin offset).
    public static func parse(_ bytes: [UInt8], file: String = "<memory>") throws -> [TensorData] {
        func fail(_ reason: String) -> SafetensorsError { .invalid(file: file, reason: reason) }
        guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes, shorter than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count - 8) bytes follow)")
        }
        guard headerLength <= UInt64(maxHeaderBytes) else { throw fail("header length \(headerLength) exceeds \(maxHeaderBytes)") }
        let headerEnd = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd]), options: [])
        } catch {
            throw fail("the header is not JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("the header is not a JSON object") }
        let dataSize = bytes.count - headerEnd

        var entries: [(name: String, type: ElementType, dims: [Int], begin: Int, end: Int)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any] else { throw fail("entry '\(name)' is not an object") }
            let unknownKeys = Set(entry.keys).subtracting(["dtype", "shape", "data_offsets"])
            guard unknownKeys.isEmpty else { throw fail("entry '\(name)' has unknown keys \(unknownKeys.sorted())") }
            guard let dtypeName = entry["dtype"] as? String else { throw fail("entry '\(name)' has no dtype") }
            guard let type = dtypes[dtypeName] else { throw fail("entry '\(name)' has unknown dtype \(dtypeName)") }
            guard let shapeValues = entry["shape"] as? [Any],
                  let dims = integers(shapeValues), dims.allSatisfy({ $0 >= 0 }) else {
                throw fail("entry '\(name)' has an invalid shape")
            }
            guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2 else {
                throw fail("entry '\(name)' has invalid data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail("entry '\(name)' has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data area")
            }
            guard let expected = ShapeMath.byteCount(dims, type), expected == end - begin else {
                throw fail("entry '\(name)': \(end - begin) bytes do not hold \(dtypeName) \(dims)")
            }
            entries.append((name, type, dims, begin, end))
        }
        if let metadata = header["__metadata__"], !(metadata is [String: Any]) {
            throw fail("__metadata__ is not an object")
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        for e in entries where e.end > e.begin {
            guard e.begin >= covered else { throw fail("entry '\(e.name)' overlaps the tensor before it") }
            covered = e.end
        }
        return entries.map { e in
            TensorData(name: e.name, elementType: e.type, dims: e.dims, bytes: Array(bytes[(headerEnd + e.begin)..<(headerEnd + e.end)]))
        }
    }

    /// JSON numbers that are exact non-huge integers (JSONSerialization yields NSNumber).
    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            // Past 2^53 a double no longer holds every integer: such offsets are refused.
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), abs(i) < (1 << 53) else { return nil }
            out.append(i)
        }
        return out
    }
}
