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
        let file = try SafetensorsFile(path: path)
        return try file.entries.map { try file.tensor($0) }
    }

    /// Tensors in file order of their data (by begin offset).
    public static func parse(_ bytes: [UInt8], file: String = "<memory>") throws -> [TensorData] {
        func fail(_ reason: String) -> SafetensorsError { .invalid(file: file, reason: reason) }
        guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes, shorter than the 8-byte header length") }
        let headerLength = try checkedHeaderLength(Array(bytes[0..<8]), fileSize: bytes.count, file: file)
        let headerEnd = 8 + headerLength
        let entries = try header(Array(bytes[8..<headerEnd]), dataStart: headerEnd, dataSize: bytes.count - headerEnd, file: file)
        return entries.map { e in
            TensorData(name: e.name, elementType: e.elementType, dims: e.dims, bytes: Array(bytes[e.range]))
        }
    }

    /// The header length in the first 8 bytes, checked against the file size and the limit.
    static func checkedHeaderLength(_ head: [UInt8], fileSize: Int, file: String) throws -> Int {
        func fail(_ reason: String) -> SafetensorsError { .invalid(file: file, reason: reason) }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(head[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(fileSize - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(fileSize - 8) bytes follow)")
        }
        guard headerLength <= UInt64(maxHeaderBytes) else { throw fail("header length \(headerLength) exceeds \(maxHeaderBytes)") }
        return Int(headerLength)
    }

    /// The entries of a JSON header, checked, in file order of their data; `range` is absolute
    /// (the data area starts at `dataStart`).
    static func header(_ headerBytes: [UInt8], dataStart: Int, dataSize: Int, file: String) throws -> [SafetensorsFile.Entry] {
        func fail(_ reason: String) -> SafetensorsError { .invalid(file: file, reason: reason) }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw fail("the header is not JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("the header is not a JSON object") }

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
        return entries.map { .init(name: $0.name, elementType: $0.type, dims: $0.dims, range: (dataStart + $0.begin)..<(dataStart + $0.end)) }
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

/// A safetensors file opened for reading: the header is read and checked whole (as
/// `Safetensors.parse` does), each tensor's bytes only when `tensor(_:)` asks for them.
public final class SafetensorsFile {
    public struct Entry: Sendable {
        public var name: String
        public var elementType: ElementType
        public var dims: [Int]
        /// The bytes' place in the file.
        public var range: Range<Int>
    }

    public let path: String
    /// In file order of their data.
    public let entries: [Entry]
    private let fd: Int32

    public init(path: String) throws {
        func fail(_ reason: String) -> SafetensorsError { .invalid(file: path, reason: reason) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot read the file") }
        var ok = false
        defer { if !ok { close(fd) } }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw fail("cannot read the file") }
        let size = Int(info.st_size)
        guard size >= 8 else { throw fail("\(size) bytes, shorter than the 8-byte header length") }
        let headerLength = try Safetensors.checkedHeaderLength(try Self.read(fd, 0..<8, path: path), fileSize: size, file: path)
        let headerBytes = try Self.read(fd, 8..<(8 + headerLength), path: path)
        entries = try Safetensors.header(headerBytes, dataStart: 8 + headerLength, dataSize: size - 8 - headerLength, file: path)
        self.path = path
        self.fd = fd
        ok = true
    }

    deinit { close(fd) }

    /// The tensor's bytes, read from the file.
    public func tensor(_ entry: Entry) throws -> TensorData {
        TensorData(name: entry.name, elementType: entry.elementType, dims: entry.dims, bytes: try Self.read(fd, entry.range, path: path))
    }

    static func read(_ fd: Int32, _ range: Range<Int>, path: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: range.count)
        var done = 0
        try out.withUnsafeMutableBytes { buffer in
            while done < range.count {
                let n = pread(fd, buffer.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw SafetensorsError.invalid(file: path, reason: n == 0 ? "the file ends before byte \(range.upperBound) (truncated while reading)" : "cannot read the file")
                }
                done += n
            }
        }
        return out
    }
}
