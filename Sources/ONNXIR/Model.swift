// ONNX's model structure as Swift value types: model, graph, node, attribute, value info.

/// One dimension of a value's shape: a number, a symbolic name (`batch`), or unknown.
public enum Dimension: Equatable, Hashable, Sendable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var description: String {
        switch self {
        case .fixed(let n): return String(n)
        case .symbolic(let s): return s
        case .unknown: return "?"
        }
    }
}

/// The type of a graph input, output or intermediate value.
public indirect enum ValueType: Equatable, Sendable {
    /// A tensor; `shape == nil` means the rank is unknown.
    case tensor(elementType: ElementType?, shape: [Dimension]?)
    case sequence(ValueType?)
    case optional(ValueType?)
    case map(keyType: ElementType?, valueType: ValueType?)
    /// A type the IR does not model (sparse tensors, opaque); its ONNX name is kept.
    case unsupported(String)
}

/// `ValueInfoProto`: a named, typed value.
public struct ValueInfo: Equatable, Sendable {
    public var name: String
    public var type: ValueType?
    public var docString: String

    public init(name: String, type: ValueType? = nil, docString: String = "") {
        self.name = name
        self.type = type
        self.docString = docString
    }

    /// Convenience for a tensor value info.
    public static func tensor(_ name: String, _ elementType: ElementType, _ shape: [Dimension]?) -> ValueInfo {
        ValueInfo(name: name, type: .tensor(elementType: elementType, shape: shape))
    }
}

/// An attribute value (`AttributeProto`), one case per ONNX attribute kind.
public indirect enum AttributeValue: Equatable, Sendable {
    case float(Float)
    case int(Int64)
    case string([UInt8])
    case tensor(TensorData)
    case graph(Graph)
    case floats([Float])
    case ints([Int64])
    case strings([[UInt8]])
    case tensors([TensorData])
    case graphs([Graph])
    /// Kinds the IR keeps only by name (sparse tensors, type protos), reported when used.
    case unsupported(kind: String)

    /// The ONNX name of this kind (`INT`, `FLOATS`, ...).
    public var kindName: String {
        switch self {
        case .float: return "FLOAT"
        case .int: return "INT"
        case .string: return "STRING"
        case .tensor: return "TENSOR"
        case .graph: return "GRAPH"
        case .floats: return "FLOATS"
        case .ints: return "INTS"
        case .strings: return "STRINGS"
        case .tensors: return "TENSORS"
        case .graphs: return "GRAPHS"
        case .unsupported(let kind): return kind
        }
    }
}

/// `AttributeProto`.
public struct Attribute: Equatable, Sendable {
    public var name: String
    public var value: AttributeValue
    public var docString: String
    /// Set when the attribute refers to an attribute of an enclosing function.
    public var refAttrName: String

    public init(name: String, value: AttributeValue, docString: String = "", refAttrName: String = "") {
        self.name = name
        self.value = value
        self.docString = docString
        self.refAttrName = refAttrName
    }
}

/// `NodeProto`: one operator application.
public struct Node: Equatable, Sendable {
    public var name: String
    public var opType: String
    /// Empty string means the default ONNX domain (`ai.onnx`).
    public var domain: String
    /// Input value names; an empty name is an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [Attribute]
    public var docString: String

    public init(name: String = "", opType: String, domain: String = "", inputs: [String],
                outputs: [String], attributes: [Attribute] = [], docString: String = "") {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.docString = docString
    }

    /// The attribute called `name`, if present.
    public func attribute(_ name: String) -> AttributeValue? {
        attributes.first { $0.name == name }?.value
    }
}

/// `GraphProto`.
public struct Graph: Equatable, Sendable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var valueInfos: [ValueInfo]
    public var initializers: [TensorData]
    public var docString: String

    public init(name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [],
                outputs: [ValueInfo] = [], valueInfos: [ValueInfo] = [],
                initializers: [TensorData] = [], docString: String = "") {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfos = valueInfos
        self.initializers = initializers
        self.docString = docString
    }
}

/// `OperatorSetIdProto`: which version of a domain's operators the model uses.
public struct OpsetImport: Equatable, Hashable, Sendable {
    /// Empty string (or `ai.onnx`) is the default ONNX domain.
    public var domain: String
    public var version: Int64

    public init(domain: String, version: Int64) {
        self.domain = domain
        self.version = version
    }
}

/// `ModelProto`. Local functions are counted but not modelled.
public struct Model: Equatable, Sendable {
    public var irVersion: Int64
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int64
    public var docString: String
    public var opsetImports: [OpsetImport]
    /// `metadata_props` in file order.
    public var metadata: [(key: String, value: String)]
    public var graph: Graph
    /// Number of model-local functions (`ModelProto.functions`); the IR does not model them.
    public var functionCount: Int

    public init(irVersion: Int64 = 8, producerName: String = "", producerVersion: String = "",
                domain: String = "", modelVersion: Int64 = 0, docString: String = "",
                opsetImports: [OpsetImport] = [], metadata: [(key: String, value: String)] = [],
                graph: Graph, functionCount: Int = 0) {
        self.irVersion = irVersion
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.opsetImports = opsetImports
        self.metadata = metadata
        self.graph = graph
        self.functionCount = functionCount
    }

    /// The opset version imported for `domain` (`""` and `ai.onnx` are the same domain).
    public func opsetVersion(for domain: String) -> Int64? {
        let d = (domain == "ai.onnx") ? "" : domain
        return opsetImports.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == d }?.version
    }

    public static func == (a: Model, b: Model) -> Bool {
        a.irVersion == b.irVersion && a.producerName == b.producerName
            && a.producerVersion == b.producerVersion && a.domain == b.domain
            && a.modelVersion == b.modelVersion && a.docString == b.docString
            && a.opsetImports == b.opsetImports
            && a.metadata.map(\.key) == b.metadata.map(\.key)
            && a.metadata.map(\.value) == b.metadata.map(\.value)
            && a.graph == b.graph && a.functionCount == b.functionCount
    }
}
