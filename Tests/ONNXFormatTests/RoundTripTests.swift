// Parse -> serialize -> parse gives an equal model, on the onnx package's models and our fixtures.

import Foundation
import ONNXFormat
import ONNXIR
import TestSupport
import XCTest

final class RoundTripTests: XCTestCase {
    /// Round-trips every `*.onnx` under `$MANET_ONNX_DATA/<folder>`; returns how many.
    private func roundTripFolder(_ folder: String, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let data = try TestEnvironment.require("MANET_ONNX_DATA")
        let root = URL(fileURLWithPath: data).appendingPathComponent(folder).path
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            XCTFail("\(root) does not exist: MANET_ONNX_DATA should point at onnx/backend/test/data", file: file, line: line)
            return 0
        }
        let models = walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".onnx") }.sorted()
        XCTAssertFalse(models.isEmpty, "no .onnx files under \(root)", file: file, line: line)
        var count = 0
        for relative in models {
            if try roundTrip(root + "/" + relative, file: file, line: line) { count += 1 }
        }
        print("round-trip: \(folder): \(count) of \(models.count) models equal after parse -> serialize -> parse")
        XCTAssertEqual(count, models.count, "\(folder): some models did not round-trip", file: file, line: line)
        return count
    }

    /// True when the model survives a round trip unchanged; records a failure otherwise.
    @discardableResult
    private func roundTrip(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        let first: Model
        do {
            first = try ONNXFile.load(path: path)
        } catch {
            XCTFail("\(error)", file: file, line: line)
            return false
        }
        let bytes = try ONNXFile.serialize(first)
        let folder = (path as NSString).deletingLastPathComponent
        let second = try ONNXFile.load(bytes: bytes, baseDirectory: folder)
        guard first == second else {
            XCTFail("\(path): model differs after a round trip", file: file, line: line)
            return false
        }
        // The serialized form is stable too: serializing the re-parsed model gives the same bytes.
        guard try ONNXFile.serialize(second) == bytes else {
            XCTFail("\(path): serialization is not stable", file: file, line: line)
            return false
        }
        return true
    }

    func testPytorchConvertedModelsRoundTrip() throws {
        XCTAssertGreaterThan(try roundTripFolder("pytorch-converted"), 0)
    }

    func testPytorchOperatorModelsRoundTrip() throws {
        XCTAssertGreaterThan(try roundTripFolder("pytorch-operator"), 0)
    }

    func testSimpleModelsRoundTrip() throws {
        XCTAssertGreaterThan(try roundTripFolder("simple"), 0)
    }

    func testLightModelsRoundTrip() throws {
        XCTAssertGreaterThan(try roundTripFolder("light"), 0)
    }

    /// Every ONNX fixture the project commits (MA-Net exports included) round-trips, external data too.
    func testFixtureModelsRoundTrip() throws {
        // fixtures/format/bad/ holds models that must be refused (BadInputTests);
        // fixtures/fuzz-regressions/ holds fuzzer-mutated bytes that must not crash a loader
        // (FuzzRegressionTests), not models whose every field is meant to survive a round trip.
        let models = Fixtures.files(withSuffix: ".onnx").filter { !$0.contains("/format/bad/") && !$0.contains("/fuzz-regressions/") }
        XCTAssertFalse(models.isEmpty)
        var count = 0
        for path in models where try roundTrip(path) { count += 1 }
        print("round-trip: fixtures: \(count) of \(models.count) models equal after parse -> serialize -> parse")
        XCTAssertEqual(count, models.count)
    }

    /// The light models ship reference outputs as TensorProto `.pb` files; they read and re-write.
    func testTensorFilesRoundTrip() throws {
        let data = try TestEnvironment.require("MANET_ONNX_DATA")
        let root = data + "/light"
        let files = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".pb") }.sorted()
        XCTAssertFalse(files.isEmpty)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for name in files {
            let tensor = try ONNXFile.loadTensor(path: root + "/" + name)
            XCTAssertEqual(tensor.bytes.count, ShapeMath.byteCount(tensor.dims, tensor.elementType), name)
            try ONNXFile.saveTensor(tensor, to: folder.file(name))
            XCTAssertEqual(try ONNXFile.loadTensor(path: folder.file(name)), tensor, name)
        }
        print("round-trip: light tensor files: \(files.count)")
    }
}
