// Files that are not valid models are refused with one clear error naming the file and the reason.

import Foundation
import ONNXFormat
import ONNXIR
import TestSupport
import XCTest

final class BadInputTests: XCTestCase {
    private var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-bad-input") }
    override func tearDown() { folder.remove() }

    /// Loads `path`, expecting an `ONNXFormatError` whose description names the file and contains `reason`.
    private func assertRefused(_ path: String, _ reason: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try ONNXFile.load(path: path)
            XCTFail("\(path) loaded but should have been refused", file: file, line: line)
        } catch let error as ONNXFormatError {
            XCTAssertEqual(error.file, path, file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
            XCTAssertTrue(error.description.contains(reason), "'\(error)' does not say '\(reason)'", file: file, line: line)
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
        }
    }

    private func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = folder.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func validModelBytes() throws -> [UInt8] {
        try ONNXFile.serialize(makeModel(
            nodes: [Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])],
            inputs: [.tensor("x", .float, [.fixed(4)])], outputs: [.tensor("y", .float, [.fixed(4)])],
            initializers: [TensorData(name: "w", dims: [64], floats: Array(repeating: 1.5, count: 64))]))
    }

    func testEmptyFile() throws {
        assertRefused(try write("empty.onnx", []), "the file is empty")
    }

    func testTextFile() throws {
        let text = "This is a README, not a model.\nIt has two lines.\n"
        assertRefused(try write("readme.onnx", Array(text.utf8)), "not an ONNX model")
    }

    func testTruncatedModel() throws {
        let bytes = try validModelBytes()
        // Cut inside the initializer's raw_data: every prefix that ends mid-field must fail.
        assertRefused(try write("truncated.onnx", Array(bytes.prefix(bytes.count - 100))), "not an ONNX model")
        assertRefused(try write("truncated1.onnx", Array(bytes.dropLast())), "not an ONNX model")
    }

    func testRandomBytes() throws {
        // A fixed linear congruential generator: the same "random" file on every run.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<4096).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        assertRefused(try write("random.onnx", bytes), "not an ONNX model")
    }

    func testDirectoryGivenAsModel() throws {
        assertRefused(folder.path, "is a directory")
    }

    func testMissingFile() throws {
        assertRefused(folder.file("nope.onnx"), "No such file")
    }

    func testRawDataLengthDisagreesWithDims() {
        assertRefused(Fixtures.path("format/bad/raw_length_mismatch.onnx"),
                      "tensor 'weights': raw_data holds 5 bytes but dims need 8")
    }

    func testNegativeDims() {
        assertRefused(Fixtures.path("format/bad/negative_dims.onnx"), "tensor 'weights': negative dimension -1")
    }

    func testOverflowingDims() {
        assertRefused(Fixtures.path("format/bad/overflowing_dims.onnx"), "tensor 'weights': the product of dims")
    }

    func testUnknownDefaultOpsetIsReported() throws {
        let path = Fixtures.path("format/bad/opset_99.onnx")
        let model = try ONNXFile.load(path: path)
        XCTAssertThrowsError(try ONNXFile.check(model, file: path)) { error in
            XCTAssertEqual(error as? ONNXFormatError, .unknownOpset(file: path, domain: "", version: 99, knownMax: 17))
            XCTAssertEqual("\(error)", "\(path): opset ai.onnx version 99 is not known to this toolkit (it knows ai.onnx up to version 17)")
        }
        XCTAssertFalse(ONNXFile.verdict(model).isValid)
    }

    func testUnknownDomainIsReported() throws {
        let path = Fixtures.path("format/bad/unknown_domain.onnx")
        let model = try ONNXFile.load(path: path)
        XCTAssertThrowsError(try ONNXFile.check(model, file: path)) { error in
            XCTAssertEqual(error as? ONNXFormatError, .unknownOpset(file: path, domain: "com.unknown", version: 1, knownMax: nil))
            XCTAssertTrue("\(error)".contains("opset domain 'com.unknown' (version 1) is not known"), "\(error)")
        }
    }

    func testNotATensorFile() throws {
        XCTAssertThrowsError(try ONNXFile.loadTensor(path: try write("x.pb", []))) { error in
            XCTAssertTrue("\(error)".contains("x.pb: not an ONNX TensorProto: the file is empty"), "\(error)")
        }
        XCTAssertThrowsError(try ONNXFile.loadTensor(path: try write("y.pb", Array("hello\n".utf8)))) { error in
            XCTAssertTrue("\(error)".contains("y.pb: not an ONNX TensorProto"), "\(error)")
        }
    }

    /// Writing a tensor whose bytes disagree with its dims is refused too (never a trap).
    func testWritingInconsistentTensorIsRefused() {
        let bad = TensorData(name: "w", elementType: .float, dims: [3], bytes: [0, 0, 0, 0])
        XCTAssertThrowsError(try ONNXFile.serialize(makeModel(initializers: [bad]))) { error in
            XCTAssertTrue("\(error)".contains("tensor 'w': holds 4 bytes but dims [3] of float need 12"), "\(error)")
        }
        let overflow = TensorData(name: "o", elementType: .float, dims: [Int.max, 2], bytes: [])
        XCTAssertThrowsError(try ONNXFile.serialize(makeModel(initializers: [overflow]))) { error in
            XCTAssertTrue("\(error)".contains("tensor 'o'"), "\(error)")
        }
    }
}
