// Hand-encoded ONNX protobuf bytes for tests of hostile files (lying dims, deep nesting) that the
// toolkit's own writer refuses to produce. Field numbers are those of onnx.proto.

import ONNXIR

/// `depth` If nodes (`if_0` in the main graph), each holding the next in `then_branch`, built
/// without recursion: the in-memory twin of `ProtoBytes.nestedModel`.
public func nestedIfGraph(depth: Int) -> Graph {
    var graph = Graph(name: "g_\(depth)")
    for k in stride(from: depth - 1, through: 0, by: -1) {
        graph = Graph(name: "g_\(k)", nodes: [Node(name: "if_\(k)", opType: "If", inputs: ["c"], outputs: ["o_\(k)"],
                                                   attributes: [Attribute(name: "then_branch", value: .graph(graph))])])
    }
    return graph
}

/// Protobuf wire-format encoding of the few ONNX messages the limit tests need.
public enum ProtoBytes {
    public static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        repeat {
            let low = UInt8(v & 0x7F)
            v >>= 7
            out.append(v == 0 ? low : low | 0x80)
        } while v != 0
        return out
    }

    /// A varint field (wire type 0).
    public static func int(_ field: Int, _ value: Int64) -> [UInt8] {
        varint(UInt64(field << 3)) + varint(UInt64(bitPattern: value))
    }

    /// A length-delimited field (wire type 2): bytes, string or embedded message.
    public static func bytes(_ field: Int, _ payload: [UInt8]) -> [UInt8] {
        varint(UInt64(field << 3 | 2)) + varint(UInt64(payload.count)) + payload
    }

    public static func string(_ field: Int, _ text: String) -> [UInt8] { bytes(field, Array(text.utf8)) }

    /// `ModelProto` with ir_version 8, default opset 17 and `graph` (GraphProto bytes).
    public static func model(graph: [UInt8]) -> [UInt8] {
        int(1, 8) + bytes(8, int(2, 17)) + bytes(7, graph)
    }

    /// `TensorProto` (float unless `dataType` says otherwise) with raw_data, float_data or
    /// external-data entries.
    public static func tensor(name: String, dims: [Int64], dataType: Int64 = 1, rawData: [UInt8]? = nil,
                              floatData: [Float]? = nil, external: [(String, String)]? = nil) -> [UInt8] {
        var out = dims.flatMap { int(1, $0) } + int(2, dataType) + string(8, name)
        if let rawData { out += bytes(9, rawData) }
        if let floatData {
            out += bytes(4, floatData.flatMap { f -> [UInt8] in
                let b = f.bitPattern
                return [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
            })
        }
        if let external {
            for (k, v) in external { out += bytes(13, string(1, k) + string(2, v)) }
            out += int(14, 1)
        }
        return out
    }

    /// `ValueInfoProto` of a float tensor with fixed dims.
    public static func floatInput(_ name: String, dims: [Int64]) -> [UInt8] {
        let shape = dims.flatMap { bytes(1, int(1, $0)) }
        return string(1, name) + bytes(2, bytes(1, int(1, 1) + bytes(2, shape)))
    }

    /// A model whose main graph holds `If` node `if_0`, whose `then_branch` holds `if_1`, and so
    /// on: `depth` nested subgraphs (the innermost is empty). Built from the outside in with the
    /// lengths computed first, so 10,000 levels take linear time and no recursion.
    public static func nestedModel(depth: Int) -> [UInt8] {
        // Per level k: graph k = [name "g_k"][node if_k: op_type, name, attribute then_branch = graph k+1].
        func graphName(_ k: Int) -> [UInt8] { string(2, "g_\(k)") }
        func nodePrefix(_ k: Int) -> [UInt8] { string(4, "If") + string(3, "if_\(k)") }
        let attrPrefix = string(1, "then_branch") + int(20, 5)  // type GRAPH
        func lengthField(_ field: Int, _ n: Int) -> [UInt8] { varint(UInt64(field << 3 | 2)) + varint(UInt64(n)) }
        var graphLength = [Int](repeating: 0, count: depth + 1)
        graphLength[depth] = graphName(depth).count
        for k in stride(from: depth - 1, through: 0, by: -1) {
            let attr = attrPrefix.count + lengthField(6, graphLength[k + 1]).count + graphLength[k + 1]
            let node = nodePrefix(k).count + lengthField(5, attr).count + attr
            graphLength[k] = graphName(k).count + lengthField(1, node).count + node
        }
        var out = int(1, 8) + bytes(8, int(2, 17)) + lengthField(7, graphLength[0])
        for k in 0..<depth {
            let attr = attrPrefix.count + lengthField(6, graphLength[k + 1]).count + graphLength[k + 1]
            let node = nodePrefix(k).count + lengthField(5, attr).count + attr
            out += graphName(k) + lengthField(1, node) + nodePrefix(k) + lengthField(5, attr) + attrPrefix
                + lengthField(6, graphLength[k + 1])
        }
        out += graphName(depth)
        return out
    }
}
