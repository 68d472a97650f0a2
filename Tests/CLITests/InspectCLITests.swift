// `manet inspect` end to end: the built binary on real exports and on every kind of bad input.

import Foundation
import TestSupport
import XCTest

final class InspectCLITests: XCTestCase {
    private var folder: TemporaryFolder!

    override func setUpWithError() throws {
        // A missing binary fails every test (a thrown setUp error is a failure, not a skip):
        // these tests are the proof that the CLI works.
        guard FileManager.default.isExecutableFile(atPath: manetBinary) else {
            throw MissingBinary(path: manetBinary)
        }
        folder = try TemporaryFolder("manet-cli")
    }

    override func tearDown() { folder?.remove() }

    struct MissingBinary: Error, CustomStringConvertible {
        var path: String
        var description: String {
            "no manet binary at \(path): run via `make test` (sets MANET_BINARY) or `swift build -c release` first"
        }
    }

    /// Runs `manet inspect path`, expecting exit status 2 and `manet: error: PATH: ...REASON...` on stderr.
    private func assertInspectFails(_ path: String, _ reason: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try runManet(["inspect", path])
        XCTAssertEqual(result.status, 2, "stderr: \(result.stderr)", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one error line expected, got: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("manet: error: \(path): "), result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(reason), "'\(result.stderr)' does not say '\(reason)'", file: file, line: line)
    }

    private func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = folder.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testTorchScriptExport() throws {
        let path = Fixtures.path("manet_w8_torchscript_op13.onnx")
        let result = try runManet(["inspect", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        for expected in [
            "IR version:  7\n", "Producer:    pytorch", "Opsets:      ai.onnx 13\n",
            "  input: float [batch, 3, 224, 224]\n", "  logits_local: float [batch, 7]\n", "  logits_global: float [batch, 7]\n",
            "Nodes:       721\n", "  Conv               104\n", "  Relu               105\n",
            "Parameters:  795,934 elements in 276 initializers, 3,183,736 bytes\n",
            "External data: none\n", "Checker:     valid\n",
        ] {
            XCTAssertTrue(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }
    }

    func testDynamoExportWithExternalDataAsJSON() throws {
        let path = Fixtures.path("manet_w8_dynamo/model.onnx")
        let result = try runManet(["inspect", "--json", path])
        XCTAssertEqual(result.stderr, "")
        XCTAssertEqual(result.status, 0)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["irVersion"] as? Int, 10)
        XCTAssertEqual(json["nodeCount"] as? Int, 596)
        let parameters = try XCTUnwrap(json["parameters"] as? [String: Int])
        XCTAssertEqual(parameters["elements"], 795_948)
        XCTAssertEqual(parameters["tensors"], 287)
        let external = try XCTUnwrap(json["externalData"] as? [[String: Any]])
        XCTAssertEqual(external.count, 1)
        XCTAssertEqual(external.first?["location"] as? String, "model.onnx.data")
        XCTAssertEqual(external.first?["tensors"] as? Int, 122)
        let inputs = try XCTUnwrap(json["inputs"] as? [[String: Any]])
        XCTAssertEqual(inputs.first?["dims"] as? [String], ["batch", "3", "224", "224"])
        let opsets = try XCTUnwrap(json["opsets"] as? [[String: Any]])
        XCTAssertEqual(opsets.first?["version"] as? Int, 20)
    }

    func testEveryUnsupportedNodeIsListedInOnePass() throws {
        let result = try runManet(["inspect", Fixtures.path("format/unsupported_ops.onnx")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Unsupported by the interpreter: 3 nodes\n"), result.stdout)
        for expected in ["  Det (ai.onnx opset 13): det_first\n", "  Einsum (ai.onnx opset 13): einsum_second\n",
                         "  Det (ai.onnx opset 13): det_third\n"] {
            XCTAssertTrue(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }
    }

    func testEmptyFile() throws { try assertInspectFails(try write("empty.onnx", []), "the file is empty") }

    func testTextFile() throws {
        try assertInspectFails(try write("notes.onnx", Array("not a model\njust text\n".utf8)), "not an ONNX model")
    }

    func testTruncatedModel() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("manet_w8_torchscript_op13.onnx")))
        try assertInspectFails(try write("truncated.onnx", Array(bytes.prefix(bytes.count / 2))), "not an ONNX model")
    }

    func testRandomBytes() throws {
        var state: UInt64 = 42
        let bytes = (0..<10_000).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        try assertInspectFails(try write("random.onnx", bytes), "not an ONNX model")
    }

    func testDirectory() throws { try assertInspectFails(folder.path, "is a directory") }

    func testMissingModel() throws { try assertInspectFails(folder.file("absent.onnx"), "No such file or directory") }

    func testRawDataLengthMismatch() throws {
        try assertInspectFails(Fixtures.path("format/bad/raw_length_mismatch.onnx"),
                               "tensor 'weights': raw_data holds 5 bytes but dims need 8")
    }

    func testNegativeDims() throws {
        try assertInspectFails(Fixtures.path("format/bad/negative_dims.onnx"), "tensor 'weights': negative dimension -1")
    }

    func testOverflowingDims() throws {
        try assertInspectFails(Fixtures.path("format/bad/overflowing_dims.onnx"), "tensor 'weights': the product of dims")
    }

    func testUnknownOpset() throws {
        try assertInspectFails(Fixtures.path("format/bad/opset_99.onnx"),
                               "opset ai.onnx version 99 is not known to this toolkit (it knows ai.onnx up to version 17)")
        try assertInspectFails(Fixtures.path("format/bad/unknown_domain.onnx"),
                               "opset domain 'com.unknown' (version 1) is not known to this toolkit")
    }

    func testMissingExternalDataFile() throws {
        let model = folder.file("model.onnx")
        try FileManager.default.copyItem(atPath: Fixtures.path("manet_w8_dynamo/model.onnx"), toPath: model)
        try assertInspectFails(model, "external data 'model.onnx.data': cannot open")
    }

    func testExternalDataOutsideTheFolder() throws {
        // sub/model.onnx points at model.onnx.data, a symlink to a file outside sub/.
        let sub = folder.file("sub")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("manet_w8_dynamo/model.onnx"), toPath: sub + "/model.onnx")
        try FileManager.default.copyItem(atPath: Fixtures.path("manet_w8_dynamo/model.onnx.data"), toPath: folder.file("data.bin"))
        try FileManager.default.createSymbolicLink(atPath: sub + "/model.onnx.data", withDestinationPath: folder.file("data.bin"))
        try assertInspectFails(sub + "/model.onnx", "outside the model's folder")
    }

    func testNoArgumentIsAUsageError() throws {
        let result = try runManet(["inspect"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("Missing expected argument"), result.stderr)
    }
}
