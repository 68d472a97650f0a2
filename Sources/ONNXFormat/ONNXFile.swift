// The public entry points: load, save and serialize ONNX models and tensors; check; infer shapes.

import Foundation
import ManetSupport
import ONNXIR
import _CONNX

#if canImport(Glibc)
import Glibc
#endif

/// A model read from a file, with the external data it referenced.
public struct LoadedModel: Sendable {
    public var model: Model
    /// Every tensor read from an external-data file, in reading order.
    public var externalData: [ExternalDataReference]
    /// Distinct external-data files, as written in the model (relative to its folder).
    public var externalDataFiles: [String] {
        var seen = Set<String>()
        return externalData.map(\.location).filter { seen.insert($0).inserted }
    }
}

/// Reading and writing ONNX files. Every failure is an `ONNXFormatError` naming the file.
public enum ONNXFile {
    /// Models whose initializers total more than this are always saved with external data:
    /// protobuf cannot serialize a message above 2 GB, and the graph needs some room too.
    public static let inlineLimit = 2_000_000_000
    /// Initializers smaller than this stay inline when writing external data (the `onnx`
    /// package's default `size_threshold`), so scalars and shapes stay readable in the model.
    public static let externalThreshold = 1024

    // MARK: - Models

    /// Reads a model, resolving external data against the model's folder. With `maxMemory`
    /// (bytes), a model whose file, or whose initializers and fixed-shape inputs, are larger is
    /// refused (`limitExceeded`) before their data is read.
    public static func load(path: String, maxMemory: Int? = nil) throws -> Model {
        try loadWithDetails(path: path, maxMemory: maxMemory).model
    }

    /// Reads a model and reports which tensors came from external-data files.
    ///
    /// Memory: the file's bytes are dropped once parsed, and each inline tensor's data is freed
    /// from the parsed message as soon as it is converted, so the weights are held about once.
    public static func loadWithDetails(path: String, maxMemory: Int? = nil) throws -> LoadedModel {
        let handle = try parseHandle(try readFile(path, maxMemory: maxMemory), file: path)
        defer { connx_model_free(handle) }
        let folder = (path as NSString).deletingLastPathComponent
        let external = try ExternalDataReader(modelFile: path, folder: folder.isEmpty ? "." : folder)
        let model = try ProtoReader(file: path, externalData: external, maxMemory: maxMemory, releaseTensorData: true).model(handle)
        return LoadedModel(model: model, externalData: external.references)
    }

    /// Reads a model from bytes. External data is read from `baseDirectory`; without one, a
    /// model that references external data is an error.
    public static func load(bytes: [UInt8], baseDirectory: String? = nil, maxMemory: Int? = nil) throws -> Model {
        let label = "<memory>"
        let external = try baseDirectory.map { try ExternalDataReader(modelFile: label, folder: $0) }
        let handle = try parseHandle(bytes, file: label)
        defer { connx_model_free(handle) }
        return try ProtoReader(file: label, externalData: external, maxMemory: maxMemory, releaseTensorData: true).model(handle)
    }

    /// The model as ONNX bytes with every tensor inline.
    public static func serialize(_ model: Model) throws -> [UInt8] {
        try serialize(model, file: "<memory>", placement: { _ in nil })
    }

    /// Writes the model atomically (temporary file in the same folder, fsync, rename). With
    /// `externalData`, initializers of 1 KB and more go to `NAME.data` next to it (`NAME` being the
    /// model's file name) in one contiguous file; that also happens, whatever `externalData` says,
    /// when the initializers would push the model past protobuf's 2 GB limit.
    public static func save(_ model: Model, to path: String, externalData: Bool = false) throws {
        let initializers = model.graph.initializers
        let total = initializers.reduce(0) { $0 &+ $1.bytes.count }
        let external = externalData || total > inlineLimit
        var placements: [Int: ExternalPlacement] = [:]
        if external {
            let dataName = (path as NSString).lastPathComponent + ".data"
            let dataPath = path + ".data"
            var offset = 0
            var order: [Int] = []
            for (i, t) in initializers.enumerated() where t.elementType != .string && t.bytes.count >= externalThreshold {
                placements[i] = ExternalPlacement(location: dataName, offset: offset, length: t.bytes.count)
                offset += t.bytes.count
                order.append(i)
            }
            // The data file goes first: a model never points at data that is not there yet.
            // No data file at all when every initializer is small enough to stay inline.
            if !order.isEmpty {
                try writeAtomically(dataPath) { fd in
                    for i in order { try AtomicFile.writeAll(initializers[i].bytes, to: fd, path: dataPath) }
                }
            }
        }
        let bytes = try serialize(model, file: path, placement: { placements[$0] })
        try writeAtomically(path) { fd in try AtomicFile.writeAll(bytes, to: fd, path: path) }
    }

    /// The model as ONNX bytes with numbers in the typed fields (float_data, ...), not raw_data.
    /// For tests of the typed-field reader.
    static func serializeUsingTypedFields(_ model: Model) throws -> [UInt8] {
        try serialize(model, file: "<memory>", placement: { _ in nil }, typedFields: true)
    }

    // MARK: - Checking

    /// The ONNX checker's verdict (libonnx 1.12 `check_model` plus strict shape inference, as
    /// ONNX's `full_check`), after confirming every imported opset is one the toolkit knows.
    public static func verdict(_ model: Model) -> CheckVerdict {
        do {
            try check(model)
            return .valid
        } catch let error as ONNXFormatError {
            return .invalid(error.reason)
        } catch {
            return .invalid(String(describing: error))
        }
    }

    /// Throws `unknownOpset` or `checkFailed` when the model is not valid ONNX for this toolkit.
    public static func check(_ model: Model, file: String = "<memory>") throws {
        try checkOpsets(model, file: file)
        let m = try ProtoWriter(file: file).build(model)
        defer { connx_model_free(m) }
        if let message = takeMessage(connx_model_check(m)) {
            throw ONNXFormatError.checkFailed(file: file, message: strip(message, "ONNX checker: "))
        }
    }

    /// The opsets libonnx 1.12 knows: the default domain up to 17, `ai.onnx.ml` up to 3, ...
    /// A domain that no node uses is harmless and not reported (exporters import helper domains).
    public static func checkOpsets(_ model: Model, file: String = "<memory>") throws {
        if let (node, depth) = model.graph.nodeNestingTooDeep() {
            throw ONNXFormatError.limitExceeded(file: file, reason: Graph.nestingMessage(node: node, depth: depth))
        }
        var usedDomains = Set<String>()
        var graphs = [model.graph]
        while let graph = graphs.popLast() {
            for node in graph.nodes {
                usedDomains.insert(node.domain == "ai.onnx" ? "" : node.domain)
                for attribute in node.attributes {
                    if case .graph(let g) = attribute.value { graphs.append(g) }
                    if case .graphs(let gs) = attribute.value { graphs += gs }
                }
            }
        }
        for opset in model.opsetImports {
            let domain = opset.domain == "ai.onnx" ? "" : opset.domain
            let known = knownOpsetMax(domain)
            if let known {
                if opset.version > known || opset.version < 1 {
                    throw ONNXFormatError.unknownOpset(file: file, domain: domain, version: opset.version, knownMax: known)
                }
            } else if usedDomains.contains(domain) {
                throw ONNXFormatError.unknownOpset(file: file, domain: domain, version: opset.version, knownMax: nil)
            }
        }
    }

    /// The highest opset version the toolkit's libonnx knows for `domain`, `nil` if unknown.
    public static func knownOpsetMax(_ domain: String) -> Int64? {
        let arena = StringArena()
        let v = connx_known_opset_max(arena.str(domain))
        return v < 0 ? nil : v
    }

    /// ONNX shape inference (strict mode, type checks on): the model with inferred value infos.
    public static func inferShapes(_ model: Model, file: String = "<memory>") throws -> Model {
        let m = try ProtoWriter(file: file).build(model)
        defer { connx_model_free(m) }
        var inferred: OpaquePointer?
        if let message = takeMessage(connx_model_infer_shapes(m, &inferred)) {
            throw ONNXFormatError.shapeInferenceFailed(file: file, message: strip(message, "ONNX shape inference: "))
        }
        guard let inferred else { throw ONNXFormatError.shapeInferenceFailed(file: file, message: "no result") }
        defer { connx_model_free(inferred) }
        return try ProtoReader(file: file, externalData: nil).model(inferred)
    }

    // MARK: - Tensors (ONNX test-data `.pb` files)

    /// Reads one TensorProto, as in `test_data_set_0/input_0.pb`.
    public static func loadTensor(path: String) throws -> TensorData {
        let bytes = try readFile(path)
        if bytes.isEmpty {
            // An empty message is a valid (empty, undefined-type) TensorProto; nobody means that.
            throw ONNXFormatError.notATensor(file: path, reason: "the file is empty")
        }
        var handle: OpaquePointer?
        if let message = takeMessage(bytes.withUnsafeBytes { connx_tensor_file_parse($0.baseAddress, $0.count, &handle) }) {
            throw ONNXFormatError.notATensor(file: path, reason: strip(message, "parsing the tensor: "))
        }
        guard let handle else { throw ONNXFormatError.notATensor(file: path, reason: "no result") }
        defer { connx_tensor_file_free(handle) }
        let t = connx_tensor_file_tensor(handle)!
        if connx_tensor_data_type(t) == 0 {
            throw ONNXFormatError.notATensor(file: path, reason: "no data_type (the bytes are not a TensorProto)")
        }
        let folder = (path as NSString).deletingLastPathComponent
        let external = try ExternalDataReader(modelFile: path, folder: folder.isEmpty ? "." : folder)
        return try ProtoReader(file: path, externalData: external).tensor(t)
    }

    /// Writes one TensorProto atomically.
    public static func saveTensor(_ tensor: TensorData, to path: String) throws {
        let bytes = try serializeTensor(tensor, file: path)
        try writeAtomically(path) { fd in try AtomicFile.writeAll(bytes, to: fd, path: path) }
    }

    /// One TensorProto as bytes.
    public static func serializeTensor(_ tensor: TensorData, file: String = "<memory>") throws -> [UInt8] {
        var handle: OpaquePointer?
        if let message = takeMessage(connx_tensor_file_new(&handle)) {
            throw ONNXFormatError.unwritable(file: file, reason: message)
        }
        guard let handle else { throw ONNXFormatError.unwritable(file: file, reason: "out of memory") }
        defer { connx_tensor_file_free(handle) }
        try ProtoWriter(file: file).fill(connx_tensor_file_tensor(handle)!, tensor, external: nil)
        var out = connx_bytes()
        if let message = takeMessage(connx_tensor_file_serialize(handle, &out)) {
            throw ONNXFormatError.unwritable(file: file, reason: message)
        }
        return takeBytes(out)
    }

    // MARK: - Implementation

    /// Parses model bytes into a C-layer message the caller frees with `connx_model_free`.
    /// Takes the bytes by value so a caller passing a temporary frees them once parsed.
    static func parseHandle(_ bytes: consuming [UInt8], file: String) throws -> OpaquePointer {
        if bytes.isEmpty { throw ONNXFormatError.emptyFile(file: file) }
        var handle: OpaquePointer?
        if let message = takeMessage(bytes.withUnsafeBytes { connx_model_parse($0.baseAddress, $0.count, &handle) }) {
            throw ONNXFormatError.notAModel(file: file, reason: strip(message, "parsing the model: "))
        }
        guard let handle else { throw ONNXFormatError.notAModel(file: file, reason: "no result") }
        return handle
    }

    static func serialize(_ model: Model, file: String, placement: @escaping (Int) -> ExternalPlacement?,
                          typedFields: Bool = false) throws -> [UInt8] {
        let m = try ProtoWriter(file: file, placement: placement, typedFields: typedFields).build(model)
        defer { connx_model_free(m) }
        var out = connx_bytes()
        if let message = takeMessage(connx_model_serialize(m, &out)) {
            throw ONNXFormatError.unwritable(file: file, reason: message)
        }
        return takeBytes(out)
    }

    private static func strip(_ message: String, _ prefix: String) -> String {
        message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The whole file, or `unreadable` naming the reason (missing, a directory, permissions);
    /// `limitExceeded` when it is larger than `maxMemory` bytes.
    static func readFile(_ path: String, maxMemory: Int? = nil) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ONNXFormatError.unreadable(file: path, reason: "cannot open: \(errnoText())") }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ONNXFormatError.unreadable(file: path, reason: "cannot stat: \(errnoText())") }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw ONNXFormatError.unreadable(file: path, reason: "is a directory, not an ONNX file")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ONNXFormatError.unreadable(file: path, reason: "is not a regular file")
        }
        let size = Int(info.st_size)
        if let maxMemory, size > maxMemory {
            throw ONNXFormatError.limitExceeded(file: path, reason: "the file is \(size) bytes, above the memory limit of \(maxMemory) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ONNXFormatError.unreadable(file: path, reason: n == 0 ? "the file shrank while being read" : "read failed: \(errnoText())")
            }
            done += n
        }
        return bytes
    }

    /// Writes through `AtomicFile` (temporary file in the same folder, fsync, rename, fsync of the
    /// folder), so a reader sees either the old file or the complete new one; errors as
    /// `ONNXFormatError.unwritable`.
    static func writeAtomically(_ path: String, _ body: (Int32) throws -> Void) throws {
        do {
            try AtomicFile.write(to: path, body)
        } catch let e as FileError {
            throw ONNXFormatError.unwritable(file: path, reason: e.reason)
        }
    }
}
