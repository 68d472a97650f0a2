// Constant: a tensor from the node's one value attribute (value, value_float(s), value_int(s)).

import ONNXIR

public struct Constant: Operator {
    let label: NodeLabel
    let value: Tensor

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        var found: [(String, Tensor)] = []
        if let t = try reader.tensor("value") {
            do { found.append(("value", try Tensor(t))) } catch let error as RuntimeError {
                throw reader.fail("value", "\(error)")
            }
        }
        if let f = try reader.float("value_float") { found.append(("value_float", Tensor(scalar: f))) }
        if let fs = try reader.floats("value_floats") { found.append(("value_floats", Tensor(shape: [fs.count], floats: fs))) }
        if let i = try reader.int("value_int") { found.append(("value_int", Tensor(shape: [], ints: [Int64(i)]))) }
        if let is_ = try reader.ints("value_ints") { found.append(("value_ints", Tensor(shape: [is_.count], ints: is_.map(Int64.init)))) }
        // Strings and sparse tensors have no runtime representation: say so by name.
        for name in ["value_string", "value_strings", "sparse_value"] where reader.has(name) {
            throw reader.fail(name, "is not supported: the runtime holds only float and integer tensors")
        }
        guard found.count == 1 else {
            throw reader.fail(found.first?.0 ?? "value",
                              found.isEmpty ? "exactly one value attribute is required, found none"
                                            : "exactly one value attribute is allowed, found \(found.map(\.0).joined(separator: ", "))")
        }
        value = found[0].1
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] { [ValueShape(value)] }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 0...0)
        return ForwardResult([value])
    }
}
