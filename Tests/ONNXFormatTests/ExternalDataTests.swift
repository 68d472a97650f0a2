// External data: written next to the model, read back, and never read from outside its folder.

import Foundation
@testable import ONNXFormat
import ONNXIR
import TestSupport
import XCTest

final class ExternalDataTests: XCTestCase {
    private var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-external") }
    override func tearDown() { folder.remove() }

    private let big = TensorData(name: "big", dims: [16, 32], floats: (0..<512).map { Float($0) * 0.5 })
    private let other = TensorData(name: "other", dims: [300], int64s: (0..<300).map { Int64($0) - 150 })
    private let small = TensorData(name: "small", dims: [2], floats: [1, 2])

    private var model: Model {
        makeModel(nodes: [Node(name: "add", opType: "Add", inputs: ["x", "small"], outputs: ["y"])],
                  inputs: [.tensor("x", .float, [.fixed(2)])], outputs: [.tensor("y", .float, [.fixed(2)])],
                  initializers: [big, small, other])
    }

    /// Writes `model` to `model.onnx` with its big initializers at the given location / offset / length.
    private func writeModel(location: String, length: Int? = nil) throws -> String {
        let bytes = try ONNXFile.serialize(model, file: "test", placement: { i in
            i == 0 ? ExternalPlacement(location: location, offset: 0, length: length ?? 2048) : nil
        })
        let path = folder.file("model.onnx")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func assertRefused(_ path: String, _ reason: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ONNXFile.load(path: path), file: file, line: line) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(reason), "'\(error)' does not say '\(reason)'", file: file, line: line)
        }
    }

    func testSaveWithExternalDataAndLoad() throws {
        let path = folder.file("model.onnx")
        try ONNXFile.save(model, to: path, externalData: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: path + ".data"))
        // big (2048 bytes) then other (2400 bytes), contiguous; small (8 bytes) stays inline.
        XCTAssertEqual(data.count, 2048 + 2400)
        let modelSize = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertLessThan(modelSize, 1000, "the weights should not be inline")
        let loaded = try ONNXFile.loadWithDetails(path: path)
        XCTAssertEqual(loaded.model, model)
        XCTAssertEqual(loaded.externalData, [
            ExternalDataReference(tensor: "big", location: "model.onnx.data", offset: 0, length: 2048, checksum: nil),
            ExternalDataReference(tensor: "other", location: "model.onnx.data", offset: 2048, length: 2400, checksum: nil),
        ])
        XCTAssertEqual(loaded.externalDataFiles, ["model.onnx.data"])
        // No temporary files left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["model.onnx", "model.onnx.data"])
        // Saving inline afterwards gives the same model, without external references.
        try ONNXFile.save(model, to: path)
        XCTAssertEqual(try ONNXFile.loadWithDetails(path: path).externalData, [])
        XCTAssertEqual(try ONNXFile.load(path: path), model)
    }

    func testSmallInitializersStayInlineWithoutADataFile() throws {
        let path = folder.file("small.onnx")
        let onlySmall = makeModel(initializers: [small])
        try ONNXFile.save(onlySmall, to: path, externalData: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".data"))
        XCTAssertEqual(try ONNXFile.loadWithDetails(path: path).externalData, [])
        XCTAssertEqual(try ONNXFile.load(path: path), onlySmall)
    }

    func testDataFileInASubfolderAndThroughAnInnerSymlink() throws {
        try FileManager.default.createDirectory(atPath: folder.file("weights"), withIntermediateDirectories: true)
        try Data(big.bytes).write(to: URL(fileURLWithPath: folder.file("weights/w.bin")))
        let path = try writeModel(location: "weights/w.bin")
        XCTAssertEqual(try ONNXFile.load(path: path), model)
        // A symlink that stays inside the folder is fine.
        try FileManager.default.createSymbolicLink(atPath: folder.file("link.bin"), withDestinationPath: folder.file("weights/w.bin"))
        XCTAssertEqual(try ONNXFile.load(path: try writeModel(location: "link.bin")), model)
    }

    func testAbsoluteLocationRefused() throws {
        try Data(big.bytes).write(to: URL(fileURLWithPath: folder.file("w.bin")))
        assertRefused(try writeModel(location: folder.file("w.bin")),
                      "tensor 'big': external data location '\(folder.file("w.bin"))' refused: absolute paths are not allowed")
    }

    func testParentLocationRefused() throws {
        let sub = folder.file("sub")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        try Data(big.bytes).write(to: URL(fileURLWithPath: folder.file("w.bin")))
        let bytes = try ONNXFile.serialize(model, file: "test", placement: { i in
            i == 0 ? ExternalPlacement(location: "../w.bin", offset: 0, length: 2048) : nil
        })
        let path = sub + "/model.onnx"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        assertRefused(path, "tensor 'big': external data location '../w.bin' refused: '..' components are not allowed")
    }

    func testSymlinkEscapingTheFolderRefused() throws {
        let outside = try TemporaryFolder("manet-outside")
        defer { outside.remove() }
        try Data(big.bytes).write(to: URL(fileURLWithPath: outside.file("w.bin")))
        try FileManager.default.createSymbolicLink(atPath: folder.file("w.bin"), withDestinationPath: outside.file("w.bin"))
        assertRefused(try writeModel(location: "w.bin"), "outside the model's folder")
    }

    func testMissingDataFileRefused() throws {
        let path = folder.file("model.onnx")
        try ONNXFile.save(model, to: path, externalData: true)
        try FileManager.default.removeItem(atPath: path + ".data")
        assertRefused(path, "tensor 'big': external data 'model.onnx.data': cannot open")
    }

    func testDataFileTooShortRefused() throws {
        let path = folder.file("model.onnx")
        try ONNXFile.save(model, to: path, externalData: true)
        try Data(count: 3000).write(to: URL(fileURLWithPath: path + ".data"))
        assertRefused(path, "tensor 'other': external data 'model.onnx.data': bytes 2048..<4448 lie past the end of the 3000-byte file")
    }

    func testLengthDisagreeingWithDimsRefused() throws {
        try Data(big.bytes).write(to: URL(fileURLWithPath: folder.file("w.bin")))
        assertRefused(try writeModel(location: "w.bin", length: 2000),
                      "tensor 'big': external data 'w.bin': length 2000 disagrees with dims [16, 32] of float, which need 2048 bytes")
    }

    func testBytesWithoutFolderRefuseExternalData() throws {
        try Data(big.bytes).write(to: URL(fileURLWithPath: folder.file("w.bin")))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: try writeModel(location: "w.bin")))
        XCTAssertThrowsError(try ONNXFile.load(bytes: Array(bytes))) { error in
            XCTAssertTrue("\(error)".contains("without a folder"), "\(error)")
        }
        XCTAssertEqual(try ONNXFile.load(bytes: Array(bytes), baseDirectory: folder.path), model)
    }
}
