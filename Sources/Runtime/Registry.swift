// The operator registry: (domain, op type, opset range) -> operator, and what a model lacks.

import ONNXIR

/// One row of the operator table.
// Metatypes are immutable, so a table of them is safe to share across threads.
public struct OperatorRegistration: @unchecked Sendable {
    public var domain: String
    public var opType: String
    /// Model opset versions (of `domain`) this implementation accepts.
    public var opsets: ClosedRange<Int64>
    /// The operator's type; `make` configures it for one node.
    public var type: any Operator.Type

    public init(_ opType: String, domain: String = "", opsets: ClosedRange<Int64>,
                _ type: any Operator.Type) {
        self.opType = opType
        self.domain = domain
        self.opsets = opsets
        self.type = type
    }

    public func make(_ node: Node, _ opset: Int64) throws -> any Operator {
        try type.init(node: node, opset: opset)
    }
}

/// Looks operators up by (domain, op type, opset).
public struct OperatorRegistry: Sendable {
    public let registrations: [OperatorRegistration]

    public init(_ registrations: [OperatorRegistration]) { self.registrations = registrations }

    /// Every operator the interpreter and trainer implement (see `OperatorTable.swift`).
    public static let standard = OperatorRegistry(operatorTable)

    static func normalize(_ domain: String) -> String { domain == "ai.onnx" ? "" : domain }

    public func lookup(domain: String, opType: String, opset: Int64) -> OperatorRegistration? {
        let d = Self.normalize(domain)
        return registrations.first { $0.domain == d && $0.opType == opType && $0.opsets.contains(opset) }
    }

    /// Configures the operator for `node` under the model's opset for the node's domain.
    public func makeOperator(for node: Node, opset: Int64) throws -> any Operator {
        guard let r = lookup(domain: node.domain, opType: node.opType, opset: opset) else {
            throw RuntimeError.unsupportedNodes([UnsupportedNode(name: node.name, opType: node.opType,
                                                                 domain: node.domain, opset: opset)])
        }
        return try r.make(node, opset)
    }

    /// Every node (in subgraphs too) whose operator is not registered for the model's opset,
    /// in graph order. A domain the model does not import counts with opset 0.
    public func unsupportedNodes(in model: Model) -> [UnsupportedNode] {
        var result: [UnsupportedNode] = []
        func visit(_ graph: Graph) {
            for node in graph.nodes {
                let opset = model.opsetVersion(for: node.domain) ?? 0
                if lookup(domain: node.domain, opType: node.opType, opset: opset) == nil {
                    result.append(UnsupportedNode(name: node.name, opType: node.opType, domain: node.domain, opset: opset))
                }
                for attribute in node.attributes {
                    switch attribute.value {
                    case .graph(let g): visit(g)
                    case .graphs(let gs): gs.forEach(visit)
                    default: break
                    }
                }
            }
        }
        visit(model.graph)
        return result
    }
}
