// Loading limits: tensors larger than the file, --max-memory, dims overflow, subgraph nesting.
// Each hostile file is refused with the exact message, before its claimed size is allocated.

import Foundation
import ONNXFormat
import ONNXIR
import TestSupport
import XCTest

final class LoadLimitsTests: XCTestCase {
    private var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-load-limits") }
    override func tearDown() { folder.remove() }

    private func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = folder.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Loads `path` (with `maxMemory`), expecting exactly `message` (the description, file included).
    private func assertRefused(_ path: String, maxMemory: Int? = nil, _ message: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ONNXFile.load(path: path, maxMemory: maxMemory), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    private func graph(initializers: [[UInt8]], inputs: [[UInt8]] = []) -> [UInt8] {
        ProtoBytes.string(2, "g") + initializers.flatMap { ProtoBytes.bytes(5, $0) } + inputs.flatMap { ProtoBytes.bytes(11, $0) }
    }

    // MARK: - Tensors larger than the file

    /// dims claim 4 TiB of floats, raw_data holds 8 bytes: refused by name before any allocation
    /// (an allocation of 4 TiB would fail as "out of memory" instead).
    func testRawDataShorterThanHugeDims() throws {
        let t = ProtoBytes.tensor(name: "huge", dims: [1 << 20, 1 << 20], rawData: [UInt8](repeating: 0, count: 8))
        let path = try write("huge_raw.onnx", ProtoBytes.model(graph: graph(initializers: [t])))
        assertRefused(path, "\(path): tensor 'huge': raw_data holds 8 bytes but dims need 4398046511104")
    }

    func testTypedFieldShorterThanHugeDims() throws {
        let t = ProtoBytes.tensor(name: "huge_typed", dims: [1 << 40], floatData: [1, 2])
        let path = try write("huge_typed.onnx", ProtoBytes.model(graph: graph(initializers: [t])))
        assertRefused(path, "\(path): tensor 'huge_typed': dims 1099511627776 elements need 1099511627776 values in float_data, found 2")
    }

    func testExternalDataShorterThanHugeDims() throws {
        try Data(count: 16).write(to: URL(fileURLWithPath: folder.file("w.bin")))
        let t = ProtoBytes.tensor(name: "huge_ext", dims: [1 << 40], external: [("location", "w.bin")])
        let path = try write("huge_ext.onnx", ProtoBytes.model(graph: graph(initializers: [t])))
        assertRefused(path, "\(path): tensor 'huge_ext': external data 'w.bin': bytes 0..<4398046511104 lie past the end of the 16-byte file")
    }

    func testDimsProductOverflowIsRefusedByName() throws {
        let t = ProtoBytes.tensor(name: "overflow", dims: [1 << 32, 1 << 32], rawData: [0, 0, 0, 0])
        let path = try write("overflow.onnx", ProtoBytes.model(graph: graph(initializers: [t])))
        assertRefused(path, "\(path): tensor 'overflow': the product of dims [4294967296, 4294967296] overflows")
        // The memory check reads the same dims first and names the tensor too.
        assertRefused(path, maxMemory: 1 << 30,
                      "\(path): tensor 'overflow': the byte size of dims [4294967296, 4294967296] is negative or overflows")
        // Product fits, byte size does not.
        let bytes = ProtoBytes.tensor(name: "bytes_overflow", dims: [1 << 62], rawData: [0, 0, 0, 0])
        let path2 = try write("bytes_overflow.onnx", ProtoBytes.model(graph: graph(initializers: [bytes])))
        assertRefused(path2, "\(path2): tensor 'bytes_overflow': the product of its dims overflows")
    }

    // MARK: - --max-memory

    private let weights = TensorData(name: "weights", dims: [64, 64], floats: (0..<4096).map { Float($0) })

    private func externalModel() throws -> String {
        let model = makeModel(nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "weights"], outputs: ["y"])],
                              inputs: [.tensor("x", .float, [.fixed(8), .fixed(64)])],
                              outputs: [.tensor("y", .float, [.fixed(8), .fixed(64)])], initializers: [weights])
        let path = folder.file("model.onnx")
        try ONNXFile.save(model, to: path, externalData: true)
        return path
    }

    func testMaxMemoryRefusesInitializersAndInputsBeforeReadingThem() throws {
        let path = try externalModel()
        // 16384 bytes of weights + 8 x 64 floats of input = 18432.
        assertRefused(path, maxMemory: 18431,
                      "\(path): the model declares 18432 bytes (initializers 16384, inputs with fixed shapes 2048), above the memory limit of 18431 bytes")
        let loaded = try ONNXFile.loadWithDetails(path: path, maxMemory: 18432)
        XCTAssertEqual(loaded.model.graph.initializers, [weights])
        // Refused before the data file was opened: a missing data file is not what is reported.
        try FileManager.default.removeItem(atPath: path + ".data")
        assertRefused(path, maxMemory: 1000,
                      "\(path): the model declares 18432 bytes (initializers 16384, inputs with fixed shapes 2048), above the memory limit of 1000 bytes")
    }

    func testMaxMemoryRefusesAFileLargerThanTheLimitBeforeReadingIt() throws {
        let path = folder.file("inline.onnx")
        try ONNXFile.save(makeModel(initializers: [weights]), to: path)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        assertRefused(path, maxMemory: size - 1, "\(path): the file is \(size) bytes, above the memory limit of \(size - 1) bytes")
        XCTAssertNoThrow(try ONNXFile.load(path: path, maxMemory: size))
        XCTAssertNoThrow(try ONNXFile.load(path: path))  // no limit by default
    }

    func testInlineTensorsSurviveTheirDataBeingFreedDuringLoading() throws {
        // Loading frees each tensor's data from the parsed message once read: values stay exact.
        let model = makeModel(initializers: [weights, TensorData(name: "ids", dims: [3], int64s: [1, -2, 3])])
        let path = folder.file("inline.onnx")
        try ONNXFile.save(model, to: path)
        XCTAssertEqual(try ONNXFile.load(path: path), model)
        XCTAssertEqual(try ONNXFile.load(bytes: try ONNXFile.serialize(model)), model)
    }

    // MARK: - Nesting

    func testSixtyFourNestedSubgraphsLoad() throws {
        let path = try write("nested64.onnx", ProtoBytes.nestedModel(depth: 64))
        var graph = try ONNXFile.load(path: path).graph
        var depth = 0
        while case .graph(let inner)? = graph.nodes.first?.attribute("then_branch") {
            graph = inner
            depth += 1
        }
        XCTAssertEqual(depth, 64)
        XCTAssertEqual(graph.name, "g_64")
    }

    func testSixtyFiveNestedSubgraphsAreRefusedByNodeName() throws {
        let path = try write("nested65.onnx", ProtoBytes.nestedModel(depth: 65))
        assertRefused(path, "\(path): node 'if_64' (If) holds a subgraph at nesting depth 65, deeper than the limit of 64")
    }

    func testTenThousandNestedSubgraphsFailCleanlyInTheParser() throws {
        let path = try write("nested10000.onnx", ProtoBytes.nestedModel(depth: 10_000))
        assertRefused(path, "\(path): not an ONNX model: the bytes do not parse as an ONNX ModelProto (truncated, text, another format, or messages nested more than 256 levels deep)")
    }

    /// A deeply nested model built in memory is refused by every graph walk before it recurses.
    func testDeepModelBuiltInMemoryIsRefusedByCheckAndWriter() throws {
        let model = Model(opsetImports: [OpsetImport(domain: "", version: 17)], graph: nestedIfGraph(depth: 10_000))
        let expected = "<memory>: node 'if_64' (If) holds a subgraph at nesting depth 65, deeper than the limit of 64"
        XCTAssertThrowsError(try ONNXFile.check(model)) { XCTAssertEqual("\($0)", expected) }
        XCTAssertThrowsError(try ONNXFile.serialize(model)) { XCTAssertEqual("\($0)", expected) }
        XCTAssertEqual(ONNXFile.verdict(model), .invalid("node 'if_64' (If) holds a subgraph at nesting depth 65, deeper than the limit of 64"))
        XCTAssertEqual(model.graph.nodeNestingTooDeep()?.node.name, "if_64")
    }
}
