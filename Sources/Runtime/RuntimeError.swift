// Errors the runtime reports: each names the node, tensor or value it is about.

/// A failure while loading or running a graph. Descriptions name the node (`NAME (OP)`) or
/// tensor concerned; nothing here is a programmer error, so nothing traps.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// Every node whose (domain, op, opset) no operator implements, reported together.
    case unsupportedNodes([UnsupportedNode])
    /// An attribute that is unknown, missing, of the wrong kind or has an unsupported value.
    case invalidAttribute(node: String, opType: String, attribute: String, reason: String)
    /// Wrong number, type or shape of inputs for a node.
    case invalidInput(node: String, opType: String, reason: String)
    case invalidTensor(name: String, reason: String)
    case unsupportedType(name: String, type: String)
    /// Graph structure: cycles, undefined inputs, duplicate outputs.
    case invalidGraph(String)
    /// A value the caller asked for or had to provide.
    case missingValue(String)
    /// A budget the caller set (e.g. bytes of kept intermediate values) would be exceeded.
    case limitExceeded(String)

    public var description: String {
        switch self {
        case .unsupportedNodes(let nodes):
            let list = nodes.map { "  \($0)" }.joined(separator: "\n")
            return "\(nodes.count) node(s) use operators the interpreter cannot run:\n\(list)"
        case let .invalidAttribute(node, op, attribute, reason):
            return "node \(node) (\(op)): attribute '\(attribute)': \(reason)"
        case let .invalidInput(node, op, reason):
            return "node \(node) (\(op)): \(reason)"
        case let .invalidTensor(name, reason):
            return "tensor '\(name)': \(reason)"
        case let .unsupportedType(name, type):
            return "tensor '\(name)': element type \(type) is not supported by the runtime"
        case .invalidGraph(let reason):
            return "invalid graph: \(reason)"
        case .missingValue(let name):
            return "missing value '\(name)'"
        case .limitExceeded(let reason):
            return reason
        }
    }
}

/// A node the interpreter cannot run, with what identifies the missing operator.
public struct UnsupportedNode: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var opType: String
    public var domain: String
    public var opset: Int64

    public init(name: String, opType: String, domain: String, opset: Int64) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.opset = opset
    }

    public var description: String {
        "\(name.isEmpty ? "<unnamed>" : name): \(domain.isEmpty ? "ai.onnx" : domain)::\(opType) (opset \(opset))"
    }
}
