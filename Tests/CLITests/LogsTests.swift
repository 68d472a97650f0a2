// `manet logs` end to end on the authors' published logs: table, comparison, JSON, SVG, bad input.

import Foundation
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
