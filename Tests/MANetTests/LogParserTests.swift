// The training-log parser against the authors' six published logs and against edge cases.

import Foundation
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import MANet

final class LogParserTests: XCTestCase {
    /// The authors' logs live outside the repository (../shared/reference-logs); they are read
    /// in place, never copied. `MANET_REFERENCE_LOGS` points elsewhere if needed.
    static var referenceLogs: String {
        if let dir = ProcessInfo.processInfo.environment["MANET_REFERENCE_LOGS"] { return dir }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/reference-logs").path
    }

    func reference(_ name: String) throws -> TrainingLog {
        let path = Self.referenceLogs + "/" + name
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "reference log \(path) not present")
        return try LogParser.parse(contentsOf: path)
    }

    /// Counts lines the way an independent reader would, to check the parser against the file.
    func count(_ prefix: String, in name: String) throws -> Int {
        let text = try String(contentsOfFile: Self.referenceLogs + "/" + name, encoding: .utf8)
        return text.split(separator: "\n").filter { $0.hasPrefix(prefix) }.count
    }

    func testAllSixReferenceLogsParseCompletely() throws {
        let expectedEpochs = ["AffectNet7.txt": 20, "AffectNet8.txt": 20, "CAER-S.txt": 400,
                              "FED-RO.txt": 20, "RAF-DB.txt": 100, "SFEW.txt": 100]
        for (name, epochs) in expectedEpochs {
            let log = try reference(name)
            XCTAssertEqual(log.epochs.count, epochs, name)
            XCTAssertEqual(log.epochs.count, try count("Current learning rate:", in: name), name)
            XCTAssertEqual(log.epochs.map(\.epoch), Array(0..<epochs), "\(name): epochs numbered 0..<\(epochs) in order")
            XCTAssertEqual(log.warnings, [], name)
            for e in log.epochs {
                XCTAssertTrue(e.isComplete, "\(name) epoch \(e.epoch) incomplete: \(e)")
                XCTAssertNotNil(e.testLoss, "\(name) epoch \(e.epoch)")
            }
        }
    }

    func testRAFDBValues() throws {
        let log = try reference("RAF-DB.txt")
        XCTAssertEqual(log.bestAccuracy!, 88.396, accuracy: 0.0005)
        XCTAssertEqual(log.bestAccuracy!, 88.39634704589844)
        XCTAssertEqual(log.finalAccuracy, 88.005)
        let first = log.epochs[0]
        XCTAssertEqual(first.learningRate, 0.01)
        // The last train line of epoch 0 is `[90/96] Loss 0.9313 (1.2422) Accuracy 66.406 (59.598)`.
        XCTAssertEqual(first.trainLoss, 1.2422)
        XCTAssertEqual(first.trainAccuracy, 59.598)
        XCTAssertEqual(first.trainBatches, 96)
        XCTAssertEqual(first.testLoss, 0.7374)
        XCTAssertEqual(first.testAccuracy, 71.871)
        XCTAssertEqual(first.bestAccuracy, 71.87092590332031)
        XCTAssertEqual(first.seconds, 40.106828927993774)
        let last = log.epochs[99]
        XCTAssertEqual(last.learningRate, 1.0000000000000004e-08)
        XCTAssertEqual(last.trainLoss, 0.3736)
        XCTAssertEqual(last.trainAccuracy, 87.835)
        XCTAssertEqual(last.seconds, 32.60729146003723)
        // The best accuracy never decreases and equals the running max of test accuracies up to
        // the rounding of ` * Accuracy` to three decimals.
        var runningMax = -1.0
        for e in log.epochs {
            runningMax = max(runningMax, e.testAccuracy!)
            XCTAssertEqual(e.bestAccuracy!, runningMax, accuracy: 0.0006, "epoch \(e.epoch)")
        }
        XCTAssertEqual(log.bestEpoch.map { log.epochs[$0].testAccuracy }, 88.396)
    }

    func testQuirksOfTheOtherLogs() throws {
        // SFEW: one train line and one test line per epoch, rates down to 1e-12, and a best
        // accuracy (49.999996...) that the rounded ` * Accuracy 50.000` disagrees with.
        let sfew = try reference("SFEW.txt")
        XCTAssertEqual(sfew.epochs[2].testAccuracy, 50.0)
        XCTAssertEqual(sfew.epochs[2].bestAccuracy, 49.999996185302734)
        XCTAssertEqual(sfew.epochs[99].learningRate, 1.0000000000000006e-12)
        XCTAssertEqual(sfew.epochs[0].trainBatches, 8)
        XCTAssertEqual(sfew.bestAccuracy, 59.40366744995117)
        // CAER-S: 400 epochs, lr 0.1, test meters padded (`Accuracy  0.000 ( 0.000)`).
        let caer = try reference("CAER-S.txt")
        XCTAssertEqual(caer.epochs[0].learningRate, 0.1)
        XCTAssertEqual(caer.bestAccuracy, 88.41664123535156)
        XCTAssertEqual(caer.finalAccuracy, 88.340)
        XCTAssertEqual(caer.epochs[399].testLoss, 0.5548)
        // FED-RO: a single test line per epoch.
        let fedro = try reference("FED-RO.txt")
        XCTAssertEqual(fedro.epochs[19].testLoss, 1.7142)
        XCTAssertEqual(fedro.bestAccuracy, 70.0)
        // AffectNet: 4-digit batch counters.
        let affect7 = try reference("AffectNet7.txt")
        XCTAssertEqual(affect7.epochs[19].trainBatches, 1109)
        XCTAssertEqual(affect7.epochs[19].trainAccuracy, 65.762)
        XCTAssertEqual(try reference("AffectNet8.txt").epochs[19].trainBatches, 1124)
    }

    func testOurFormatWithFinalAveragesBlankLinesAndCRLF() throws {
        // Our trainer may close the train phase with a ` * ` line carrying the epoch's final
        // averages; those win over the last running average.
        let text = [
            "Current learning rate: 0.01",
            "Epoch: [0][0/3]\tLoss 2.0000 (2.0000)\tAccuracy 10.000 (10.000)",
            "Epoch: [0][2/3]\tLoss 1.5000 (1.7500)\tAccuracy 30.000 (20.000)",
            " * Loss 1.7000 Accuracy 21.000",
            "",
            "Test: [0/1]\tLoss 1.2000 (1.2000)\tAccuracy 40.000 (40.000)",
            " * Accuracy 41.500",
            "Current best accuracy: 41.5",
            "12.5",
            "Current learning rate: 0.01",
            "Epoch: [1][0/3]\tLoss 1.0000 (1.0000)\tAccuracy 50.000 (50.000)",
            "Test: [0/1]\tLoss 1.1000 (1.1000)\tAccuracy  9.000 ( 9.000)",
            " * Accuracy 39.000",
            "Current best accuracy: 41.5",
            "11.0",
        ].joined(separator: "\r\n") + "\r\n\r\n"
        let log = try LogParser.parse(text, source: "ours")
        XCTAssertEqual(log.warnings, [])
        XCTAssertEqual(log.epochs.count, 2)
        XCTAssertEqual(log.epochs[0].trainLoss, 1.7)
        XCTAssertEqual(log.epochs[0].trainAccuracy, 21.0)
        XCTAssertEqual(log.epochs[0].testLoss, 1.2)
        XCTAssertEqual(log.epochs[0].testAccuracy, 41.5)
        XCTAssertEqual(log.epochs[0].seconds, 12.5)
        XCTAssertEqual(log.epochs[1].trainLoss, 1.0)
        XCTAssertEqual(log.epochs[1].testAccuracy, 39.0)
        XCTAssertEqual(log.bestAccuracy, 41.5)
        XCTAssertEqual(log.bestEpoch, 0)
        XCTAssertEqual(log.finalAccuracy, 39.0)
    }

    /// Lines as our trainer writes them to its log file (`LogLine`, the `file` variants).
    func testOurTrainersLinesParse() throws {
        var lines: [String] = []
        var expectedBest: Float = 0
        for epoch in 0..<3 {
            let lr = 0.01 * pow(0.1, Double(epoch))
            lines.append(LogLine.learningRate(lr).file)
            var loss = AverageMeter(), accuracy = AccuracyMeter()
            for batch in 0..<12 {
                loss.update(2.0 / Double(epoch + batch + 1), count: 16)
                accuracy.update(correct: (batch * 5 + epoch) % 17, batchSize: 16)
                if batch % 10 == 0 || batch == 11 {
                    lines.append(LogLine.progress(prefix: LogLine.trainPrefix(epoch: epoch), batch: batch, batches: 12,
                                                  loss: loss, accuracy: accuracy))
                }
            }
            var testLoss = AverageMeter(), testAccuracy = AccuracyMeter()
            testLoss.update(1.5 - Double(epoch) * 0.25, count: 8)
            testAccuracy.update(correct: 3 + epoch * (epoch == 2 ? 0 : 2), batchSize: 8)
            lines.append(LogLine.progress(prefix: LogLine.testPrefix, batch: 0, batches: 1, loss: testLoss, accuracy: testAccuracy))
            lines.append(LogLine.testAccuracy(testAccuracy.average).file)
            expectedBest = max(expectedBest, testAccuracy.average)
            lines.append(LogLine.bestAccuracy(expectedBest).file)
            lines.append(LogLine.epochTime(10.5 + Double(epoch)).file)

            let log = try LogParser.parse(lines.joined(separator: "\n") + "\n", source: "ours")
            XCTAssertEqual(log.warnings, [])
            let e = try XCTUnwrap(log.epochs.last)
            XCTAssertEqual(e.epoch, epoch)
            XCTAssertTrue(e.isComplete)
            XCTAssertEqual(e.learningRate!, lr, accuracy: lr * 1e-15)
            XCTAssertEqual(e.trainLoss!, loss.average, accuracy: 6e-5)
            XCTAssertEqual(e.trainAccuracy!, Double(accuracy.average), accuracy: 6e-4)
            XCTAssertEqual(e.trainBatches, 12)
            XCTAssertEqual(e.testLoss!, testLoss.average, accuracy: 6e-5)
            XCTAssertEqual(e.testAccuracy!, Double(testAccuracy.average), accuracy: 6e-4)
            XCTAssertEqual(e.bestAccuracy!, Double(expectedBest), accuracy: 1e-6)
            XCTAssertEqual(e.seconds, 10.5 + Double(epoch))
        }
    }

    func testTruncatedLogAndUnknownLinesAreWarnings() throws {
        let text = """
        Current learning rate: 0.01
        Epoch: [0][0/2]\tLoss 2.0 (2.0)\tAccuracy 10.0 (10.0)
        some progress bar residue
        Test: [0/1]\tLoss 1.0 (1.0)\tAccuracy 40.0 (40.0)
        """
        let log = try LogParser.parse(text, source: "cut")
        XCTAssertEqual(log.epochs.count, 1)
        XCTAssertNil(log.epochs[0].testAccuracy)
        XCTAssertEqual(log.warnings.count, 2)
        XCTAssertTrue(log.warnings[0].hasPrefix("line 3: unknown line"), log.warnings[0])
        XCTAssertTrue(log.warnings[1].contains("incomplete"), log.warnings[1])
    }

    func testNotALogIsAnError() {
        XCTAssertThrowsError(try LogParser.parse("hello\nworld\n", source: "notes.txt")) { error in
            XCTAssertTrue("\(error)".hasPrefix("notes.txt: no epoch found"), "\(error)")
        }
        XCTAssertThrowsError(try LogParser.parse(contentsOf: "/nonexistent/log.txt")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/log.txt: cannot read the file")
        }
    }

    func testComparisonAndSVG() throws {
        let raf = try reference("RAF-DB.txt")
        let sfew = try reference("SFEW.txt")
        let comparison = LogComparison(raf, sfew)
        XCTAssertEqual(comparison.rows.count, 100)
        let row = comparison.rows[0]
        XCTAssertEqual(row.testAccuracyDifference!, 18.119 - 71.871, accuracy: 1e-9)
        XCTAssertEqual(comparison.bestAccuracyA, raf.bestAccuracy)
        XCTAssertTrue(comparison.table().contains("best accuracy:  A 88.396  B 59.404  B-A -28.993"), comparison.table())

        let svg = TrainingCurves.svg([raf, sfew])
        XCTAssertTrue(svg.hasPrefix("<?xml"))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        // Four curves per run.
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 8)
        XCTAssertTrue(svg.contains("RAF-DB: test accuracy"))
        XCTAssertTrue(svg.contains("stroke-dasharray=\"7 4\""))
        // The XML is well formed.
        XCTAssertNoThrow(try XMLDocument(xmlString: svg))
    }

    /// Seeds of two trainers (`seed-N/torch.log`, `seed-N/swift.log`): one colour per trainer,
    /// train curves dashed, a legend row per trainer and per style, x ticks at whole epochs.
    func testSeveralRunsGroupedByFileName() throws {
        func log(_ source: String, _ accuracies: [Double]) throws -> TrainingLog {
            var text = ""
            for (epoch, accuracy) in accuracies.enumerated() {
                text += "Current learning rate: 0.01\nEpoch: [\(epoch)][0/4]\tLoss 1.5000 (1.5000)\tAccuracy 20.000 (20.000)\n"
                text += "Test: [0/2]\tLoss 1.6000 (1.6000)\tAccuracy \(accuracy) (\(accuracy))\n"
                text += " * Accuracy \(accuracy)\nCurrent best accuracy: \(accuracy)\n10.0\n"
            }
            return try LogParser.parse(text, source: source)
        }
        let runs = [try log("w/seed-1/torch.log", [20, 30]), try log("w/seed-2/torch.log", [22, 31]),
                    try log("w/seed-1/swift.log", [21, 29]), try log("w/seed-2/swift.log", [25, 35])]
        let svg = TrainingCurves.svg(runs)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 16)
        XCTAssertTrue(svg.contains(">torch (2 runs)</text>"), svg)
        XCTAssertTrue(svg.contains(">swift (2 runs)</text>"), svg)
        XCTAssertTrue(svg.contains(">test</text>") && svg.contains(">train</text>"), svg)
        // Two colours among the curves, one per trainer.
        let strokes = Set(svg.components(separatedBy: "<polyline").dropFirst().compactMap {
            $0.components(separatedBy: "stroke=\"").dropFirst().first?.components(separatedBy: "\"").first
        })
        XCTAssertEqual(strokes, [LineChart.palette[0], LineChart.palette[1]])
        // Epoch ticks 0 and 1 only, in both panels.
        for id in ["accuracy", "loss"] {
            XCTAssertEqual(try DrawnPanel(svg, id: id).xTicks, ["0", "1"], id)
        }
        XCTAssertNoThrow(try XMLDocument(xmlString: svg))
    }

    func testNiceTicksAndEscaping() {
        XCTAssertEqual(niceTicks(low: 0, high: 100, count: 5), [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(niceTicks(low: 0, high: 99, count: 10), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
        XCTAssertEqual(SVGWriter.escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;")
    }
}
