// Converts a parsed ModelProto / TensorProto (C-layer handles) into the IR value types.

import Foundation
import ONNXIR
import _CONNX

/// One tensor whose bytes live in an external-data file.
public struct ExternalDataReference: Equatable, Sendable {
    public var tensor: String
    /// `location` exactly as written in the model (relative to the model's folder).
    public var location: String
    public var offset: Int
    public var length: Int
    /// The `checksum` entry if present (SHA-1 per the ONNX spec); reported, not verified.
    public var checksum: String?
}

/// Walks C-layer handles and builds IR values. External data is read through `externalData`.
struct ProtoReader {
    /// Names the file in errors.
    let file: String
    /// Resolves external tensor data; `nil` means external data is an error (bytes without a folder).
    let externalData: ExternalDataReader?
    /// Refuses, before reading any tensor, a model whose initializers (with the inputs whose
    /// shapes are fully fixed) declare more bytes than this.
    var maxMemory: Int? = nil
    /// Frees each tensor's inline data in the C-layer message as soon as it has been read, so
    /// the weights are not held twice during conversion (the message is then spent).
    var releaseTensorData = false

    func model(_ m: OpaquePointer) throws -> Model {
        guard connx_model_ir_version(m) > 0 else {
            throw ONNXFormatError.notAModel(file: file, reason: "no ir_version (the bytes parse as protobuf but are not a ModelProto)")
        }
        guard connx_model_has_graph(m) != 0, let g = connx_model_graph(m) else {
            throw ONNXFormatError.notAModel(file: file, reason: "the model has no graph")
        }
        var opsets: [OpsetImport] = []
        for i in 0..<connx_model_opset_count(m) {
            var domain = connx_str()
            var version: Int64 = 0
            connx_model_opset(m, i, &domain, &version)
            opsets.append(OpsetImport(domain: domain.string, version: version))
        }
        var metadata: [(key: String, value: String)] = []
        for i in 0..<connx_model_metadata_count(m) {
            var key = connx_str()
            var value = connx_str()
            connx_model_metadata(m, i, &key, &value)
            metadata.append((key: key.string, value: value.string))
        }
        // The limit is checked on dims alone, before any tensor data is read.
        if let maxMemory { try checkMemory(g, limit: maxMemory) }
        let mainGraph = try graph(g)
        return Model(
            irVersion: connx_model_ir_version(m),
            producerName: connx_model_producer_name(m).string,
            producerVersion: connx_model_producer_version(m).string,
            domain: connx_model_domain(m).string,
            modelVersion: connx_model_model_version(m),
            docString: connx_model_doc_string(m).string,
            opsetImports: opsets, metadata: metadata,
            graph: mainGraph,
            functionCount: connx_model_function_count(m))
    }

    /// Refuses the model when its declared tensors exceed `limit` bytes. Reads only dims and
    /// types, never tensor data; walks subgraphs (up to the nesting limit) without recursion.
    func checkMemory(_ main: OpaquePointer, limit: Int) throws {
        var initializerBytes = 0
        var stack: [(OpaquePointer, Int)] = [(main, 0)]
        func add(_ n: Int, to total: inout Int) throws {
            let (sum, overflow) = total.addingReportingOverflow(n)
            guard !overflow else {
                throw ONNXFormatError.limitExceeded(file: file, reason: "the declared tensor sizes overflow a 64-bit byte count")
            }
            total = sum
        }
        while let (g, depth) = stack.popLast() {
            for i in 0..<connx_graph_initializer_count(g) {
                let t = connx_graph_initializer(g, i)!
                let name = connx_tensor_name(t).string
                let dims = Array(UnsafeBufferPointer(start: connx_tensor_dims(t), count: connx_tensor_dim_count(t)))
                guard let type = ElementType(rawValue: connx_tensor_data_type(t)) else { continue }  // refused when read
                guard type != .string else { continue }  // string bytes are in the file itself
                guard let bytes = ShapeMath.byteCount(dims.map { Int(truncatingIfNeeded: $0) }, type) else {
                    throw ONNXFormatError.invalidTensor(file: file, tensor: name, reason: "the byte size of dims \(dims) is negative or overflows")
                }
                try add(bytes, to: &initializerBytes)
            }
            guard depth < Graph.maxSubgraphDepth else { continue }  // reported by the conversion
            for n in 0..<connx_graph_node_count(g) {
                let node = connx_graph_node(g, n)!
                for a in 0..<connx_node_attribute_count(node) {
                    let attribute = connx_node_attribute(node, a)!
                    if let sub = connx_attribute_g(attribute) { stack.append((sub, depth + 1)) }
                    for k in 0..<connx_attribute_graphs_count(attribute) { stack.append((connx_attribute_graph(attribute, k)!, depth + 1)) }
                }
            }
        }
        // Inputs that are not initializers, where every dim is a number.
        var inputBytes = 0
        var initializerNames = Set<String>()
        for i in 0..<connx_graph_initializer_count(main) { initializerNames.insert(connx_tensor_name(connx_graph_initializer(main, i)!).string) }
        for i in 0..<connx_graph_input_count(main) {
            let input = valueInfo(connx_graph_input(main, i)!)
            guard !initializerNames.contains(input.name), case .tensor(let type?, let shape?)? = input.type else { continue }
            var dims: [Int] = []
            for d in shape { if case .fixed(let n) = d { dims.append(n) } }
            guard dims.count == shape.count, let bytes = ShapeMath.byteCount(dims, type) else { continue }
            try add(bytes, to: &inputBytes)
        }
        var total = initializerBytes
        try add(inputBytes, to: &total)
        if total > limit {
            throw ONNXFormatError.limitExceeded(file: file, reason:
                "the model declares \(total) bytes (initializers \(initializerBytes), inputs with fixed shapes \(inputBytes)), above the memory limit of \(limit) bytes")
        }
    }

    func graph(_ g: OpaquePointer, depth: Int = 0) throws -> Graph {
        let name = connx_graph_name(g).string
        if connx_graph_sparse_initializer_count(g) > 0 {
            throw ONNXFormatError.unsupported(file: file, reason: "graph '\(name)' has sparse initializers")
        }
        return Graph(
            name: name,
            nodes: try (0..<connx_graph_node_count(g)).map { try node(connx_graph_node(g, $0)!, depth: depth) },
            inputs: (0..<connx_graph_input_count(g)).map { valueInfo(connx_graph_input(g, $0)!) },
            outputs: (0..<connx_graph_output_count(g)).map { valueInfo(connx_graph_output(g, $0)!) },
            valueInfos: (0..<connx_graph_value_info_count(g)).map { valueInfo(connx_graph_value_info(g, $0)!) },
            initializers: try (0..<connx_graph_initializer_count(g)).map { try tensor(connx_graph_initializer(g, $0)!) },
            docString: connx_graph_doc_string(g).string)
    }

    /// A node of a graph at nesting `depth` (0: the main graph); its subgraphs are at depth + 1.
    func node(_ n: OpaquePointer, depth: Int = 0) throws -> Node {
        var node = Node(name: connx_node_name(n).string,
                        opType: connx_node_op_type(n).string,
                        domain: connx_node_domain(n).string,
                        inputs: (0..<connx_node_input_count(n)).map { connx_node_input(n, $0).string },
                        outputs: (0..<connx_node_output_count(n)).map { connx_node_output(n, $0).string },
                        docString: connx_node_doc_string(n).string)
        for i in 0..<connx_node_attribute_count(n) {
            let a = connx_node_attribute(n, i)!
            let kind = Int(connx_attribute_type(a))
            if (kind == CONNX_ATTR_GRAPH || kind == CONNX_ATTR_GRAPHS) && depth + 1 > Graph.maxSubgraphDepth {
                throw ONNXFormatError.limitExceeded(file: file, reason: Graph.nestingMessage(node: node, depth: depth + 1))
            }
            node.attributes.append(try attribute(a, depth: depth))
        }
        return node
    }

    /// An attribute of a node in a graph at nesting `depth`.
    func attribute(_ a: OpaquePointer, depth: Int = 0) throws -> Attribute {
        let value: AttributeValue
        let type = Int(connx_attribute_type(a))
        switch type {
        case CONNX_ATTR_FLOAT: value = .float(connx_attribute_f(a))
        case CONNX_ATTR_INT: value = .int(connx_attribute_i(a))
        case CONNX_ATTR_STRING: value = .string(connx_attribute_s(a).bytes)
        case CONNX_ATTR_TENSOR:
            guard let t = connx_attribute_t(a) else { throw missing(a, "tensor") }
            value = .tensor(try tensor(t))
        case CONNX_ATTR_GRAPH:
            guard let g = connx_attribute_g(a) else { throw missing(a, "graph") }
            value = .graph(try graph(g, depth: depth + 1))
        case CONNX_ATTR_FLOATS:
            value = .floats(Array(UnsafeBufferPointer(start: connx_attribute_floats(a), count: connx_attribute_floats_count(a))))
        case CONNX_ATTR_INTS:
            value = .ints(Array(UnsafeBufferPointer(start: connx_attribute_ints(a), count: connx_attribute_ints_count(a))))
        case CONNX_ATTR_STRINGS:
            value = .strings((0..<connx_attribute_strings_count(a)).map { connx_attribute_string(a, $0).bytes })
        case CONNX_ATTR_TENSORS:
            value = .tensors(try (0..<connx_attribute_tensors_count(a)).map { try tensor(connx_attribute_tensor(a, $0)!) })
        case CONNX_ATTR_GRAPHS:
            value = .graphs(try (0..<connx_attribute_graphs_count(a)).map { try graph(connx_attribute_graph(a, $0)!, depth: depth + 1) })
        case CONNX_ATTR_SPARSE_TENSOR: value = .unsupported(kind: "SPARSE_TENSOR")
        case CONNX_ATTR_SPARSE_TENSORS: value = .unsupported(kind: "SPARSE_TENSORS")
        case CONNX_ATTR_TYPE_PROTO: value = .unsupported(kind: "TYPE_PROTO")
        case CONNX_ATTR_TYPE_PROTOS: value = .unsupported(kind: "TYPE_PROTOS")
        default:
            // IR version 1 files may leave `type` unset; the filled field tells the kind.
            throw ONNXFormatError.unsupported(
                file: file, reason: "attribute '\(connx_attribute_name(a).string)' has undefined or unknown kind \(type)")
        }
        return Attribute(name: connx_attribute_name(a).string, value: value,
                         docString: connx_attribute_doc_string(a).string,
                         refAttrName: connx_attribute_ref_attr_name(a).string)
    }

    private func missing(_ a: OpaquePointer, _ what: String) -> ONNXFormatError {
        .notAModel(file: file, reason: "attribute '\(connx_attribute_name(a).string)' is of kind \(what.uppercased()) but holds no \(what)")
    }

    func valueInfo(_ v: OpaquePointer) -> ValueInfo {
        ValueInfo(name: connx_value_info_name(v).string,
                  type: connx_value_info_type(v).map(valueType),
                  docString: connx_value_info_doc_string(v).string)
    }

    func valueType(_ t: OpaquePointer) -> ValueType {
        switch Int(connx_type_kind(t)) {
        case CONNX_TYPE_TENSOR:
            let raw = connx_type_elem_type(t)
            // 0 is UNDEFINED (allowed); a number the IR lacks (float8, int4, ...) is kept by name.
            if raw != 0 && ElementType(rawValue: raw) == nil { return .unsupported("tensor(elem_type=\(raw))") }
            let shape: [ONNXIR.Dimension]? = connx_type_has_shape(t) == 0 ? nil : (0..<connx_type_dim_count(t)).map { i in
                var kind: Int32 = 0
                var value: Int64 = 0
                var param = connx_str()
                connx_type_dim(t, i, &kind, &value, &param)
                switch Int(kind) {
                case CONNX_DIM_VALUE: return .fixed(Int(value))
                case CONNX_DIM_PARAM: return .symbolic(param.string)
                default: return .unknown
                }
            }
            return .tensor(elementType: ElementType(rawValue: raw), shape: shape)
        case CONNX_TYPE_SEQUENCE: return .sequence(connx_type_element(t).map(valueType))
        case CONNX_TYPE_OPTIONAL: return .optional(connx_type_element(t).map(valueType))
        case CONNX_TYPE_MAP:
            return .map(keyType: ElementType(rawValue: connx_type_map_key_type(t)), valueType: connx_type_element(t).map(valueType))
        case CONNX_TYPE_SPARSE_TENSOR: return .unsupported("sparse_tensor")
        case CONNX_TYPE_OPAQUE: return .unsupported("opaque")
        default: return .unsupported("none")
        }
    }

    func tensor(_ t: OpaquePointer) throws -> TensorData {
        let name = connx_tensor_name(t).string
        let rawType = connx_tensor_data_type(t)
        guard let elementType = ElementType(rawValue: rawType) else {
            throw ONNXFormatError.unsupported(file: file, reason: "tensor '\(name)' has element type \(rawType), which this toolkit does not read")
        }
        if connx_tensor_has_segment(t) != 0 {
            throw ONNXFormatError.unsupported(file: file, reason: "tensor '\(name)' is a segment of a larger tensor")
        }
        let rawDims = Array(UnsafeBufferPointer(start: connx_tensor_dims(t), count: connx_tensor_dim_count(t)))
        if let negative = rawDims.first(where: { $0 < 0 }) {
            throw ONNXFormatError.invalidTensor(file: file, tensor: name, reason: "negative dimension \(negative) in dims \(rawDims)")
        }
        let dims = rawDims.map { Int($0) }
        guard let count = ShapeMath.elementCount(dims) else {
            throw ONNXFormatError.invalidTensor(file: file, tensor: name, reason: "the product of dims \(dims) overflows")
        }
        let doc = connx_tensor_doc_string(t).string

        if Int(connx_tensor_data_location(t)) == CONNX_DATA_EXTERNAL {
            let entries: [(String, String)] = (0..<connx_tensor_external_data_count(t)).map { i in
                var key = connx_str()
                var value = connx_str()
                connx_tensor_external_data(t, i, &key, &value)
                return (key.string, value.string)
            }
            guard let externalData else {
                throw ONNXFormatError.externalData(file: file, tensor: name, location: entries.first { $0.0 == "location" }?.1 ?? "",
                                                   reason: "the model was given as bytes without a folder to read external data from")
            }
            let bytes = try externalData.read(tensor: name, elementType: elementType, dims: dims, entries: entries)
            return TensorData(name: name, elementType: elementType, dims: dims, bytes: bytes, docString: doc)
        }

        if elementType == .string {
            let strings = (0..<connx_tensor_string_count(t)).map { connx_tensor_string(t, $0).bytes }
            guard strings.count == count else {
                throw ONNXFormatError.invalidTensor(file: file, tensor: name,
                    reason: "dims \(dims) need \(count) strings, string_data holds \(strings.count)")
            }
            return TensorData(name: name, elementType: .string, dims: dims, strings: strings, docString: doc)
        }

        var out = connx_bytes()
        defer { if releaseTensorData { connx_tensor_release_data(t) } }
        if let message = takeMessage(connx_tensor_read_bytes(t, &out)) {
            // The C layer names the tensor; strip its prefix so the error reads once.
            var reason = message
            for prefix in ["reading a tensor: ", "tensor '\(name)': "] where reason.hasPrefix(prefix) {
                reason = String(reason.dropFirst(prefix.count))
            }
            throw ONNXFormatError.invalidTensor(file: file, tensor: name, reason: reason)
        }
        return TensorData(name: name, elementType: elementType, dims: dims, bytes: takeBytes(out), docString: doc)
    }
}
