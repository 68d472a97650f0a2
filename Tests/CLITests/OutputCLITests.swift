// Output for people and for programs (issue 20, items 4, 5 and 7): run's one line per input and
// counts, --skip-bad-images; evaluate's per-class accuracy, confusion matrix, --json, --svg and
// the epoch `manet logs` names; logs reading the console output; hints naming the next command;
// summarised key lists; `manet env`; `make install`'s files.

import Foundation
import TestSupport
import XCTest

final class OutputCLITests: XCTestCase {
    nonisolated(unsafe) static var shared: TinyTrainingRun?
    /// The tiny run's folder after 2 epochs, and its stdout (the console output).
    nonisolated(unsafe) static var runDir = ""
    nonisolated(unsafe) static var console = ""
    static let model = Fixtures.path("manet_w8_torchscript_op13.onnx")

    var run: TinyTrainingRun { Self.shared! }
    var folder: TemporaryFolder!

    override func setUpWithError() throws {
        folder = try TemporaryFolder("manet-output")
        if Self.shared != nil { return }
        let run = try TinyTrainingRun(epochs: 2)
        Self.runDir = run.root.file("trained")
        let r = try runManet(run.arguments(dir: Self.runDir))
        XCTAssertEqual(r.status, 0, r.stderr)
        Self.console = r.stdout
        Self.shared = run
    }

    override func tearDown() { folder.remove() }

    override class func tearDown() {
        shared?.root.remove()
        shared = nil
    }

    @discardableResult
    func manet(_ args: [String], expect status: Int32 = 0, line: UInt = #line) throws -> ProcessResult {
        let r = try runManet(args)
        XCTAssertEqual(r.status, status, "manet \(args.joined(separator: " ")):\n\(r.stdout)\n\(r.stderr)", line: line)
        return r
    }

    func object(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    // MARK: - run

    func testRunPrintsOneLinePerInputAndACountPerClass() throws {
        let images = run.data + "/test"
        let r = try manet(["run", Self.model, "--input", images])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 14 + 1, r.stdout)
        for line in lines.dropLast() {
            XCTAssertNotNil(line.range(of: #"^\S+\.jpg +\S+ +0\.\d{4}$"#, options: .regularExpression), line)
        }
        // The count line adds up to the inputs and agrees with the lines.
        let last = try XCTUnwrap(lines.last)
        XCTAssertTrue(last.hasPrefix("14 inputs: Neutral "), last)
        let counts = last.split(separator: ":", maxSplits: 1)[1].split(separator: ",").map {
            ($0.split(separator: " ")[0], Int($0.split(separator: " ")[1])!)
        }
        XCTAssertEqual(counts.map(\.1).reduce(0, +), 14)
        for (name, count) in counts {
            XCTAssertEqual(lines.dropLast().filter { $0.split(separator: " ", omittingEmptySubsequences: true)[1] == name }.count, count, "\(name)")
        }
        // --verbose: every class under each input.
        let verbose = try manet(["run", Self.model, "--input", images + "/0", "--verbose"])
        XCTAssertEqual(verbose.stdout.split(separator: "\n").count, 2 * (1 + 7) + 1, verbose.stdout)
        // JSON: counts, and paths with plain slashes.
        let json = try manet(["run", Self.model, "--input", images, "--json"]).stdout
        XCTAssertTrue(json.contains("\"input\" : \"\(images)/0/"), json)
        let counted = try XCTUnwrap(try object(json)["counts"] as? [[String: Any]])
        XCTAssertEqual(counted.compactMap { $0["count"] as? Int }.reduce(0, +), 14)
    }

    func testRunSkipsBadImagesOnlyWhenAsked() throws {
        let images = folder.file("images")
        try FileManager.default.copyItem(atPath: run.data + "/test/0", toPath: images)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: images + "/broken.jpg"))
        let stopped = try manet(["run", Self.model, "--input", images], expect: 2)
        XCTAssertTrue(stopped.stderr.hasPrefix("manet: error: "), stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("broken.jpg"), stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("manet: hint: --skip-bad-images"), stopped.stderr)
        let skipped = try manet(["run", Self.model, "--input", images, "--skip-bad-images"])
        XCTAssertTrue(skipped.stderr.contains("manet: warning: skipped: "), skipped.stderr)
        XCTAssertTrue(skipped.stdout.contains("2 inputs (1 skipped): "), skipped.stdout)
        let json = try object(try manet(["run", Self.model, "--input", images, "--skip-bad-images", "--json"]).stdout)
        XCTAssertEqual(json["skipped"] as? [String], [images + "/broken.jpg"])
    }

    // MARK: - evaluate

    func testEvaluateReportsPerClassAccuracyAndTheConfusionMatrix() throws {
        let best = Self.runDir + "/model_best.pb"
        let svg = folder.file("confusion.svg")
        let text = try manet(["evaluate", best, "--data", run.data, "--svg", svg]).stdout
        let json = try object(try manet(["evaluate", best, "--data", run.data, "--json"]).stdout)
        let confusion = try XCTUnwrap(json["confusion"] as? [[Int]])
        XCTAssertEqual(confusion.count, 7)
        XCTAssertEqual(confusion.flatMap { $0 }.reduce(0, +), 14)
        let diagonal = (0..<7).map { confusion[$0][$0] }.reduce(0, +)
        let accuracy = try XCTUnwrap(json["accuracy"] as? Double)
        XCTAssertEqual(accuracy, 100 * Double(diagonal) / 14, accuracy: 1e-3, "the accuracy is the matrix's diagonal")
        let classes = try XCTUnwrap(json["classes"] as? [[String: Any]])
        for (c, entry) in classes.enumerated() {
            XCTAssertEqual(entry["images"] as? Int, confusion[c].reduce(0, +))
            XCTAssertEqual(entry["correct"] as? Int, confusion[c][c])
        }
        // The text says the same: one row per class and the matrix's rows.
        XCTAssertTrue(text.contains("per class:\n"), text)
        XCTAssertTrue(text.contains("confusion matrix (rows: true class, columns: predicted):\n"), text)
        let neutral = text.split(separator: "\n").filter { $0.hasPrefix("  Neutral ") }
        XCTAssertEqual(neutral.count, 2, text)
        XCTAssertEqual(neutral[1].split(separator: " ").dropFirst().compactMap { Int($0) }, confusion[0])
        // The picture holds every count.
        let picture = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertTrue(picture.hasPrefix("<?xml"), picture)
        XCTAssertEqual(picture.components(separatedBy: "<rect").count - 1, 1 + 49)

        // The epoch of model_best.pb is the best epoch `manet logs` names.
        let logs = try manet(["logs", Self.runDir + "/log.txt"]).stdout
        let at = try XCTUnwrap(logs.range(of: #"\(epoch \d+\)"#, options: .regularExpression), logs)
        let bestEpoch = Int(logs[at].dropFirst(7).dropLast())!
        XCTAssertEqual(json["epoch"] as? Int, bestEpoch)
        XCTAssertTrue(text.contains("model: epoch \(bestEpoch), width 4)"), text)
        XCTAssertEqual(try object(try manet(["evaluate", Self.runDir + "/checkpoint.pb", "--data", run.data, "--json"]).stdout)["epoch"] as? Int, 1)
    }

    /// An ONNX model where a checkpoint is expected: `evaluate` takes it, `export` names `import`.
    func testModelsWhereACheckpointIsExpected() throws {
        let exported = folder.file("w4.onnx")
        try manet(["export", Self.runDir + "/model_best.pb", "-o", exported])
        let viaONNX = try object(try manet(["evaluate", exported, "--data", run.data, "--json"]).stdout)
        let viaCheckpoint = try object(try manet(["evaluate", Self.runDir + "/model_best.pb", "--data", run.data, "--json"]).stdout)
        XCTAssertEqual(viaONNX["confusion"] as? [[Int]], viaCheckpoint["confusion"] as? [[Int]])

        let r = try manet(["export", exported, "-o", folder.file("again.onnx")], expect: 2)
        XCTAssertEqual(r.stderr, "manet: error: \(exported): this is an ONNX model, not a manet checkpoint\n"
                       + "manet: hint: `manet import \(exported) -o ckpt.pb` makes a checkpoint of it\n")
        XCTAssertFalse(r.stderr.contains("format version"))
        let s = try manet(["export", Fixtures.path("manet_w8.safetensors"), "-o", folder.file("x.onnx")], expect: 2)
        XCTAssertTrue(s.stderr.contains("this is a safetensors state_dict, not a manet checkpoint"), s.stderr)
    }

    /// A width mismatch: the cause first, three keys of the 506, the full list with --verbose.
    func testKeyListsAreSummarised() throws {
        let args = ["import", Self.model, "--width", "16", "-o", folder.file("x.pb")]
        let short = try manet(args, expect: 2)
        let lines = short.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, short.stderr)
        XCTAssertTrue(lines[1].contains("the file has width 8 (conv1.weight [8, 3, 7, 7]), width 16 was asked for"), lines[1])
        XCTAssertTrue(lines[2].hasSuffix("; ... and 503 more"), lines[2])
        XCTAssertEqual(lines[3], "manet: hint: --verbose lists every key")
        XCTAssertLessThan(short.stderr.utf8.count, 1000)
        let full = try manet(args + ["--verbose"], expect: 2)
        XCTAssertEqual(full.stderr.components(separatedBy: "in the file, MA-Net needs").count - 1, 506)
        // The same summary through train --init.
        let train = try manet(run.arguments(dir: folder.file("t"), epochs: 1) + ["--init", Self.model], expect: 2)
        XCTAssertTrue(train.stderr.contains("... and "), train.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("t/log.txt")))
    }

    // MARK: - logs

    func testLogsReadsTheConsoleOutputAsTheLogFile() throws {
        let console = folder.file("console.txt")
        try Self.console.write(toFile: console, atomically: true, encoding: .utf8)
        XCTAssertTrue(Self.console.contains(" **** Accuracy "), "the console form differs from the file's")
        let fromConsole = try manet(["logs", console, "--json"]).stdout
        let fromFile = try manet(["logs", Self.runDir + "/log.txt", "--json"]).stdout
        var a = try object(fromConsole), b = try object(fromFile)
        XCTAssertEqual(a["source"] as? String, console)
        a["source"] = nil
        b["source"] = nil
        XCTAssertEqual(NSDictionary(dictionary: a), NSDictionary(dictionary: b), "\(fromConsole)\nvs\n\(fromFile)")
        XCTAssertEqual((a["warnings"] as? [Any])?.count ?? 0, 0, fromConsole)
        XCTAssertTrue(fromFile.contains("\"source\" : \"\(Self.runDir)/log.txt\""), "slashes unescaped: \(fromFile)")
    }

    // MARK: - env and install

    func testEnvPrintsWhatABugReportNeeds() throws {
        let text = try manet(["env"]).stdout
        for key in ["manet ", "swift ", "cpu ", "cpu vector extensions ", "openblas ", "openblas core ",
                    "kernels: winograd, pooling ", "kernels: packed gemm ", "onnxruntime "] {
            XCTAssertTrue(text.split(separator: "\n").contains { $0.hasPrefix(key) }, "no '\(key)' line:\n\(text)")
        }
        XCTAssertTrue(text.contains("OpenBLAS "), text)
        let json = try object(try manet(["env", "--json"]).stdout)
        XCTAssertEqual(json["manet"] as? String, try manet(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        // The kernel variant follows the CPU's flags.
        let flags = (json["cpu vector extensions"] as? String ?? "").split(separator: " ")
        XCTAssertEqual(json["kernels: winograd, pooling"] as? String,
                       flags.contains("avx512f") ? "avx512f" : flags.contains("avx2") ? "avx2" : "default")
    }

    func testInstallPutsTheBinaryManPageAndCompletionsUnderPrefix() throws {
        let prefix = folder.file("prefix")
        let r = try runProcess("/bin/bash", [Fixtures.packageRoot.path + "/tools/build/install.sh", manetBinary, prefix])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: prefix + "/bin/manet"))
        let page = try String(contentsOfFile: prefix + "/share/man/man1/manet.1", encoding: .utf8)
        XCTAssertTrue(page.hasPrefix(".TH MANET 1"), page)
        for command in ["inspect", "verify", "run", "train", "evaluate", "logs", "synth", "export", "import", "bench", "env"] {
            XCTAssertTrue(page.contains(".SS manet \(command)\n"), "the man page lacks \(command)")
        }
        for file in ["share/bash-completion/completions/manet", "share/zsh/site-functions/_manet", "share/fish/vendor_completions.d/manet.fish"] {
            let script = try String(contentsOfFile: prefix + "/" + file, encoding: .utf8)
            XCTAssertTrue(script.contains("evaluate"), file)
        }
    }
}
