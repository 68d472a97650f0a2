// End to end through the `manet` binary: import -> export -> onnxruntime, train --init from each format, bad input exits 2.

import Foundation
import TestSupport
import XCTest

final class ExportImportCLITests: XCTestCase {
    var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-export-cli") }
    override func tearDown() { folder.remove() }

    @discardableResult
    func manet(_ args: [String], expect status: Int32 = 0, line: UInt = #line) throws -> ProcessResult {
        let r = try runManet(args)
        XCTAssertEqual(r.status, status, "manet \(args.joined(separator: " ")):\n\(r.stdout)\n\(r.stderr)", line: line)
        return r
    }

    func testImportExportAndOnnxruntimeLoadsTheFusedModel() throws {
        let ckpt = folder.file("w8.pb"), onnx = folder.file("m.onnx")
        let imported = try manet(["import", Fixtures.path("manet_w8.safetensors"), "-o", ckpt, "--input-size", "64"])
        XCTAssertTrue(imported.stdout.contains("MA-Net width 8, 7 classes, input 64x64"), imported.stdout)
        let exported = try manet(["export", ckpt, "-o", onnx, "--fused", "--fold-bn", "--opset", "13", "--external-data"])
        XCTAssertTrue(exported.stdout.contains("ONNX checker and shape inference passed"), exported.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: onnx + ".data"))

        // onnxruntime runs it and the probabilities of each row sum to 1.
        let python = try TestEnvironment.require("MANET_PYTHON")
        let script = """
            import sys, numpy as np, onnxruntime as ort
            s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
            out = dict(zip([o.name for o in s.get_outputs()], s.run(None, {"input": x})))
            print(sorted(out), out["probabilities"].shape, float(np.abs(out["probabilities"].sum(1) - 1).max()))
            """
        let run = try runProcess(python, ["-c", script, onnx])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.hasPrefix("['logits', 'logits_global', 'logits_local', 'probabilities'] (2, 7)"), run.stdout)
        let sumError = Double(run.stdout.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
        XCTAssertLessThan(sumError, 1e-5)

        // The export imports back (BatchNorm folded: identity BN, said so).
        let back = try manet(["import", onnx, "-o", folder.file("back.pb")])
        XCTAssertTrue(back.stdout.contains("folded"), back.stdout)
        XCTAssertTrue(back.stdout.contains("input 64x64"), back.stdout)

        let st = try manet(["export", ckpt, "--format", "safetensors", "-o", folder.file("w8.safetensors")])
        XCTAssertTrue(st.stdout.contains("state_dict"), st.stdout)
    }

    func testFoldedImportAndNumClassesSaySo() throws {
        let folded = try manet(["import", Fixtures.path("manet_w8_torchscript_op13.onnx"), "-o", folder.file("a.pb")])
        XCTAssertTrue(folded.stdout.contains("note: the source has BatchNormalization folded"), folded.stdout)
        let heads = try manet(["import", Fixtures.path("manet_w8_dynamo/model.onnx"), "-o", folder.file("b.pb"), "--num-classes", "8"])
        XCTAssertTrue(heads.stdout.contains("fc_1 and fc_2 were re-initialised for 8 classes"), heads.stdout)
        XCTAssertTrue(heads.stdout.contains("8 classes"), heads.stdout)
    }

    func testUnsupportedOpsetIsAClearError() throws {
        let ckpt = folder.file("w8.pb")
        try manet(["import", Fixtures.path("manet_w8.safetensors"), "-o", ckpt, "--input-size", "64"])
        for opset in ["12", "18"] {
            // A value out of range, found before any work: a usage error (docs/CLI.md).
            let r = try manet(["export", ckpt, "-o", folder.file("x.onnx"), "--opset", opset], expect: 64)
            XCTAssertTrue(r.stderr.contains("opset \(opset) is not supported for export: choose 13 to 17"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("x.onnx")))
        }
    }

    func testAnotherArchitectureExitsTwoNamingWhatIsMissing() throws {
        let data = try TestEnvironment.require("MANET_ONNX_DATA")
        let relu = data + "/node/test_relu/model.onnx"
        let r = try manet(["import", relu, "-o", folder.file("x.pb")], expect: 2)
        XCTAssertTrue(r.stderr.contains("not an MA-Net model: missing conv1.weight"), r.stderr)
        // An ONNX file given where a checkpoint is expected.
        let e = try manet(["export", relu, "-o", folder.file("x.onnx")], expect: 2)
        XCTAssertTrue(e.stderr.hasPrefix("manet: error: "), e.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("x.onnx")))
    }

    func testMisshapedAndMissingKeysExitTwo() throws {
        // ResNet-like stand-in: MA-Net's conv1 only, wrong shape, plus a foreign key.
        let path = folder.file("other.safetensors")
        var header = #"{"conv1.weight":{"dtype":"F32","shape":[4,3,3,3],"data_offsets":[0,432]},"#
        header += #""layer9.weight":{"dtype":"F32","shape":[1],"data_offsets":[432,436]}}"#
        while header.utf8.count % 8 != 0 { header += " " }
        var bytes = (0..<8).map { UInt8((UInt64(header.utf8.count) >> (8 * UInt64($0))) & 0xff) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 436)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try manet(["import", path, "-o", folder.file("x.pb")], expect: 2)
        XCTAssertTrue(r.stderr.contains("1 unexpected key(s): layer9.weight"), r.stderr)
        XCTAssertTrue(r.stderr.contains("conv1.weight: [4, 3, 3, 3] in the file, MA-Net needs [4, 3, 7, 7]"), r.stderr)
        XCTAssertTrue(r.stderr.contains("missing key(s): bn1.weight, bn1.bias, bn1.running_mean"), r.stderr)
    }

    func testMalformedSafetensorsHeaderExitsTwo() throws {
        let path = folder.file("bad.safetensors")
        // The header claims 1000 bytes; 10 follow.
        try Data([0xe8, 0x03, 0, 0, 0, 0, 0, 0] + Array(#"{"a":{}}  "#.utf8)).write(to: URL(fileURLWithPath: path))
        let r = try manet(["import", path, "-o", folder.file("x.pb")], expect: 2)
        XCTAssertTrue(r.stderr.contains("header length 1000 runs past the end of the file"), r.stderr)
    }

    func testTrainInitAcceptsONNXAndSafetensors() throws {
        let data = folder.file("data")
        try manet(["synth", "--out", data, "--train-per-class", "1", "--test-per-class", "1", "--size", "64"])
        let prefixed = folder.file("manet_w8_module_prefix.safetensors")
        try Fixtures.writeModulePrefixedSafetensors(to: prefixed)
        for (name, source) in [("onnx", Fixtures.path("manet_w8_torchscript_op13.onnx")), ("prefixed", prefixed)] {
            let dir = folder.file("run-" + name)
            let r = try manet(["train", "--data", data, "--init", source, "--width", "8", "--input-size", "64",
                               "--epochs", "1", "--batch-size", "7", "--threads", "2", "--checkpoint-dir", dir])
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoint.pb"), r.stdout)
            XCTAssertTrue(r.stdout.contains("note: --init"), r.stdout)
        }
        // A malformed source stops training before it starts.
        let badFile = folder.file("bad.safetensors")
        try Data([0xe8, 0x03, 0, 0, 0, 0, 0, 0] + Array(#"{"a":{}}  "#.utf8)).write(to: URL(fileURLWithPath: badFile))
        let malformed = try manet(["train", "--data", data, "--init", badFile, "--width", "8", "--input-size", "64",
                                   "--epochs", "1", "--checkpoint-dir", folder.file("run-malformed")], expect: 2)
        XCTAssertTrue(malformed.stderr.contains("runs past the end"), malformed.stderr)
        // A width that does not match the source is refused with both widths named.
        let bad = try manet(["train", "--data", data, "--init", Fixtures.path("manet_w8.safetensors"), "--width", "16",
                             "--input-size", "64", "--epochs", "1", "--checkpoint-dir", folder.file("run-bad")], expect: 2)
        XCTAssertTrue(bad.stderr.contains("width 8") && bad.stderr.contains("width 16"), bad.stderr)
    }
}
