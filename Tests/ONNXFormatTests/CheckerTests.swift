// The ONNX checker and shape inference run through the C layer; their messages come back as errors.

import Foundation
import ONNXFormat
import ONNXIR
import TestSupport
import XCTest

final class CheckerTests: XCTestCase {
    private func relu(_ x: String, _ y: String) -> Node { Node(name: "relu_\(y)", opType: "Relu", inputs: [x], outputs: [y]) }

    func testValidModelPasses() throws {
        let model = makeModel(nodes: [relu("x", "h"), relu("h", "y")],
                              inputs: [.tensor("x", .float, [.symbolic("batch"), .fixed(3)])],
                              outputs: [.tensor("y", .float, [.symbolic("batch"), .fixed(3)])])
        XCTAssertNoThrow(try ONNXFile.check(model))
        XCTAssertEqual(ONNXFile.verdict(model), .valid)
    }

    func testNestedGraphsAreChecked() throws {
        let branch = { (name: String) in
            Graph(name: name, nodes: [Node(opType: "Identity", inputs: ["x"], outputs: ["\(name)_out"])],
                  outputs: [.tensor("\(name)_out", .float, [.fixed(2)])])
        }
        let ifNode = Node(name: "if", opType: "If", inputs: ["cond"], outputs: ["y"],
                          attributes: [Attribute(name: "then_branch", value: .graph(branch("then"))),
                                       Attribute(name: "else_branch", value: .graph(branch("else")))])
        let model = makeModel(nodes: [ifNode],
                              inputs: [.tensor("cond", .bool, []), .tensor("x", .float, [.fixed(2)])],
                              outputs: [.tensor("y", .float, [.fixed(2)])])
        XCTAssertEqual(ONNXFile.verdict(model), .valid)
        let reloaded = try ONNXFile.load(bytes: try ONNXFile.serialize(model))
        XCTAssertEqual(reloaded, model)

        // A bad op inside a branch is found.
        var broken = model
        broken.graph.nodes[0].attributes[0] = Attribute(name: "then_branch", value: .graph(
            Graph(name: "then", nodes: [Node(opType: "NoSuchOp", inputs: ["x"], outputs: ["o"])],
                  outputs: [.tensor("o", .float, [.fixed(2)])])))
        guard case .invalid(let message) = ONNXFile.verdict(broken) else { return XCTFail("broken branch passed the checker") }
        XCTAssertTrue(message.contains("NoSuchOp"), message)
    }

    func testUnknownOperatorFailsTheChecker() {
        let model = makeModel(nodes: [Node(name: "bad", opType: "NoSuchOp", inputs: ["x"], outputs: ["y"])],
                              inputs: [.tensor("x", .float, [.fixed(1)])], outputs: [.tensor("y", .float, [.fixed(1)])])
        XCTAssertThrowsError(try ONNXFile.check(model, file: "m.onnx")) { error in
            guard case .checkFailed(let file, let message)? = error as? ONNXFormatError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "m.onnx")
            XCTAssertTrue(message.contains("No Op registered for NoSuchOp"), message)
            XCTAssertTrue("\(error)".hasPrefix("m.onnx: ONNX checker: "), "\(error)")
        }
    }

    func testAttributeOfWrongKindFailsTheChecker() {
        let node = Node(name: "flat", opType: "Flatten", inputs: ["x"], outputs: ["y"],
                        attributes: [Attribute(name: "axis", value: .string(Array("one".utf8)))])
        let model = makeModel(nodes: [node], inputs: [.tensor("x", .float, [.fixed(2), .fixed(3)])],
                              outputs: [.tensor("y", .float, [.fixed(2), .fixed(3)])])
        guard case .invalid(let message) = ONNXFile.verdict(model) else { return XCTFail("wrong attribute kind passed") }
        XCTAssertTrue(message.contains("axis"), message)
    }

    func testShapeInferenceFillsIntermediateValues() throws {
        let model = makeModel(nodes: [relu("x", "h"), Node(name: "t", opType: "Transpose", inputs: ["h"], outputs: ["y"])],
                              inputs: [.tensor("x", .float, [.symbolic("batch"), .fixed(3)])],
                              outputs: [.tensor("y", .float, nil)])
        let inferred = try ONNXFile.inferShapes(model)
        XCTAssertEqual(inferred.graph.valueInfos.first { $0.name == "h" }?.type,
                       .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(3)]))
        XCTAssertEqual(inferred.graph.outputs[0].type, .tensor(elementType: .float, shape: [.fixed(3), .symbolic("batch")]))
    }

    func testShapeInferenceErrorsComeBackAsSwiftErrors() {
        let model = makeModel(nodes: [Node(name: "add", opType: "Add", inputs: ["a", "b"], outputs: ["y"])],
                              inputs: [.tensor("a", .float, [.fixed(2)]), .tensor("b", .float, [.fixed(3)])],
                              outputs: [.tensor("y", .float, nil)])
        XCTAssertThrowsError(try ONNXFile.inferShapes(model, file: "add.onnx")) { error in
            guard case .shapeInferenceFailed(let file, let message)? = error as? ONNXFormatError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "add.onnx")
            XCTAssertTrue(message.contains("Incompatible dimensions"), message)
        }
        XCTAssertFalse(ONNXFile.verdict(model).isValid, "full check includes strict shape inference")
    }
}
