// One grammar for every command (docs/CLI.md): every error path prints one line beginning
// `manet: error: `, exit codes are 0 ok / 1 mismatch / 2 error / 64 usage per command, every
// `--help` has EXAMPLES, `--batch` is a hidden alias of `--batch-size`, the model is positional.

import Foundation
import TestSupport
import XCTest

final class GrammarCLITests: XCTestCase {
    static let commands = ["inspect", "verify", "run", "train", "evaluate", "logs", "synth", "export", "import", "bench", "env"]
    static let model = Fixtures.path("manet_w8_torchscript_op13.onnx")
    static let reference = Fixtures.path("manet_w8_torchscript_op13")
    static let image = Fixtures.path("data/resize_input.png")

    var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-grammar") }
    override func tearDown() { folder.remove() }

    /// Runs manet and checks the exit status; an error status needs exactly one `manet: error: ` line first.
    @discardableResult
    func manet(_ args: [String], expect status: Int32, line: UInt = #line) throws -> ProcessResult {
        let r = try runManet(args)
        XCTAssertEqual(r.status, status, "manet \(args.joined(separator: " ")):\n\(r.stdout)\n\(r.stderr)", line: line)
        if status >= 2 {
            XCTAssertTrue(r.stderr.hasPrefix("manet: error: "), "manet \(args.joined(separator: " ")): \(r.stderr)", line: line)
            XCTAssertFalse(r.stderr.contains("Error:"), r.stderr, line: line)
            XCTAssertFalse(r.stderr.contains("\nerror:"), r.stderr, line: line)
        }
        return r
    }

    func testEveryHelpEndsWithExamplesThatNameTheCommand() throws {
        for command in Self.commands + [nil] {
            let args = command.map { [$0, "--help"] } ?? ["--help"]
            let r = try manet(args, expect: 0)
            guard let at = r.stdout.range(of: "EXAMPLES:") else {
                XCTFail("manet \(command ?? "") --help has no EXAMPLES:\n\(r.stdout)")
                continue
            }
            let examples = r.stdout[at.upperBound...].split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { $0.hasPrefix("manet ") }
            XCTAssertFalse(examples.isEmpty, "manet \(command ?? "") --help: EXAMPLES lists no command")
            if let command {
                XCTAssertTrue(examples.allSatisfy { $0 == "manet \(command)" || $0.hasPrefix("manet \(command) ") }, "\(examples)")
            }
        }
    }

    func testUsageErrorsExit64WithThePrefixInEveryCommand() throws {
        for command in Self.commands {
            // (A command with a required option may name that one first.)
            let r = try manet([command, "--no-such-option"], expect: 64)
            XCTAssertTrue(r.stderr.contains("manet \(command) --help"), "the usage names the command's help: \(r.stderr)")
        }
        try manet(["no-such-command"], expect: 64)
        // Values out of range are usage errors before any work, in every command that has them.
        try manet(["export", "x.pb", "-o", folder.file("m.onnx"), "--opset", "12"], expect: 64)
        try manet(["run", Self.model, "--input", Self.image, "--batch-size", "0"], expect: 64)
        try manet(["bench", Self.model, "--batch", "0"], expect: 64)
        try manet(["verify", Self.model, "--against", "onnxruntime", "--batch-size", "0"], expect: 64)
        try manet(["train", "--data", folder.path, "--epochs", "0"], expect: 64)
        try manet(["evaluate", "--data", folder.path], expect: 64)  // no model
        try manet(["synth", "--out", folder.file("d"), "--size", "8"], expect: 64)
    }

    func testFileErrorsExit2WithThePrefixInEveryCommand() throws {
        let missing = folder.file("missing")
        let notAModel = folder.file("garbage.onnx")
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: notAModel))
        let cases: [[String]] = [
            ["inspect", notAModel],
            ["verify", notAModel, "--reference", Self.reference],
            ["run", notAModel, "--input", Self.image],
            ["train", "--data", missing],
            ["evaluate", missing + ".pb", "--data", missing],
            ["logs", missing],
            ["synth", "--out", notAModel],
            ["export", missing + ".pb", "-o", folder.file("m.onnx")],
            ["import", notAModel, "-o", folder.file("c.pb")],
            ["bench", notAModel, "--iterations", "1", "--warmup", "0"],
        ]
        XCTAssertEqual(Set(cases.map { $0[0] }), Set(Self.commands).subtracting(["env"]), "env reads no file")
        for args in cases {
            let r = try manet(args, expect: 2)
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("manet: error: ") }.count, 1, r.stderr)
        }
    }

    func testVersion() throws {
        let r = try manet(["--version"], expect: 0)
        XCTAssertTrue(r.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, r.stdout)
    }

    /// `--batch` still works where it was spelled so, but `--help` shows only `--batch-size`.
    func testBatchIsAHiddenAliasOfBatchSize() throws {
        for command in ["run", "verify", "bench", "train", "evaluate"] {
            let help = try manet([command, "--help"], expect: 0).stdout
            XCTAssertTrue(help.contains("--batch-size"), "\(command): \(help)")
            XCTAssertNil(help.range(of: #"--batch\b(?!-)"#, options: .regularExpression), "\(command) --help shows --batch: \(help)")
        }
        let a = try manet(["run", Self.model, "--input", Self.image, "--batch", "2", "--json"], expect: 0)
        let b = try manet(["run", Self.model, "--input", Self.image, "--batch-size", "2", "--json"], expect: 0)
        XCTAssertEqual(a.stdout, b.stdout)
    }

    /// `synth --force` is the old spelling of `--overwrite`, hidden from --help.
    func testSynthOverwriteAndItsOldSpelling() throws {
        let out = folder.file("d")
        let args = ["synth", "--out", out, "--train-per-class", "1", "--test-per-class", "1", "--size", "16", "--threads", "1"]
        try manet(args, expect: 0)
        let refused = try manet(args, expect: 2)
        XCTAssertTrue(refused.stderr.contains("pass --overwrite to replace it"), refused.stderr)
        try manet(args + ["--overwrite"], expect: 0)
        try manet(args + ["--force"], expect: 0)
        let help = try manet(["synth", "--help"], expect: 0).stdout
        XCTAssertTrue(help.contains("--overwrite") && !help.contains("--force"), help)
    }

    /// A model whose batch dim is fixed runs with its own batch, whatever --batch-size asks.
    func testBenchOnAFixedBatchModelRunsItsOwnBatch() throws {
        // ONNX's node test: input `data` [2, 3, 4] reshaped to the fixed shape [4, 2, 3].
        let model = try TestEnvironment.require("MANET_ONNX_DATA") + "/node/test_reshape_reordered_all_dims/model.onnx"
        var r = try manet(["bench", model, "--iterations", "1", "--warmup", "0", "--json"], expect: 0)
        XCTAssertTrue(r.stdout.contains("\"batch\":2"), r.stdout)
        XCTAssertTrue(r.stdout.contains("/node/test_reshape_reordered_all_dims/model.onnx"), "slashes unescaped: \(r.stdout)")
        r = try manet(["bench", model, "--batch-size", "4", "--iterations", "1", "--warmup", "0", "--json"], expect: 0)
        XCTAssertTrue(r.stdout.contains("\"batch\":2"), r.stdout)
        XCTAssertTrue(r.stderr.contains("fixed batch of 2"), r.stderr)
    }

    /// The exit status of every command on success, mismatch, error and usage error (docs/CLI.md).
    func testExitCodesPerCommand() throws {
        let data = folder.file("data")
        try manet(["synth", "--out", data, "--train-per-class", "2", "--test-per-class", "1", "--size", "64", "--threads", "1"], expect: 0)
        let checkpoint = folder.file("w8.pb")
        try manet(["import", Fixtures.path("manet_w8.safetensors"), "-o", checkpoint, "--input-size", "64"], expect: 0)
        try manet(["export", checkpoint, "-o", folder.file("w8.onnx")], expect: 0)
        try manet(["inspect", Self.model], expect: 0)
        try manet(["run", Self.model, "--input", Self.image], expect: 0)
        try manet(["verify", Self.model, "--reference", Self.reference], expect: 0)
        try manet(["verify", Self.model, "--reference", Self.reference, "--rtol", "0", "--atol", "0"], expect: 1)
        try manet(["bench", Self.model, "--iterations", "1", "--warmup", "0"], expect: 0)
        try manet(["evaluate", checkpoint, "--data", data, "--threads", "1"], expect: 0)
        try manet(["evaluate", "--model", checkpoint, "--data", data, "--threads", "1"], expect: 0)  // the old spelling
        try manet(["evaluate", checkpoint, "--model", checkpoint, "--data", data], expect: 64)
        let run = folder.file("run")
        try manet(["train", "--data", data, "--width", "4", "--input-size", "64", "--epochs", "1", "--batch-size", "7",
                   "--threads", "1", "--checkpoint-dir", run, "--plain"], expect: 0)
        try manet(["logs", run + "/log.txt"], expect: 0)
        try manet(["train", "--data", data, "--width", "4", "--num-classes", "5"], expect: 2)
    }
}
