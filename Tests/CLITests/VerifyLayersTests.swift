// `manet verify --layers` end to end: a perturbed initializer is localised to its node against
// onnxruntime's values of the original model, a correct model has no failing node, and bad
// references (missing values, colliding file names, a memory budget too small) are reported.

import Foundation
import TestSupport
import XCTest

final class VerifyLayersTests: XCTestCase {
    var folder: TemporaryFolder!
    let model = Fixtures.path("manet_w8_torchscript_op13_bn.onnx")

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: manetBinary) else {
            throw MissingPrerequisite(description: "no manet binary at \(manetBinary): run via `make test` (sets MANET_BINARY)")
        }
        folder = try TemporaryFolder("manet-verify-layers")
    }

    override func tearDown() { folder?.remove() }

    @discardableResult
    func manet(_ args: [String], expect status: Int32, line: UInt = #line) throws -> ProcessResult {
        let r = try runManet(args)
        XCTAssertEqual(r.status, status, "manet \(args.joined(separator: " ")):\n\(r.stdout.suffix(3000))\n\(r.stderr)", line: line)
        return r
    }

    func python(_ script: String, _ args: [String]) throws -> String {
        let python = try TestEnvironment.require("MANET_PYTHON")
        let r = try runProcess(python, ["-c", script] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func reports(_ text: String) throws -> [[String: Any]] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], String(text.prefix(2000)))
    }

    /// The row the first failure points at, and the step it names.
    func firstFailure(_ report: [String: Any]) -> (step: String, node: String)? {
        guard let first = report["firstFailure"] as? [String: Any], let row = first["row"] as? Int,
              let rows = report["rows"] as? [[String: Any]] else { return nil }
        return (first["step"] as? String ?? "", rows[row]["node"] as? String ?? "")
    }

    func testAPerturbedInitializerIsLocalisedToItsNode() throws {
        // onnxruntime's values of the original model, saved as a reference folder.
        let reference = folder.file("reference")
        let original = try manet(["verify", model, "--against", "onnxruntime", "--layers", "--plan", "both",
                                  "--save-reference", reference, "--json"], expect: 0)
        for report in try reports(original.stdout) {
            XCTAssertNil(report["firstFailure"])
            XCTAssertEqual(report["passed"] as? Bool, true)
        }
        // The same model against the saved folder: no failing node, every value compared.
        let again = try reports(try manet(["verify", model, "--reference", reference, "--layers", "--plan", "as-written", "--json"], expect: 0).stdout)
        let rows = try XCTUnwrap(again.first?["rows"] as? [[String: Any]])
        XCTAssertGreaterThan(rows.count, 700)
        XCTAssertTrue(rows.allSatisfy { $0["status"] as? String == "compared" })

        // One convolution in the middle of the graph gets its weights scaled by 1.01.
        let perturbed = folder.file("perturbed.onnx")
        let node = try python("""
            import sys, onnx
            from onnx import numpy_helper
            m = onnx.load(sys.argv[1])
            inits = {t.name: t for t in m.graph.initializer}
            convs = [n for n in m.graph.node if n.op_type == 'Conv' and n.input[1] in inits]
            node = convs[len(convs) // 2]
            t = inits[node.input[1]]
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 1.01, t.name))
            onnx.save(m, sys.argv[2])
            print(node.name)
            """, [model, perturbed])
        XCTAssertFalse(node.isEmpty)
        let r = try manet(["verify", perturbed, "--reference", reference, "--layers", "--plan", "both", "--json",
                           "--svg", folder.file("errors.svg")], expect: 1)
        let both = try reports(r.stdout)
        XCTAssertEqual(both.map { $0["plan"] as? String }, ["optimized", "as-written"])
        // As written, the Conv's own output is the first value outside; optimised, the value
        // its fused step writes (after the folded BN and fused Relu), by the step named after it.
        let asWritten = try XCTUnwrap(firstFailure(both[1]))
        XCTAssertEqual(asWritten.step, node)
        XCTAssertEqual(asWritten.node, node)
        let optimized = try XCTUnwrap(firstFailure(both[0]))
        XCTAssertEqual(optimized.step, node)
        // Its inputs: the activation it reads is within tolerance, the weights an initializer.
        let inputs = try XCTUnwrap((both[1]["firstFailure"] as? [String: Any])?["inputs"] as? [[String: Any]])
        XCTAssertEqual(inputs.map { $0["kind"] as? String }.first, "value")
        XCTAssertTrue(inputs.contains { $0["kind"] as? String == "initializer" })
        let inputRow = try XCTUnwrap(inputs.first?["row"] as? Int)
        let firstRows = try XCTUnwrap(both[1]["rows"] as? [[String: Any]])
        XCTAssertEqual((firstRows[inputRow]["comparison"] as? [String: Any])?["mismatches"] as? Int, 0)

        let text = try manet(["verify", perturbed, "--reference", reference, "--layers", "--plan", "as-written"], expect: 1).stdout
        XCTAssertTrue(text.contains("MISMATCH: first outside tolerance at '\(node)' (Conv)"), String(text.suffix(2000)))
        XCTAssertTrue(text.contains("every input computed before it is within tolerance"), String(text.suffix(2000)))
        let svg = try String(contentsOfFile: folder.file("errors.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("first outside: \(node)"), String(svg.prefix(2000)))
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))

        // Values missing from the reference are not compared, not failures.
        let set = reference + "/test_data_set_0"
        let files = try FileManager.default.contentsOfDirectory(atPath: set).filter { $0.contains("layer3") }.sorted()
        XCTAssertGreaterThan(files.count, 10)
        for f in files { try FileManager.default.removeItem(atPath: set + "/" + f) }
        let partial = try manet(["verify", model, "--reference", reference, "--layers"], expect: 0).stdout
        XCTAssertTrue(partial.contains("not in the reference (not compared)"), String(partial.suffix(2000)))
        XCTAssertTrue(partial.contains("PASS: every compared value within tolerance (optimized plan)"), String(partial.suffix(2000)))
    }

    /// A small model whose value names `a/b` and `a_b` share a file name, and whose nodes are unnamed.
    func smallModel() throws -> String {
        let path = folder.file("small.onnx")
        _ = try python("""
            import sys, onnx
            from onnx import helper, TensorProto
            g = helper.make_graph(
                [helper.make_node('Relu', ['x'], ['a/b']), helper.make_node('Sigmoid', ['a/b'], ['a_b']),
                 helper.make_node('Dropout', ['a_b'], ['y', ''])],
                'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3])],
                [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 3])])
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], ir_version=8), sys.argv[1])
            """, [path])
        return path
    }

    func testUnnamedNodesAndEmptyOutputsAndCollidingFileNames() throws {
        let small = try smallModel()
        // Against onnxruntime: unnamed nodes are shown by position, the omitted Dropout mask skipped.
        let reference = folder.file("small_ref")
        let text = try manet(["verify", small, "--against", "onnxruntime", "--layers", "--save-reference", reference, "--plan", "as-written"], expect: 0).stdout
        XCTAssertTrue(text.contains("#0"), text)
        XCTAssertTrue(text.contains("3 value(s) compared, 0 outside tolerance"), text)
        // The .pb files carry the value names, so the colliding file names do not matter there.
        try manet(["verify", small, "--reference", reference, "--layers"], expect: 0)
        // A .npy named a_b could be either value: an error naming both.
        let npy = folder.file("small_npy")
        _ = try python("""
            import sys, os, numpy as np, onnx
            from onnx import numpy_helper
            src, dst = sys.argv[1] + '/test_data_set_0', sys.argv[2]
            os.makedirs(dst)
            x = numpy_helper.to_array(onnx.load_tensor(src + '/input_0.pb'))
            np.save(dst + '/input_0.npy', x)
            np.save(dst + '/a_b.npy', 1 / (1 + np.exp(-np.maximum(x, 0))))
            """, [reference, npy])
        let r = try manet(["verify", small, "--reference", npy, "--layers"], expect: 2)
        XCTAssertTrue(r.stderr.contains("a_b.npy: its name fits values 'a/b' and 'a_b' of the graph"), r.stderr)
        // --svg without --layers is a usage error.
        try manet(["verify", small, "--reference", npy, "--svg", folder.file("x.svg")], expect: 64)
    }

    func testAMemoryBudgetTooSmallForEveryValueIsAnError() throws {
        let r = try manet(["verify", model, "--against", "onnxruntime", "--layers", "--max-memory", "6M"], expect: 2)
        XCTAssertTrue(r.stderr.contains("budget of 6291456 bytes"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--max-memory"), r.stderr)
    }
}

/// Something the test needs (the built binary) is absent: a failure, since these tests are the
/// proof that the command works.
private struct MissingPrerequisite: Error, CustomStringConvertible {
    var description: String
}
