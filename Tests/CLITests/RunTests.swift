// `manet run` end to end: fused MA-Net probabilities match PyTorch's logits, images and errors.

import Foundation
import TestSupport
import XCTest

final class RunTests: XCTestCase {
    var folder: TemporaryFolder!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: manetBinary) else {
            throw MissingPrerequisite(description: "no manet binary at \(manetBinary): run via `make test` (sets MANET_BINARY)")
        }
        folder = try TemporaryFolder("manet-run")
    }

    override func tearDown() { folder?.remove() }

    @discardableResult
    func manet(_ args: [String], expect status: Int32, line: UInt = #line) throws -> ProcessResult {
        let r = try runManet(args)
        XCTAssertEqual(r.status, status, "manet \(args.joined(separator: " ")):\n\(r.stdout)\n\(r.stderr)", line: line)
        return r
    }

    func predictions(_ stdout: String) throws -> [[String: Any]] {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], stdout)
        return try XCTUnwrap(object["predictions"] as? [[String: Any]])
    }

    func testFusedProbabilitiesMatchPyTorchLogits() throws {
        let model = Fixtures.path("manet_w8_torchscript_op13.onnx")
        let set = Fixtures.path("manet_w8_torchscript_op13/test_data_set_0")
        let r = try manet(["run", model, "--input", set + "/input_0.pb", "--json"], expect: 0)
        let rows = try predictions(r.stdout)
        XCTAssertEqual(rows.count, 2)

        // PyTorch's logits (the fixture's outputs), fused with beta 0.6 and softmaxed in numpy.
        let python = try TestEnvironment.require("MANET_PYTHON")
        let script = """
            import sys, numpy as np, onnx
            from onnx import numpy_helper
            l, g = (numpy_helper.to_array(onnx.load_tensor(f'{sys.argv[1]}/output_{k}.pb')).astype(np.float64) for k in (0, 1))
            z = 0.6 * l + 0.4 * g
            p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
            print(' '.join(repr(float(v)) for v in p.ravel()))
            """
        let reference = try runProcess(python, ["-c", script, set])
        XCTAssertEqual(reference.status, 0, reference.stderr)
        let expected = reference.stdout.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(expected.count, 14)
        for (row, prediction) in rows.enumerated() {
            XCTAssertEqual(prediction["input"] as? String, "input_0.pb[\(row)]")
            let scores = try XCTUnwrap(prediction["scores"] as? [[String: Any]])
            XCTAssertEqual(scores.count, 7)
            var previous = 1.0
            for score in scores {
                let index = try XCTUnwrap(score["index"] as? Int)
                let probability = try XCTUnwrap(score["probability"] as? Double)
                XCTAssertEqual(probability, expected[row * 7 + index], accuracy: 1e-5, "row \(row) class \(index)")
                XCTAssertLessThanOrEqual(probability, previous, "scores are sorted")
                previous = probability
                // No class_names metadata and 7 classes: the RAF-DB names.
                if index == 0 { XCTAssertEqual(score["name"] as? String, "Neutral") }
            }
        }
    }

    func testImagesFoldersAndTop() throws {
        let model = Fixtures.path("manet_w8_torchscript_op13.onnx")
        let images = folder.file("images/sub")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("data/resize_input.png"), toPath: images + "/a.png")
        try FileManager.default.copyItem(atPath: Fixtures.path("data/resize_input.png"), toPath: folder.file("images/b.png"))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: folder.file("images/readme.txt")))

        let r = try manet(["run", model, "--input", folder.file("images"), "--json", "--top", "2"], expect: 0)
        let rows = try predictions(r.stdout)
        XCTAssertEqual(rows.map { ($0["input"] as? String).map { ($0 as NSString).lastPathComponent } }, ["b.png", "a.png"])
        for row in rows { XCTAssertEqual((row["scores"] as? [Any])?.count, 2) }
        // The same image gives the same probabilities whatever its batch neighbours.
        let first = try XCTUnwrap((rows[0]["scores"] as? [[String: Any]])?.first?["probability"] as? Double)
        let second = try XCTUnwrap((rows[1]["scores"] as? [[String: Any]])?.first?["probability"] as? Double)
        XCTAssertEqual(first, second, accuracy: 1e-6)

        let single = try manet(["run", model, "--input", folder.file("images/b.png"), "--top", "1"], expect: 0)
        XCTAssertEqual(single.stdout.split(separator: "\n").count, 2, single.stdout)
    }

    func testBadInputsAreErrors() throws {
        let model = Fixtures.path("manet_w8_torchscript_op13.onnx")
        let broken = folder.file("broken.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0x00, 0x01]).write(to: URL(fileURLWithPath: broken))
        var r = try manet(["run", model, "--input", broken], expect: 2)
        XCTAssertTrue(r.stderr.contains("broken.jpg"), r.stderr)

        r = try manet(["run", model, "--input", folder.file("missing.png")], expect: 2)
        XCTAssertTrue(r.stderr.contains("missing.png: no such file or folder"), r.stderr)

        let empty = folder.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        r = try manet(["run", model, "--input", empty], expect: 2)
        XCTAssertTrue(r.stderr.contains("holds no .jpg, .jpeg or .png image"), r.stderr)

        // A tensor of the wrong spatial size: the fixture's input is [batch, 3, 224, 224].
        let python = try TestEnvironment.require("MANET_PYTHON")
        let npy = folder.file("small.npy")
        let made = try runProcess(python, ["-c", "import sys, numpy as np; np.save(sys.argv[1], np.zeros((1, 3, 32, 32), np.float32))", npy])
        XCTAssertEqual(made.status, 0, made.stderr)
        r = try manet(["run", model, "--input", npy], expect: 2)
        XCTAssertTrue(r.stderr.contains("small.npy: shape [1, 3, 32, 32]"), r.stderr)
    }
}

/// Something the test needs (the built binary, generated node tests) is absent: a failure,
/// since these tests are the proof that the command works.
private struct MissingPrerequisite: Error, CustomStringConvertible {
    var description: String
}
