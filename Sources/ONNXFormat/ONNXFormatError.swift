// Every way reading, writing or checking an ONNX file can fail, each naming the file and the reason.

/// An error from `ONNXFile`. `description` reads `FILE: REASON`, ready for `manet: error: ...`.
public enum ONNXFormatError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read (missing, a directory, no permission).
    case unreadable(file: String, reason: String)
    /// The file exists but holds no bytes.
    case emptyFile(file: String)
    /// The bytes are not an ONNX ModelProto (text, random bytes, truncated, no graph).
    case notAModel(file: String, reason: String)
    /// The bytes are not an ONNX TensorProto (a test-data `.pb` file).
    case notATensor(file: String, reason: String)
    /// A tensor whose data disagrees with its dims or element type, or whose dims are invalid.
    case invalidTensor(file: String, tensor: String, reason: String)
    /// A tensor's external data could not be used: missing file, range past its end, bad entry.
    case externalData(file: String, tensor: String, location: String, reason: String)
    /// An external-data location that would read outside the model's folder.
    case unsafeLocation(file: String, tensor: String, location: String, reason: String)
    /// Something valid ONNX that the toolkit does not read (sparse initializers, new types).
    case unsupported(file: String, reason: String)
    /// The model uses an operator set this toolkit (libonnx 1.12) does not know.
    case unknownOpset(file: String, domain: String, version: Int64, knownMax: Int64?)
    /// The ONNX checker rejected the model.
    case checkFailed(file: String, message: String)
    /// ONNX shape inference failed.
    case shapeInferenceFailed(file: String, message: String)
    /// The model or tensor could not be written.
    case unwritable(file: String, reason: String)
    /// The model is beyond a limit: memory (`--max-memory`), subgraph nesting depth.
    case limitExceeded(file: String, reason: String)

    /// The file the error is about (`<memory>` for models that never came from a file).
    public var file: String {
        switch self {
        case .unreadable(let f, _), .emptyFile(let f), .notAModel(let f, _), .notATensor(let f, _),
             .invalidTensor(let f, _, _), .externalData(let f, _, _, _), .unsafeLocation(let f, _, _, _),
             .unsupported(let f, _), .unknownOpset(let f, _, _, _), .checkFailed(let f, _),
             .shapeInferenceFailed(let f, _), .unwritable(let f, _), .limitExceeded(let f, _):
            return f
        }
    }

    /// What went wrong, without the file name.
    public var reason: String {
        switch self {
        case .unreadable(_, let r): return r
        case .emptyFile: return "the file is empty, not an ONNX model"
        case .notAModel(_, let r): return "not an ONNX model: \(r)"
        case .notATensor(_, let r): return "not an ONNX TensorProto: \(r)"
        case .invalidTensor(_, let t, let r): return "tensor '\(t)': \(r)"
        case .externalData(_, let t, let l, let r): return "tensor '\(t)': external data '\(l)': \(r)"
        case .unsafeLocation(_, let t, let l, let r):
            return "tensor '\(t)': external data location '\(l)' refused: \(r)"
        case .unsupported(_, let r): return "unsupported: \(r)"
        case .unknownOpset(_, let d, let v, let known):
            let name = d.isEmpty ? "ai.onnx" : d
            if let known {
                return "opset \(name) version \(v) is not known to this toolkit (it knows \(name) up to version \(known))"
            }
            return "opset domain '\(name)' (version \(v)) is not known to this toolkit"
        case .checkFailed(_, let m): return "ONNX checker: \(m)"
        case .shapeInferenceFailed(_, let m): return "ONNX shape inference: \(m)"
        case .unwritable(_, let r): return r
        case .limitExceeded(_, let r): return r
        }
    }

    public var description: String { "\(file): \(reason)" }
}

/// What the ONNX checker says about a model.
public enum CheckVerdict: Equatable, Sendable, CustomStringConvertible {
    case valid
    case invalid(String)

    public var isValid: Bool { self == .valid }

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .invalid(let message): return "invalid: \(message)"
        }
    }
}
