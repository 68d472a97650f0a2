// Every element type, attribute kind, value-info form and model field survives writing and reading.

import Foundation
@testable import ONNXFormat
import ONNXIR
import TestSupport
import XCTest

/// A model whose graph is `nodes`, with the given initializers and a single opset import.
func makeModel(nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
               initializers: [TensorData] = [], opset: Int64 = 13) -> Model {
    Model(irVersion: 8, producerName: "ONNXFormatTests", opsetImports: [OpsetImport(domain: "", version: opset)],
          graph: Graph(name: "test", nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers))
}

final class ModelContentTests: XCTestCase {
    /// Six elements of every numeric type, with bytes that are valid numbers (no NaN / Inf).
    private func sampleTensors() -> [TensorData] {
        var tensors: [TensorData] = []
        for type in ElementType.allCases where type != .string {
            let size = type.byteSize!
            var bytes: [UInt8] = []
            for i in 0..<6 {
                for b in 0..<size {
                    // Masking to 0x3f keeps float exponents below all-ones; bool must be 0 or 1.
                    bytes.append(type == .bool ? UInt8(i % 2) : UInt8((i * 31 + b * 7 + 3) & 0x3f) | (b == 0 ? 0x80 : 0))
                }
            }
            tensors.append(TensorData(name: "t_\(type)", elementType: type, dims: [2, 3], bytes: bytes, docString: "doc \(type)"))
        }
        tensors.append(TensorData(name: "t_string", elementType: .string, dims: [3], strings: [Array("a".utf8), [], [0xff, 0x00, 0x7a]]))
        tensors.append(TensorData(name: "t_scalar", dims: [], floats: [2.5]))
        tensors.append(TensorData(name: "t_empty", dims: [0, 4], floats: []))
        return tensors
    }

    func testEveryElementTypeRoundTripsThroughRawData() throws {
        let model = makeModel(initializers: sampleTensors())
        let loaded = try ONNXFile.load(bytes: try ONNXFile.serialize(model))
        XCTAssertEqual(loaded.graph.initializers.count, ElementType.allCases.count + 2)
        for (a, b) in zip(loaded.graph.initializers, model.graph.initializers) { XCTAssertEqual(a, b, a.name) }
        XCTAssertEqual(loaded, model)
    }

    func testEveryElementTypeRoundTripsThroughTypedFields() throws {
        let model = makeModel(initializers: sampleTensors())
        let bytes = try ONNXFile.serializeUsingTypedFields(model)
        XCTAssertNotEqual(bytes, try ONNXFile.serialize(model), "typed fields should change the encoding")
        let loaded = try ONNXFile.load(bytes: bytes)
        for (a, b) in zip(loaded.graph.initializers, model.graph.initializers) { XCTAssertEqual(a, b, a.name) }
        XCTAssertEqual(loaded, model)
    }

    /// Tensors written by the `onnx` package in typed fields read as the same bytes as its raw_data
    /// twins (fixtures/format/typed_fields.onnx, made by tools/fixtures/make_format_fixtures.py).
    func testTypedFieldsFromTheOnnxPackageMatchRawData() throws {
        let model = try ONNXFile.load(path: Fixtures.path("format/typed_fields.onnx"))
        let byName = Dictionary(uniqueKeysWithValues: model.graph.initializers.map { ($0.name, $0) })
        var compared = 0
        for type in ElementType.allCases where type != .string {
            let typed = try XCTUnwrap(byName["typed_\(type)"], "typed_\(type)")
            let raw = try XCTUnwrap(byName["raw_\(type)"], "raw_\(type)")
            XCTAssertEqual(typed.elementType, type)
            XCTAssertEqual(typed.dims, [2, 3])
            XCTAssertEqual(typed.bytes.count, 6 * type.byteSize!, "\(type)")
            XCTAssertEqual(typed.bytes, raw.bytes, "\(type): typed field and raw_data disagree")
            compared += 1
        }
        XCTAssertEqual(compared, 15)
        XCTAssertEqual(byName["typed_float"]?.floats, [0.0, 1.5, -2.25, 3.0e38, -1.0e-38, 7.0])
        XCTAssertEqual(byName["typed_int64"]?.int64s, [0, 1, -1, Int64.max, Int64.min, 5])
        XCTAssertEqual(byName["typed_string"]?.strings, [Array("a".utf8), [], [0xff, 0x00, 0x7a]])
        let pb = try ONNXFile.loadTensor(path: Fixtures.path("format/typed_float_tensor.pb"))
        XCTAssertEqual(pb.name, "x")
        XCTAssertEqual(pb.floats, [1.0, -2.0, 0.5, 4.0])
    }

    func testEveryAttributeKindAndModelFieldRoundTrips() throws {
        let body = Graph(name: "body", nodes: [Node(name: "inner", opType: "Identity", inputs: ["x"], outputs: ["y"])],
                         inputs: [], outputs: [.tensor("y", .float, [.fixed(2)])], docString: "a branch")
        let tensor = TensorData(name: "value", dims: [2], floats: [1, 2])
        let attributes = [
            Attribute(name: "f", value: .float(0.25), docString: "a float"),
            Attribute(name: "i", value: .int(-7)),
            Attribute(name: "s", value: .string([0x61, 0x00, 0xff])),
            Attribute(name: "t", value: .tensor(tensor)),
            Attribute(name: "g", value: .graph(body)),
            Attribute(name: "fs", value: .floats([1.5, -2])),
            Attribute(name: "is", value: .ints([1, Int64.max, Int64.min])),
            Attribute(name: "ss", value: .strings([Array("x".utf8), []])),
            Attribute(name: "ts", value: .tensors([tensor, TensorData(name: "n", dims: [1], int64s: [3])])),
            Attribute(name: "gs", value: .graphs([body, Graph(name: "empty")])),
            Attribute(name: "empty_ints", value: .ints([])),
            Attribute(name: "ref", value: .float(0), refAttrName: "outer_alpha"),
        ]
        let node = Node(name: "n0", opType: "Custom", domain: "com.example", inputs: ["a", "", "b"], outputs: ["c"],
                        attributes: attributes, docString: "node doc")
        let inputs: [ValueInfo] = [
            ValueInfo(name: "a", type: .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(3), .unknown, .fixed(0)]),
                      docString: "input doc"),
            ValueInfo(name: "b", type: .tensor(elementType: .int64, shape: nil)),
            ValueInfo(name: "scalar", type: .tensor(elementType: .double, shape: [])),
            ValueInfo(name: "undefined", type: .tensor(elementType: nil, shape: [.fixed(1)])),
            ValueInfo(name: "seq", type: .sequence(.tensor(elementType: .float, shape: [.symbolic("n")]))),
            ValueInfo(name: "opt", type: .optional(.tensor(elementType: .bool, shape: []))),
            ValueInfo(name: "map", type: .map(keyType: .int64, valueType: .tensor(elementType: .float, shape: nil))),
            ValueInfo(name: "untyped"),
        ]
        let model = Model(
            irVersion: 9, producerName: "producer", producerVersion: "1.2.3", domain: "org.example",
            modelVersion: 42, docString: "model doc",
            opsetImports: [OpsetImport(domain: "", version: 13), OpsetImport(domain: "com.example", version: 2),
                           OpsetImport(domain: "ai.onnx.ml", version: 3)],
            metadata: [(key: "b", value: "2"), (key: "a", value: "1"), (key: "b", value: "again")],
            graph: Graph(name: "main", nodes: [node], inputs: inputs, outputs: [.tensor("c", .float, [.symbolic("batch")])],
                         valueInfos: [ValueInfo(name: "inner_value", type: .tensor(elementType: .float16, shape: [.fixed(1)]))],
                         initializers: [tensor], docString: "graph doc"))
        let loaded = try ONNXFile.load(bytes: try ONNXFile.serialize(model))
        XCTAssertEqual(loaded.graph.nodes[0].attributes.map(\.value.kindName),
                       ["FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS", "STRINGS", "TENSORS", "GRAPHS", "INTS", "FLOAT"])
        XCTAssertEqual(loaded.graph.nodes[0].attributes, attributes)
        XCTAssertEqual(loaded.graph.inputs, inputs)
        XCTAssertEqual(loaded.metadata.map(\.key), ["b", "a", "b"])
        XCTAssertEqual(loaded.metadata.map(\.value), ["2", "1", "again"])
        XCTAssertEqual(loaded.opsetImports, model.opsetImports)
        XCTAssertEqual(loaded.docString, "model doc")
        XCTAssertEqual(loaded.graph.docString, "graph doc")
        XCTAssertEqual(loaded.graph.nodes[0].docString, "node doc")
        XCTAssertEqual(loaded, model)
    }

    func testTensorFileRoundTrip() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for tensor in sampleTensors() {
            let path = folder.file("\(tensor.name).pb")
            try ONNXFile.saveTensor(tensor, to: path)
            XCTAssertEqual(try ONNXFile.loadTensor(path: path), tensor)
        }
    }
}
