// Reads and writes NumPy `.npy` files (format versions 1, 2 and 3) as ONNX tensor contents.
//
// Layout (numpy/lib/format.py documents it): the magic `\x93NUMPY`, a major and minor version
// byte, the header length (uint16 little-endian in v1, uint32 in v2 and v3), then the header:
// a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded
// with spaces and ending in `\n` (latin-1 in v1/v2, UTF-8 in v3); then the raw elements.
// Supported: little-endian (or byte-order-free) f4, f8, i4, i8, u1, b1, in C order. Anything
// else is an error naming the file, never a guess: a reference tensor read wrongly would turn
// a parity check into noise.

import Foundation
import ONNXIR

public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The ONNX element type for a numpy type string (after its byte-order character).
    static func elementType(_ code: String) -> ElementType? {
        switch code {
        case "f4": return .float
        case "f8": return .double
        case "i4": return .int32
        case "i8": return .int64
        case "u1": return .uint8
        case "b1": return .bool
        default: return nil
        }
    }

    static func code(_ type: ElementType) -> String? {
        switch type {
        case .float: return "<f4"
        case .double: return "<f8"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        default: return nil
        }
    }

    /// Reads the `.npy` file at `path`; the tensor is named after the file (without `.npy`).
    public static func read(path: String) throws -> TensorData {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileError(file: path, reason: "cannot read the file")
        }
        var tensor = try decode([UInt8](data), file: path)
        tensor.name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return tensor
    }

    /// Decodes `.npy` bytes; `file` names them in errors.
    public static func decode(_ bytes: [UInt8], file: String = "<npy>") throws -> TensorData {
        func fail(_ reason: String) -> FileError { FileError(file: file, reason: reason) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file (bad magic: expected \\x93NUMPY)")
        }
        let major = bytes[6], minor = bytes[7]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header length") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(minor) (1, 2 and 3 are read)")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerBytes = Array(bytes[headerStart..<(headerStart + headerLength)])
        let header: String
        if major == 3 {
            guard let text = String(validating: headerBytes, as: UTF8.self) else { throw fail("header is not UTF-8") }
            header = text
        } else {
            // Latin-1: every byte is one code point.
            header = String(String.UnicodeScalarView(headerBytes.map { Unicode.Scalar($0) }))
        }
        let dict: [String: PythonLiteral]
        do {
            var parser = PythonLiteralParser(header)
            guard case .dict(let d) = try parser.parseTopLevel() else { throw fail("header is not a dict: \(header)") }
            dict = d
        } catch let error as PythonLiteralParser.Failure {
            throw fail("malformed header (\(error.reason)): \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let known: Set<String> = ["descr", "fortran_order", "shape"]
        guard Set(dict.keys) == known else {
            throw fail("header keys must be exactly descr, fortran_order, shape; got \(dict.keys.sorted().joined(separator: ", "))")
        }
        guard case .string(let descr)? = dict["descr"] else { throw fail("'descr' is not a string") }
        guard case .bool(let fortranOrder)? = dict["fortran_order"] else { throw fail("'fortran_order' is not True or False") }
        guard case .tuple(let shapeItems)? = dict["shape"] else { throw fail("'shape' is not a tuple") }
        if fortranOrder {
            throw fail("fortran_order is True: only C-order arrays are read (save with np.ascontiguousarray)")
        }
        var dims: [Int] = []
        for item in shapeItems {
            guard case .int(let d) = item, d >= 0 else { throw fail("shape \(shapeItems) has a non-integer or negative dim") }
            dims.append(d)
        }
        guard descr.count == 3, let order = descr.first else { throw fail("unsupported dtype '\(descr)'") }
        let typeCode = String(descr.dropFirst())
        guard let elementType = elementType(typeCode) else {
            throw fail("unsupported dtype '\(descr)' (read: <f4, <f8, <i4, <i8, |u1, |b1)")
        }
        let oneByte = elementType.byteSize == 1
        guard order == "<" || (oneByte && (order == "|" || order == "<" || order == ">")) else {
            throw fail("dtype '\(descr)' is big-endian or native-order; only little-endian is read")
        }
        guard let byteCount = ShapeMath.byteCount(dims, elementType) else {
            throw fail("shape \(dims) overflows")
        }
        let dataStart = headerStart + headerLength
        let available = bytes.count - dataStart
        guard available == byteCount else {
            throw fail("data is \(available) bytes but shape \(dims) of \(descr) needs \(byteCount)")
        }
        if elementType == .bool, let bad = bytes[dataStart...].first(where: { $0 > 1 }) {
            throw fail("bool data holds byte \(bad) (only 0 and 1 are booleans)")
        }
        return TensorData(elementType: elementType, dims: dims, bytes: Array(bytes[dataStart...]))
    }

    /// Encodes a tensor as a version 1 `.npy` (version 2 when the header needs more than 64 KiB).
    public static func encode(_ tensor: TensorData, file: String = "<npy>") throws -> [UInt8] {
        guard let descr = code(tensor.elementType) else {
            throw FileError(file: file, reason: "element type \(tensor.elementType) has no .npy encoding here")
        }
        guard let byteCount = ShapeMath.byteCount(tensor.dims, tensor.elementType), byteCount == tensor.bytes.count else {
            throw FileError(file: file, reason: "tensor bytes (\(tensor.bytes.count)) disagree with dims \(tensor.dims)")
        }
        // A 1-tuple needs its trailing comma in Python: (3,).
        let shape = tensor.dims.count == 1 ? "(\(tensor.dims[0]),)" : "(" + tensor.dims.map(String.init).joined(separator: ", ") + ")"
        var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }".utf8)
        // Pad so that the data starts on a 64-byte boundary, as numpy does.
        let v1 = header.count + 1 + 10 <= 65535
        let prefix = v1 ? 10 : 12
        let total = prefix + header.count + 1
        header += [UInt8](repeating: 0x20, count: (64 - total % 64) % 64) + [0x0A]
        var out = magic + [v1 ? 1 : 2, 0]
        let n = header.count
        out += v1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]
        return out + header + tensor.bytes
    }

    /// Writes `tensor` to `path` as `.npy`, atomically.
    public static func write(_ tensor: TensorData, to path: String) throws {
        try AtomicFile.write(try encode(tensor, file: path), to: path)
    }
}

/// The subset of Python literals a `.npy` header uses.
enum PythonLiteral: Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case bool(Bool)
    case tuple([PythonLiteral])
    case dict([String: PythonLiteral])

    var description: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .int(let i): return String(i)
        case .bool(let b): return b ? "True" : "False"
        case .tuple(let items): return "(" + items.map(\.description).joined(separator: ", ") + ")"
        case .dict(let d): return "{" + d.map { "'\($0.key)': \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A strict recursive-descent parser for that subset: anything else is an error, not a guess.
struct PythonLiteralParser {
    struct Failure: Error { var reason: String }
    private let chars: [Character]
    private var i = 0
    /// How deep containers may nest: a real header is a dict holding a tuple (depth 2). The
    /// bound keeps a hostile header of many `(` from recursing until the stack overflows.
    static let maxDepth = 16
    private var depth = 0

    init(_ text: String) { chars = Array(text) }

    mutating func parseTopLevel() throws -> PythonLiteral {
        let value = try parseValue()
        skipSpace()
        guard i == chars.count else { throw Failure(reason: "unexpected text after the dict") }
        return value
    }

    private mutating func skipSpace() {
        while i < chars.count, chars[i] == " " || chars[i] == "\n" || chars[i] == "\t" || chars[i] == "\r" { i += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard i < chars.count, chars[i] == c else { throw Failure(reason: "expected '\(c)' at offset \(i)") }
        i += 1
    }

    private mutating func peek() -> Character? {
        skipSpace()
        return i < chars.count ? chars[i] : nil
    }

    private mutating func parseValue() throws -> PythonLiteral {
        guard let c = peek() else { throw Failure(reason: "unexpected end") }
        if c == "{" || c == "(" {
            guard depth < Self.maxDepth else { throw Failure(reason: "containers nested more than \(Self.maxDepth) deep") }
            depth += 1
        }
        defer { if c == "{" || c == "(" { depth -= 1 } }
        switch c {
        case "{":
            i += 1
            var dict: [String: PythonLiteral] = [:]
            while peek() != "}" {
                guard case .string(let key) = try parseValue() else { throw Failure(reason: "dict key is not a string") }
                try expect(":")
                guard dict[key] == nil else { throw Failure(reason: "duplicate key '\(key)'") }
                dict[key] = try parseValue()
                if peek() == "," { i += 1 } else { break }
            }
            try expect("}")
            return .dict(dict)
        case "(":
            i += 1
            var items: [PythonLiteral] = []
            var sawComma = false
            while peek() != ")" {
                items.append(try parseValue())
                if peek() == "," { i += 1; sawComma = true } else { sawComma = false; break }
            }
            try expect(")")
            // `(3)` is an int in Python, not a tuple.
            if items.count == 1 && !sawComma { return items[0] }
            return .tuple(items)
        case "'", "\"":
            i += 1
            var s = ""
            while i < chars.count, chars[i] != c {
                guard chars[i] != "\\" else { throw Failure(reason: "escapes in strings are not supported") }
                s.append(chars[i])
                i += 1
            }
            guard i < chars.count else { throw Failure(reason: "unterminated string") }
            i += 1
            return .string(s)
        default:
            var token = ""
            while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "-" || chars[i] == "_" {
                token.append(chars[i])
                i += 1
            }
            switch token {
            case "True": return .bool(true)
            case "False": return .bool(false)
            default:
                // numpy writes Python ints; a trailing L (Python 2 longs) is accepted.
                let digits = token.hasSuffix("L") ? String(token.dropLast()) : token
                guard let n = Int(digits) else { throw Failure(reason: "unexpected token '\(token)'") }
                return .int(n)
            }
        }
    }
}
