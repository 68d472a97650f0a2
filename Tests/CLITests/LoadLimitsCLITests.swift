// `--max-memory` on inspect / run / verify / bench, and hostile models (lying dims, deep
// nesting) through the CLI: one error line naming the file and the reason, exit status 2.

import Foundation
import TestSupport
import XCTest

final class LoadLimitsCLITests: XCTestCase {
    private var folder: TemporaryFolder!
    private let model = Fixtures.path("manet_w8_dynamo/model.onnx")

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: manetBinary) else {
            throw InspectCLITests.MissingBinary(path: manetBinary)
        }
        folder = try TemporaryFolder("manet-cli-limits")
    }

    override func tearDown() { folder?.remove() }

    private func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = folder.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The fixture's initializer bytes as `inspect --json` reports them.
    private func initializerBytes() throws -> Int {
        let result = try runManet(["inspect", "--json", model])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return try XCTUnwrap((json["parameters"] as? [String: Int])?["bytes"])
    }

    func testMaxMemoryRefusesTheModelInEveryCommand() throws {
        let bytes = try initializerBytes()
        XCTAssertGreaterThan(bytes, 1 << 20)
        // The input's batch dim is symbolic, so only the initializers count.
        let reason = "\(model): the model declares \(bytes) bytes (initializers \(bytes), inputs with fixed shapes 0), above the memory limit of 1048576 bytes"
        let image = folder.file("none.png")
        let commands: [(args: [String], prefix: String)] = [
            (["inspect", "--max-memory", "1M", model], "manet: error: "),
            (["run", "--max-memory", "1M", model, "--input", image], "manet: error: "),
            (["verify", "--max-memory", "1m", model, "--reference", folder.path], "manet: error: "),
            (["bench", "--max-memory", "1MiB", model, "--iterations", "1"], "manet: error: "),
        ]
        for (args, prefix) in commands {
            let result = try runManet(args)
            XCTAssertEqual(result.status, 2, "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr, prefix + reason + "\n", "\(args)")
            XCTAssertEqual(result.stdout, "", "\(args)")
        }
    }

    func testMaxMemoryAboveTheModelLetsItLoad() throws {
        let result = try runManet(["inspect", "--max-memory", "4M", model])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Parameters:  795,948 elements in 287 initializers"), result.stdout)
        let bench = try runManet(["bench", "--max-memory", "1G", model, "--iterations", "1", "--warmup", "0", "--batch-size", "1", "--json"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("\"median_ms\""), bench.stdout)
    }

    func testMaxMemoryOptionSyntax() throws {
        for bad in ["12Q", "0", "G", "1.5G", "99999999999T"] {
            let result = try runManet(["inspect", "--max-memory", bad, model])
            XCTAssertEqual(result.status, 64, "\(bad): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("The value '\(bad)' is invalid for '--max-memory <max-memory>'"), result.stderr)
        }
        // The file itself is larger than 100 KiB: refused before it is read.
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: model)[.size] as? Int)
        let result = try runManet(["inspect", "--max-memory", "100k", model])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr, "manet: error: \(model): the file is \(size) bytes, above the memory limit of 102400 bytes\n")
    }

    func testTensorLargerThanTheFileIsRefused() throws {
        let tensor = ProtoBytes.tensor(name: "huge", dims: [1 << 20, 1 << 20], rawData: [UInt8](repeating: 0, count: 8))
        let path = try write("huge.onnx", ProtoBytes.model(graph: ProtoBytes.string(2, "g") + ProtoBytes.bytes(5, tensor)))
        for (command, prefix) in [("inspect", "manet: error: "), ("bench", "manet: error: ")] {
            let result = try runManet([command, path])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertEqual(result.stderr, "\(prefix)\(path): tensor 'huge': raw_data holds 8 bytes but dims need 4398046511104\n")
        }
    }

    func testDeepNestingIsRefused() throws {
        let path65 = try write("nested65.onnx", ProtoBytes.nestedModel(depth: 65))
        let r65 = try runManet(["inspect", path65])
        XCTAssertEqual(r65.status, 2, r65.stderr)
        XCTAssertEqual(r65.stderr, "manet: error: \(path65): node 'if_64' (If) holds a subgraph at nesting depth 65, deeper than the limit of 64\n")
        let path = try write("nested10000.onnx", ProtoBytes.nestedModel(depth: 10_000))
        let r = try runManet(["run", path, "--input", folder.file("none.png")])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stderr, "manet: error: \(path): not an ONNX model: the bytes do not parse as an ONNX ModelProto (truncated, text, another format, or messages nested more than 256 levels deep)\n")
    }
}
