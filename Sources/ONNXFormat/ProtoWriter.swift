// Builds a ModelProto (C-layer handle) from the IR value types.

import ONNXIR
import _CONNX

/// Where one initializer's bytes go when written as external data.
struct ExternalPlacement {
    var location: String
    var offset: Int
    var length: Int
}

/// Fills C-layer builder handles from IR values. `placement` decides, per initializer (by its
/// index in the top-level graph), whether its bytes are written out of line.
struct ProtoWriter {
    let file: String
    var placement: (Int) -> ExternalPlacement? = { _ in nil }
    /// Writes numbers in the typed fields (float_data, int32_data, ...) instead of raw_data, as
    /// older exporters do; only tests use it, to cover the typed-field reader.
    var typedFields = false
    private let arena = StringArena()

    init(file: String, placement: @escaping (Int) -> ExternalPlacement? = { _ in nil }, typedFields: Bool = false) {
        self.file = file
        self.placement = placement
        self.typedFields = typedFields
    }

    private func check(_ error: UnsafeMutablePointer<connx_error>?) throws {
        if let message = takeMessage(error) { throw ONNXFormatError.unwritable(file: file, reason: message) }
    }

    private func handle(_ p: OpaquePointer?) throws -> OpaquePointer {
        guard let p else { throw ONNXFormatError.unwritable(file: file, reason: "out of memory while building the model") }
        return p
    }

    /// A new C-layer model; the caller frees it with `connx_model_free`.
    func build(_ model: Model) throws -> OpaquePointer {
        // Filling recurses into subgraphs: refuse hostile nesting before starting.
        if let (node, depth) = model.graph.nodeNestingTooDeep() {
            throw ONNXFormatError.limitExceeded(file: file, reason: Graph.nestingMessage(node: node, depth: depth))
        }
        var m: OpaquePointer?
        try check(connx_model_new(&m))
        let handle = try self.handle(m)
        do {
            connx_model_set_versions(handle, model.irVersion, model.modelVersion)
            try check(connx_model_set_strings(handle, arena.str(model.producerName), arena.str(model.producerVersion),
                                              arena.str(model.domain), arena.str(model.docString)))
            for opset in model.opsetImports {
                try check(connx_model_add_opset(handle, arena.str(opset.domain), opset.version))
            }
            for entry in model.metadata {
                try check(connx_model_add_metadata(handle, arena.str(entry.key), arena.str(entry.value)))
            }
            try fill(try self.handle(connx_model_graph(handle)), model.graph, topLevel: true)
        } catch {
            connx_model_free(handle)
            throw error
        }
        return handle
    }

    func fill(_ g: OpaquePointer, _ graph: Graph, topLevel: Bool) throws {
        try check(connx_graph_set_strings(g, arena.str(graph.name), arena.str(graph.docString)))
        for node in graph.nodes { try fill(try handle(connx_graph_add_node(g)), node) }
        for v in graph.inputs { try fill(try handle(connx_graph_add_input(g)), v) }
        for v in graph.outputs { try fill(try handle(connx_graph_add_output(g)), v) }
        for v in graph.valueInfos { try fill(try handle(connx_graph_add_value_info(g)), v) }
        for (i, t) in graph.initializers.enumerated() {
            try fill(try handle(connx_graph_add_initializer(g)), t, external: topLevel ? placement(i) : nil)
        }
    }

    func fill(_ n: OpaquePointer, _ node: Node) throws {
        try check(connx_node_set_strings(n, arena.str(node.name), arena.str(node.opType), arena.str(node.domain),
                                         arena.str(node.docString)))
        for input in node.inputs { try check(connx_node_add_input(n, arena.str(input))) }
        for output in node.outputs { try check(connx_node_add_output(n, arena.str(output))) }
        for attribute in node.attributes { try fill(try handle(connx_node_add_attribute(n)), attribute) }
    }

    func fill(_ a: OpaquePointer, _ attribute: Attribute) throws {
        try check(connx_attribute_set_strings(a, arena.str(attribute.name), arena.str(attribute.docString),
                                              arena.str(attribute.refAttrName)))
        switch attribute.value {
        case .float(let f):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_FLOAT))
            connx_attribute_set_f(a, f)
        case .int(let i):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_INT))
            connx_attribute_set_i(a, i)
        case .string(let s):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_STRING))
            try check(connx_attribute_set_s(a, arena.str(s)))
        case .tensor(let t):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_TENSOR))
            try fill(try handle(connx_attribute_mutable_t(a)), t, external: nil)
        case .graph(let g):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_GRAPH))
            try fill(try handle(connx_attribute_mutable_g(a)), g, topLevel: false)
        case .floats(let fs):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_FLOATS))
            try fs.withUnsafeBufferPointer { try check(connx_attribute_add_floats(a, $0.baseAddress, $0.count)) }
        case .ints(let values):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_INTS))
            try values.withUnsafeBufferPointer { try check(connx_attribute_add_ints(a, $0.baseAddress, $0.count)) }
        case .strings(let ss):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_STRINGS))
            for s in ss { try check(connx_attribute_add_string(a, arena.str(s))) }
        case .tensors(let ts):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_TENSORS))
            for t in ts { try fill(try handle(connx_attribute_add_tensor(a)), t, external: nil) }
        case .graphs(let gs):
            connx_attribute_set_type(a, Int32(CONNX_ATTR_GRAPHS))
            for g in gs { try fill(try handle(connx_attribute_add_graph(a)), g, topLevel: false) }
        case .unsupported(let kind):
            throw ONNXFormatError.unsupported(file: file, reason: "attribute '\(attribute.name)' of kind \(kind) cannot be written")
        }
    }

    func fill(_ v: OpaquePointer, _ info: ValueInfo) throws {
        try check(connx_value_info_set_strings(v, arena.str(info.name), arena.str(info.docString)))
        if let type = info.type { try fill(try handle(connx_value_info_mutable_type(v)), type, name: info.name) }
    }

    func fill(_ t: OpaquePointer, _ type: ValueType, name: String) throws {
        switch type {
        case .tensor(let elementType, let shape):
            connx_type_set_tensor(t, elementType?.rawValue ?? 0, shape == nil ? 0 : 1)
            for dim in shape ?? [] {
                switch dim {
                case .fixed(let n): connx_type_add_dim_value(t, Int64(n))
                case .symbolic(let s): try check(connx_type_add_dim_param(t, arena.str(s)))
                case .unknown: connx_type_add_dim_unknown(t)
                }
            }
        case .sequence(let element):
            let e = try handle(connx_type_set_sequence(t))
            if let element { try fill(e, element, name: name) }
        case .optional(let element):
            let e = try handle(connx_type_set_optional(t))
            if let element { try fill(e, element, name: name) }
        case .map(let keyType, let valueType):
            let v = try handle(connx_type_set_map(t, keyType?.rawValue ?? 0))
            if let valueType { try fill(v, valueType, name: name) }
        case .unsupported(let what):
            throw ONNXFormatError.unsupported(file: file, reason: "value '\(name)' has type \(what), which cannot be written")
        }
    }

    func fill(_ t: OpaquePointer, _ tensor: TensorData, external: ExternalPlacement?) throws {
        try check(connx_tensor_set_strings(t, arena.str(tensor.name), arena.str(tensor.docString)))
        connx_tensor_set_data_type(t, tensor.elementType.rawValue)
        let dims = tensor.dims.map { Int64($0) }
        try dims.withUnsafeBufferPointer { try check(connx_tensor_add_dims(t, $0.baseAddress, $0.count)) }
        guard let count = tensor.elementCount else {
            throw ONNXFormatError.invalidTensor(file: file, tensor: tensor.name, reason: "dims \(tensor.dims) are negative or overflow")
        }
        if tensor.elementType == .string {
            guard tensor.strings.count == count else {
                throw ONNXFormatError.invalidTensor(file: file, tensor: tensor.name,
                    reason: "dims \(tensor.dims) need \(count) strings, the tensor holds \(tensor.strings.count)")
            }
            for s in tensor.strings { try check(connx_tensor_add_string(t, arena.str(s))) }
            return
        }
        guard let bytes = ShapeMath.byteCount(tensor.dims, tensor.elementType), bytes == tensor.bytes.count else {
            throw ONNXFormatError.invalidTensor(file: file, tensor: tensor.name,
                reason: "holds \(tensor.bytes.count) bytes but dims \(tensor.dims) of \(tensor.elementType) need \(ShapeMath.byteCount(tensor.dims, tensor.elementType).map(String.init) ?? "an overflowing number of")")
        }
        if let external {
            connx_tensor_set_data_location(t, Int32(CONNX_DATA_EXTERNAL))
            try check(connx_tensor_add_external_data(t, arena.str("location"), arena.str(external.location)))
            try check(connx_tensor_add_external_data(t, arena.str("offset"), arena.str(String(external.offset))))
            try check(connx_tensor_add_external_data(t, arena.str("length"), arena.str(String(external.length))))
        } else {
            try tensor.bytes.withUnsafeBytes { try check(connx_tensor_set_raw_data(t, $0.baseAddress, $0.count)) }
            if typedFields { try check(connx_tensor_move_raw_to_typed_field(t)) }
        }
    }
}
