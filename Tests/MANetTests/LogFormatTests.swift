// The trainer's log lines against the authors' six published logs, byte for byte.

import Foundation
import XCTest
import Runtime
@testable import MANet

final class LogFormatTests: XCTestCase {
    /// Read in place from ../shared/reference-logs (never copied into the repository).
    func referenceLines(_ name: String) throws -> [String] {
        let path = LogParserTests.referenceLogs + "/" + name
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "reference log \(path) not present")
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    static let logs = ["RAF-DB.txt", "AffectNet7.txt", "AffectNet8.txt", "CAER-S.txt", "FED-RO.txt", "SFEW.txt"]

    /// "Epoch: [e][ i/N]\tLoss a (b)\tAccuracy c (d)" rebuilt from its numbers.
    func testProgressLinesMatchEveryReferenceLine() throws {
        var checked = 0
        for log in Self.logs {
            for line in try referenceLines(log) where line.hasPrefix("Epoch: [") || line.hasPrefix("Test: [") {
                let head = line[..<line.firstIndex(of: "\t")!]  // "Epoch: [0][ 0/96]" or "Test: [ 0/24]"
                let bracket = head.hasPrefix("Test") ? "Test: " : String(head[...head.firstIndex(of: "]")!])
                let counter = head.dropFirst(bracket.count).dropFirst().dropLast()  // " 0/96"
                let parts = counter.split(separator: "/")
                let batch = Int(parts[0].trimmingCharacters(in: .whitespaces))!, batches = Int(parts[1])!
                let numbers = line.split(whereSeparator: { " \t()".contains($0) }).compactMap { Double($0) }
                XCTAssertEqual(numbers.count, 4, line)
                let rebuilt = LogLine.progress(prefix: bracket, batch: batch, batches: batches,
                                               loss: (numbers[0], numbers[1]), accuracy: (numbers[2], numbers[3]))
                XCTAssertEqual(rebuilt, line)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20000)
    }

    /// The learning-rate lines come from StepLR in Python floats; each log's schedule is its
    /// recipe (initial rate, step, gamma), and every digit must agree.
    func testLearningRateLinesFollowStepLRInDoubles() throws {
        let recipes: [String: (Double, Int, Double)] = [
            "RAF-DB.txt": (0.01, 15, 0.1), "AffectNet7.txt": (0.01, 5, 0.1), "AffectNet8.txt": (0.01, 5, 0.1),
            "FED-RO.txt": (0.01, 5, 0.1), "CAER-S.txt": (0.1, 50, 0.5), "SFEW.txt": (0.001, 10, 0.1),
        ]
        for (log, recipe) in recipes {
            let lines = try referenceLines(log).filter { $0.hasPrefix("Current learning rate") }
            let schedule = StepLR(initialLearningRate: recipe.0, stepSize: recipe.1, gamma: recipe.2)
            XCTAssertGreaterThan(lines.count, 10, log)
            for (epoch, line) in lines.enumerated() {
                XCTAssertEqual(LogLine.learningRate(schedule.learningRate(epoch: epoch)).file, line, "\(log) epoch \(epoch)")
            }
        }
    }

    /// "Current best accuracy: X" is str() of a float32 average; " * Accuracy" its 3-decimal
    /// form in the epoch that set it; the epoch time is str() of a Python float.
    func testEpochSummaryLines() throws {
        for log in Self.logs {
            let lines = try referenceLines(log)
            var previousBest: Double?
            for (i, line) in lines.enumerated() where line.hasPrefix("Current best accuracy: ") {
                let text = String(line.dropFirst("Current best accuracy: ".count))
                let value = try XCTUnwrap(Double(text), line)
                XCTAssertEqual(Double(Float(value)), value, "\(log): best accuracy is a float32 value")
                XCTAssertEqual(LogLine.bestAccuracy(Float(value)).file, line)
                if value != previousBest {
                    XCTAssertEqual(LogLine.testAccuracy(Float(value)).file, lines[i - 1], "\(log) line \(i)")
                }
                previousBest = value
                let seconds = lines[i + 1]
                XCTAssertEqual(LogLine.epochTime(Double(seconds)!).file, seconds)
            }
        }
    }

    func testPythonStrOfFloats() {
        let cases: [(Double, String)] = [
            (0.01, "0.01"), (0.0001, "0.0001"), (0.00001, "1e-05"), (1.0000000000000003e-05, "1.0000000000000003e-05"),
            (0.00010000000000000002, "0.00010000000000000002"), (2, "2.0"), (40.106828927993774, "40.106828927993774"),
            (1e16, "1e+16"), (1e15, "1000000000000000.0"), (1.2345678901234568e17, "1.2345678901234568e+17"),
            (-0.5, "-0.5"), (0, "0.0"), (1.5e-300, "1.5e-300"), (.nan, "nan"), (.infinity, "inf"),
        ]
        for (value, expected) in cases { XCTAssertEqual(PythonFormat.str(value), expected) }
        // Python evaluates lr * gamma ** k with C pow: the digits the logs show.
        var lr = 0.01
        lr *= pow([0.1][0], 2)
        XCTAssertEqual(PythonFormat.str(lr), "0.00010000000000000002")
    }

    func testStdoutVariantsKeepTheAuthorsSpacing() {
        XCTAssertEqual(LogLine.learningRate(0.01).stdout, "Current learning rate:  0.01")
        XCTAssertEqual(LogLine.testAccuracy(71.87092590332031).stdout, " **** Accuracy 71.871 *** ")
        XCTAssertEqual(LogLine.testAccuracy(71.87092590332031).file, " * Accuracy 71.871")
        XCTAssertEqual(LogLine.bestAccuracy(77.7053451538086).stdout, "Current best accuracy:  77.7053451538086")
        XCTAssertEqual(LogLine.epochTime(8.5).stdout, "An Epoch Time:  8.5")
    }

    func testMetersKeepTheAuthorsArithmetic() {
        var accuracy = AccuracyMeter()
        accuracy.update(correct: 13, batchSize: 128)
        accuracy.update(correct: 70, batchSize: 128)
        XCTAssertEqual(accuracy.value, Float(70) * Float(100.0 / 128))
        XCTAssertEqual(accuracy.average, (Float(13) * Float(100.0 / 128) * 128 + Float(70) * Float(100.0 / 128) * 128) / 256)
        var loss = AverageMeter()
        loss.update(2.0, count: 128)
        loss.update(1.0, count: 64)
        XCTAssertEqual(loss.average, (256.0 + 64.0) / 192.0)
        let line = LogLine.progress(prefix: LogLine.trainPrefix(epoch: 0), batch: 3, batches: 96, loss: loss, accuracy: accuracy)
        XCTAssertEqual(line, "Epoch: [0][ 3/96]\tLoss 1.0000 (1.6667)\tAccuracy 54.688 (32.422)")
        var small = AccuracyMeter()
        small.update(correct: 3, batchSize: 32)
        XCTAssertTrue(LogLine.progress(prefix: "Test: ", batch: 0, batches: 4, loss: loss, accuracy: small)
            .hasSuffix("Accuracy  9.375 ( 9.375)"), "':6.3f' pads to six characters")
    }

    func testLossAndGradientOfCrossEntropy() {
        // Logits [[1, 2, 3], [0, 0, 0]], labels [2, 1].
        let logits = Tensor(shape: [2, 3], floats: [1, 2, 3, 0, 0, 0])
        let (loss, gradient) = softmaxCrossEntropy(logits: logits, labels: [2, 1])
        let lse = log(exp(1.0) + exp(2.0) + exp(3.0))
        XCTAssertEqual(loss, ((lse - 3) + log(3.0)) / 2, accuracy: 1e-12)
        let p0 = [exp(1 - lse), exp(2 - lse), exp(3 - lse)]
        let expected = [p0[0] / 2, p0[1] / 2, (p0[2] - 1) / 2, 1.0 / 6, (1.0 / 3 - 1) / 2, 1.0 / 6]
        for (g, e) in zip(gradient.floats, expected) { XCTAssertEqual(Double(g), e, accuracy: 1e-7) }
        // The two-head objective weights each head's gradient; the fused logits decide top-1.
        let global = Tensor(shape: [2, 3], floats: [5, 0, 0, 0, 0, 9])
        let r = MANetLoss(beta: 0.6).evaluate(logitsLocal: logits, logitsGlobal: global, labels: [2, 1])
        XCTAssertEqual(r.loss, 0.6 * loss + 0.4 * softmaxCrossEntropy(logits: global, labels: [2, 1]).loss, accuracy: 1e-12)
        XCTAssertEqual(r.gradientLocal.floats, gradient.floats.map { $0 * 0.6 })
        // fused row 0: [2.6, 1.2, 1.8] -> class 0 (wrong); row 1: [0, 0, 3.6] -> class 2 (wrong).
        XCTAssertEqual(r.correct, 0)
        XCTAssertEqual(MANetLoss.countCorrect([1, 1, 0], classes: 3, labels: [0]), 1, "ties go to the lowest index")
    }

    func testSGDMatchesPyTorchsUpdateRule() {
        var sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        var p: [Float] = [1, -2]
        sgd.step("w", parameter: &p, gradient: [0.5, 0.5])
        // g = 0.5 + 0.01 p; buf = g; p -= 0.1 buf.
        let g1: [Float] = [0.5 + 0.01 * 1, 0.5 + 0.01 * -2]
        XCTAssertEqual(p, [1 - 0.1 * g1[0], -2 - 0.1 * g1[1]])
        XCTAssertEqual(sgd.momentumBuffers["w"], g1)
        let p1 = p
        sgd.step("w", parameter: &p, gradient: [0, 1])
        let g2: [Float] = [0 + Float(0.01) * p1[0], 1 + Float(0.01) * p1[1]]
        let buf: [Float] = [g1[0] * 0.9 + g2[0], g1[1] * 0.9 + g2[1]]
        XCTAssertEqual(p, [p1[0] + Float(-0.1) * buf[0], p1[1] + Float(-0.1) * buf[1]])
    }

    /// A large parameter's update is split over threads: the same bits as one thread, steps 1 and 2.
    func testSGDSameBitsOnAnyThreadCount() {
        let n = (1 << 16) * 3 + 5
        let p0: [Float] = (0..<n).map { i in Float((i * 7919) % 1000) / 500 - 1 }
        let first: [Float] = (0..<n).map { i in Float((i * 104729) % 997) / 997 - 0.5 }
        let second: [Float] = (0..<n).map { i in Float((i * 31) % 101) / 101 - 0.5 }
        let grads = [first, second]
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            var sgd = SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4)
            var p = p0
            for g in grads { sgd.step("w", parameter: &p, gradient: g, threads: threads) }
            results.append(p + sgd.momentumBuffers["w"]!)
        }
        for r in results.dropFirst() { XCTAssertTrue(r.elementsEqual(results[0]) { $0.bitPattern == $1.bitPattern }) }
        // Element 1000 by PyTorch's rule, in float32.
        let i = 1000, wd: Float = 1e-4
        let d1 = grads[0][i] + wd * p0[i]
        let q1 = p0[i] + Float(-0.01) * d1
        let d2 = grads[1][i] + wd * q1
        let b2 = d1 * 0.9 + d2
        XCTAssertEqual(results[0][i], q1 + Float(-0.01) * b2)
        XCTAssertEqual(results[0][n + i], b2)
    }

    func testStepLRBoundaries() {
        let s = StepLR(initialLearningRate: 0.01, stepSize: 15, gamma: 0.1)
        XCTAssertEqual((0..<15).map(s.learningRate(epoch:)), [Double](repeating: 0.01, count: 15))
        XCTAssertEqual(s.learningRate(epoch: 15), 0.01 * 0.1)
        XCTAssertEqual(s.learningRate(epoch: 29), 0.01 * 0.1)
        XCTAssertEqual(PythonFormat.str(s.learningRate(epoch: 30)), "0.00010000000000000002")
        XCTAssertEqual(PythonFormat.str(s.learningRate(epoch: 45)), "1.0000000000000003e-05")
    }
}
