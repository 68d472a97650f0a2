// The pieces of the command line's output that live in MANet: the live progress line (rendered
// with a fake clock, no terminal), the confusion matrix, console-output logs, summarised key lists.

import Foundation
@testable import MANet
import XCTest

final class ProgressAndReportTests: XCTestCase {
    func testProgressLineShowsEpochStepRateElapsedETALossAndAccuracy() {
        var written: [String] = []
        var now = 100.0
        let line = ProgressLine(columns: 0, now: { now }) { written.append($0) }
        func train(_ step: Int) -> TrainingProgress {
            .training(epoch: 2, epochs: 10, step: step, steps: 20, images: 16, loss: 1.23456, accuracy: 45.678)
        }
        // The first step starts the clock: no rate or ETA yet.
        XCTAssertEqual(line.render(train(1), at: now),
                       "epoch 2 (3 of 10) train step  1/20  -- img/s  elapsed 0:00  ETA --  loss 1.2346  acc 45.68%")
        // Four more steps of 16 images in 2 s: 32 img/s; 0.5 s per step, 15 steps left.
        for step in 2...4 { _ = line.render(train(step), at: 100 + 0.5 * Double(step - 1)) }
        now = 102
        XCTAssertEqual(line.render(train(5), at: now),
                       "epoch 2 (3 of 10) train step  5/20  32.0 img/s  elapsed 0:02  ETA 0:08  loss 1.2346  acc 45.68%")
        // Evaluation is a new phase with its own clock.
        XCTAssertEqual(line.render(.evaluating(epoch: 2, epochs: 10, step: 1, steps: 3, images: 8, loss: 2, accuracy: 50), at: 200),
                       "epoch 2 (3 of 10) test step 1/3  -- img/s  elapsed 0:00  ETA --  loss 2.0000  acc 50.00%")
        XCTAssertEqual(line.render(.status("writing checkpoint.pb"), at: 201), "writing checkpoint.pb ...")
        // Drawn over itself; cut to the terminal's width; erased before a log line.
        line.columns = 20
        line.show(train(6))
        XCTAssertEqual(written.last, "\r\u{1B}[2K" + "epoch 2 (3 of 10) t")
        line.clear()
        XCTAssertEqual(written.last, "\r\u{1B}[2K")
        let count = written.count
        line.clear()
        XCTAssertEqual(written.count, count, "nothing to erase twice")
        XCTAssertEqual(ProgressLine.duration(3725), "1:02:05")
    }

    func testConfusionMatrixCountsAndPerClassAccuracy() {
        var m = ConfusionMatrix(classNames: ["a", "b", "c"])
        m.add(labels: [0, 0, 1, 2, 2, 2], predicted: [0, 1, 1, 2, 0, 9])
        XCTAssertEqual(m.counts, [[1, 1, 0], [0, 1, 0], [1, 0, 1]], "an out-of-range prediction is not counted")
        XCTAssertEqual(m.total, 5)
        XCTAssertEqual(m.accuracy(of: 0), 50)
        XCTAssertEqual(m.accuracy(of: 1), 100)
        let text = m.text()
        XCTAssertTrue(text.contains("\n  a           2        1   50.000%\n"), text)
        XCTAssertTrue(text.contains("\n  c         1     0     1\n"), text)
        let svg = m.svg(title: "t <&>")
        XCTAssertTrue(svg.contains("t &lt;&amp;&gt;"))
        XCTAssertEqual(svg.components(separatedBy: "<rect").count - 1, 1 + 9)
    }

    func testConsoleOutputParsesAsTheLogFile() throws {
        let file = """
        Current learning rate: 0.01
        Epoch: [0][0/2]\tLoss 2.0000 (2.0000)\tAccuracy 12.500 (12.500)
        Test: [0/1]\tLoss 1.5000 (1.5000)\tAccuracy 25.000 (25.000)
         * Accuracy 25.000
        Current best accuracy: 25.0
        0.5

        """
        let console = """
        manet: training 16 images (2 steps per epoch) to epoch 1; writing to runs/train-1/
        Current learning rate:  0.01
        \r\u{1B}[2Kepoch 0 (1 of 1): reading the first batch ...\r\u{1B}[2KEpoch: [0][0/2]\tLoss 2.0000 (2.0000)\tAccuracy 12.500 (12.500)
        Test: [0/1]\tLoss 1.5000 (1.5000)\tAccuracy 25.000 (25.000)
         **** Accuracy 25.000 *** 
        Current best accuracy:  25.0
        An Epoch Time:  0.5
        manet: done: best accuracy 25.000% at epoch 0 (epochs 0-0), wall time 0:01

        """
        let a = try LogParser.parse(file, source: "x")
        let b = try LogParser.parse(console, source: "x")
        XCTAssertEqual(a, b)
        XCTAssertEqual(b.epochs.first?.testAccuracy, 25)
        XCTAssertEqual(b.epochs.first?.seconds, 0.5)
        XCTAssertEqual(b.warnings, [])
    }

    func testKeyMismatchIsSummarisedCauseFirst() {
        let misshaped = [ShapeMismatch(key: "conv1.weight", found: [8, 3, 7, 7], expected: [16, 3, 7, 7])]
            + (0..<9).map { ShapeMismatch(key: "k\($0)", found: [8], expected: [16]) }
        let error = ImportError.keyMismatch(file: "m.onnx", missing: ["a", "b"], unexpected: [], misshaped: misshaped)
        let lines = error.description.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [
            "m.onnx: the tensors do not match MA-Net:",
            "  the file has width 8 (conv1.weight [8, 3, 7, 7]), width 16 was asked for (conv1.weight [16, 3, 7, 7])",
            "  2 missing key(s): a, b",
            "  10 key(s) with the wrong shape: conv1.weight: [8, 3, 7, 7] in the file, MA-Net needs [16, 3, 7, 7]; "
                + "k0: [8] in the file, MA-Net needs [16]; k1: [8] in the file, MA-Net needs [16]; ... and 7 more",
        ])
        XCTAssertTrue(error.isSummarised)
        XCTAssertTrue(error.fullDescription.contains("k8: [8] in the file"))
        XCTAssertFalse(ImportError.keyMismatch(file: "m", missing: ["a"], unexpected: [], misshaped: []).isSummarised)
    }
}
