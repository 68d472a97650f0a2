// `manet logs` end to end on the authors' published logs: table, comparison, JSON, SVG, bad input.

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TestSupport
import XCTest

final class LogsTests: XCTestCase {
    var folder: TemporaryFolder!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: manetBinary) else {
            throw MissingPrerequisite(description: "no manet binary at \(manetBinary): run via `make test` (sets MANET_BINARY)")
        }
        folder = try TemporaryFolder("manet-logs")
    }

    override func tearDown() { folder?.remove() }

    /// The authors' logs, read in place from ../shared/reference-logs (never copied here).
    func referenceLog(_ name: String) throws -> String {
        let dir = TestEnvironment.value("MANET_REFERENCE_LOGS")
            ?? Fixtures.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/reference-logs").path
        let path = dir + "/" + name
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "\(path) not present")
        return path
    }

    func testTableOfOneRun() throws {
        let r = try runManet(["logs", try referenceLog("RAF-DB.txt")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertTrue(lines[0].hasSuffix("RAF-DB.txt: 100 epochs"), String(lines[0]))
        // Header, 100 epoch rows, summary.
        XCTAssertEqual(lines.count, 103, r.stdout)
        XCTAssertTrue(r.stdout.contains("final accuracy 88.005, best 88.396"), r.stdout)
    }

    func testComparisonJSONAndSVG() throws {
        let svg = folder.file("curves.svg")
        let a = try referenceLog("AffectNet7.txt"), b = try referenceLog("AffectNet8.txt")
        let r = try runManet(["logs", a, b, "--svg", svg])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("best accuracy:  A 64.533  B 60.290  B-A -4.243"), r.stdout)
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertTrue(text.contains("<svg"), text)
        XCTAssertEqual(text.components(separatedBy: "<polyline").count - 1, 8)

        let json = try runManet(["logs", a, b, "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let comparison = try XCTUnwrap(object["comparison"] as? [String: Any])
        XCTAssertEqual((comparison["rows"] as? [Any])?.count, 20)
        XCTAssertEqual(comparison["bestAccuracyA"] as? Double, 64.53272247314453)
    }

    /// A log in the authors' format: per epoch one train and one test progress line, the
    /// accuracy, the best so far and the seconds.
    func writeLog(_ name: String, accuracies: [Double], trainLosses: [Double]) throws -> String {
        var text = "", best = 0.0
        for (epoch, (accuracy, loss)) in zip(accuracies, trainLosses).enumerated() {
            best = max(best, accuracy)
            text += "Current learning rate: 0.01\n"
            text += String(format: "Epoch: [%d][0/4]\tLoss %.4f (%.4f)\tAccuracy 20.000 (20.000)\n", epoch, loss, loss)
            text += String(format: "Test: [0/2]\tLoss %.4f (%.4f)\tAccuracy %.3f (%.3f)\n", loss + 0.1, loss + 0.1, accuracy, accuracy)
            text += String(format: " * Accuracy %.3f\nCurrent best accuracy: %.3f\n12.5\n", accuracy, best)
        }
        let path = folder.file(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testThreeOrMoreRunsInOneTableAndOneSVG() throws {
        let torchA = try writeLog("torch-1.log", accuracies: [20, 30], trainLosses: [1.9, 1.7])
        let torchB = try writeLog("torch-2.log", accuracies: [25, 35], trainLosses: [1.8, 1.6])
        let ours = try writeLog("manet-1.log", accuracies: [22, 40], trainLosses: [1.85, 1.5])
        let svg = folder.file("seeds.svg")
        let r = try runManet(["logs", torchA, torchB, ours, "--svg", svg])
        XCTAssertEqual(r.status, 0, r.stderr)
        // A column per run and the min / max over the runs, per metric.
        XCTAssertTrue(r.stdout.contains("C: " + ours), r.stdout)
        XCTAssertTrue(r.stdout.contains("    1    30.000    35.000    40.000    30.000    40.000"), r.stdout)
        XCTAssertTrue(r.stdout.contains("    1    1.7000    1.6000    1.5000    1.5000    1.7000"), r.stdout)
        XCTAssertTrue(r.stdout.contains("C: final accuracy 40.000, best 40.000 (epoch 1)"), r.stdout)
        // Every run's four curves in two panels, a colour per run and a legend row per run and
        // per style (test solid, train dashed); the title names the runs.
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertEqual(text.components(separatedBy: "<polyline").count - 1, 12)
        for name in ["torch-1", "torch-2", "manet-1", "test", "train", "accuracy", "loss", "torch-1 vs torch-2 vs manet-1"] {
            XCTAssertTrue(text.contains(">\(name)</text>"), name)
        }
        XCTAssertTrue(text.contains("<g id=\"accuracy\">") && text.contains("<g id=\"loss\">"), text)
        XCTAssertNoThrow(try XMLDocument(xmlString: text))

        let json = try runManet(["logs", torchA, torchB, ours, "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((object["runs"] as? [Any])?.count, 3)

        // One bad log among several: exit 2 naming it, no SVG written.
        let notes = folder.file("notes.txt")
        try "hello\n".write(toFile: notes, atomically: true, encoding: .utf8)
        let bad = folder.file("bad.svg")
        let refused = try runManet(["logs", torchA, torchB, notes, "--svg", bad])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("notes.txt: no epoch found"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
        // No log at all is a usage error.
        XCTAssertEqual(try runManet(["logs", "--svg", bad]).status, 64)
    }

    /// --label names the runs (runs with one label form a group), --title the picture; a
    /// --label count that does not match the logs, or --label / --title without --svg, is a
    /// usage error naming the option, and nothing is written.
    func testLabelsAndTitle() throws {
        let torchA = try writeLog("seed-1.log", accuracies: [20, 30], trainLosses: [1.9, 1.7])
        let torchB = try writeLog("seed-2.log", accuracies: [25, 35], trainLosses: [1.8, 1.6])
        let ours = try writeLog("seed-3.log", accuracies: [22, 40], trainLosses: [1.85, 1.5])
        let svg = folder.file("seeds.svg")
        let r = try runManet(["logs", torchA, torchB, ours, "--label", "PyTorch", "--label", "PyTorch", "--label", "manet",
                              "--title", "PyTorch vs manet <width 64>", "--svg", svg])
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        for row in ["PyTorch (2 runs)", "manet", "PyTorch vs manet &lt;width 64&gt;"] {
            XCTAssertTrue(text.contains(">\(row)</text>"), row)
        }
        XCTAssertNoThrow(try XMLDocument(xmlString: text))
        // The text report does not change with the labels.
        let plain = try runManet(["logs", torchA, torchB, ours])
        XCTAssertEqual(r.stdout, plain.stdout + "curves written to \(svg)\n")

        let bad = folder.file("bad.svg")
        for (args, needle) in [
            (["--label", "PyTorch", "--label", "manet", "--svg", bad], "--label is given 2 times for 3 logs"),
            (["--label", "PyTorch", "--svg", bad], "--label is given 1 time for 3 logs"),
            (["--label", "a", "--label", "b", "--label", "c"], "--label names the runs in the picture: it needs --svg"),
            (["--title", "t"], "--title is the picture's title: it needs --svg"),
            (["--label", "a", "--label", "", "--label", "c", "--svg", bad], "--label must not be empty"),
        ] {
            let refused = try runManet(["logs", torchA, torchB, ours] + args)
            XCTAssertEqual(refused.status, 64, "\(args): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains("manet: error: " + needle), refused.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
        }
    }

    /// Lines the parser passes over are warnings on stderr in the CLI's form, naming the log;
    /// stdout keeps the table only.
    func testWarningsGoToStderrWithTheCLIPrefix() throws {
        let cut = folder.file("cut.txt")
        try "Current learning rate: 0.01\nEpoch: [0][0/2]\tLoss 2.0 (2.0)\tAccuracy 10.0 (10.0)\nsome progress bar residue\n"
            .write(toFile: cut, atomically: true, encoding: .utf8)
        for args in [[cut], [cut, cut], [cut, cut, cut]] {
            let r = try runManet(["logs"] + args)
            XCTAssertEqual(r.status, 0, r.stderr)
            let warnings = r.stderr.split(separator: "\n").map(String.init)
            XCTAssertEqual(warnings.count, 2 * args.count, r.stderr)
            XCTAssertTrue(warnings.allSatisfy { $0.hasPrefix("manet: warning: \(cut): ") }, r.stderr)
            XCTAssertTrue(warnings[0].hasPrefix("manet: warning: \(cut): line 3: unknown line"), r.stderr)
            XCTAssertFalse(r.stdout.contains("warning"), r.stdout)
        }
    }

    func testNotALogIsExit2() throws {
        let notes = folder.file("notes.txt")
        try "hello\n".write(toFile: notes, atomically: true, encoding: .utf8)
        let r = try runManet(["logs", notes])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("notes.txt: no epoch found"), r.stderr)
    }
}

/// Something the test needs (the built binary, generated node tests) is absent: a failure,
/// since these tests are the proof that the command works.
private struct MissingPrerequisite: Error, CustomStringConvertible {
    var description: String
}
