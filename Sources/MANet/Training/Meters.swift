// The authors' AverageMeter / ProgressMeter and their log lines, printed to stdout and appended to the log file.

import Foundation

/// Running value and average of the authors' loss meter: Python floats, so Double.
public struct AverageMeter {
    public private(set) var value = 0.0
    public private(set) var sum = 0.0
    public private(set) var count = 0
    public var average: Double { count == 0 ? 0 : sum / Double(count) }

    public init() {}

    public mutating func update(_ value: Double, count n: Int) {
        self.value = value
        sum += value * Double(n)
        count += n
    }
}

/// The authors' accuracy meter. Their `accuracy()` returns a float32 tensor (correct * (100 /
/// batch)) and the meter sums `val * n` as a float32 tensor, so the average, and the "Current
/// best accuracy" printed from it, are float32 values; this keeps that arithmetic.
public struct AccuracyMeter {
    public private(set) var value: Float = 0
    public private(set) var sum: Float = 0
    public private(set) var count = 0
    public var average: Float { count == 0 ? 0 : sum / Float(count) }

    public init() {}

    /// The batch accuracy in percent as `accuracy()` computes it.
    public static func batchAccuracy(correct: Int, batchSize: Int) -> Float {
        Float(correct) * Float(100.0 / Double(batchSize))
    }

    public mutating func update(correct: Int, batchSize: Int) {
        value = Self.batchAccuracy(correct: correct, batchSize: batchSize)
        sum += value * Float(batchSize)
        count += batchSize
    }
}

/// The lines of the authors' `main.py`. `stdout` and `file` differ where their script printed
/// with a comma (two spaces) but wrote with `+`.
public enum LogLine {
    /// `Epoch: [e][ i/N]` / `Test: [ i/N]` with the index padded to the width of N, then
    /// `Loss x.xxxx (x.xxxx)` and `Accuracy yy.yyy (yy.yyy)` separated by tabs.
    public static func progress(prefix: String, batch: Int, batches: Int, loss: AverageMeter,
                                accuracy: AccuracyMeter) -> String {
        progress(prefix: prefix, batch: batch, batches: batches, loss: (loss.value, loss.average),
                 accuracy: (Double(accuracy.value), Double(accuracy.average)))
    }

    /// The same line from plain numbers (value, running average).
    public static func progress(prefix: String, batch: Int, batches: Int, loss: (Double, Double),
                                accuracy: (Double, Double)) -> String {
        let width = String(batches).count
        let index = String(batch)
        let padded = String(repeating: " ", count: max(0, width - index.count)) + index
        return prefix + "[\(padded)/\(batches)]"
            + "\tLoss \(PythonFormat.fixed(loss.0, decimals: 4)) (\(PythonFormat.fixed(loss.1, decimals: 4)))"
            + "\tAccuracy \(PythonFormat.fixed(accuracy.0, decimals: 3, width: 6))"
            + " (\(PythonFormat.fixed(accuracy.1, decimals: 3, width: 6)))"
    }

    public static func trainPrefix(epoch: Int) -> String { "Epoch: [\(epoch)]" }
    public static let testPrefix = "Test: "

    public static func learningRate(_ lr: Double) -> (stdout: String, file: String) {
        ("Current learning rate:  " + PythonFormat.str(lr), "Current learning rate: " + PythonFormat.str(lr))
    }

    public static func testAccuracy(_ average: Float) -> (stdout: String, file: String) {
        let text = PythonFormat.fixed(Double(average), decimals: 3)
        return (" **** Accuracy \(text) *** ", " * Accuracy \(text)")
    }

    public static func bestAccuracy(_ best: Float) -> (stdout: String, file: String) {
        let text = PythonFormat.str(Double(best))
        return ("Current best accuracy:  " + text, "Current best accuracy: " + text)
    }

    public static func epochTime(_ seconds: Double) -> (stdout: String, file: String) {
        ("An Epoch Time:  " + PythonFormat.str(seconds), PythonFormat.str(seconds))
    }
}

/// Where log lines go: stdout, and appended to the log file (opened once, flushed per line so
/// that a crash loses nothing already printed).
public final class LogWriter {
    private let handle: FileHandle?
    public let path: String?
    /// Erases the progress bar before a line is printed (set when stdout is a terminal).
    public var clearLine: (() -> Void)?

    /// Opens (creating if needed) `path` for appending; throws a message naming the path.
    public init(path: String?) throws {
        self.path = path
        guard let path else { handle = nil; return }
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil) else {
                throw TrainingError.unwritablePath(path, "cannot create the log file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.unwritablePath(path, "cannot open the log file for writing")
        }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle?.close() }

    /// Prints `stdout` and appends `file` (plus a newline) to the log.
    public func write(stdout: String, file: String) {
        clearLine?()
        print(stdout)
        fflush(Glibc.stdout)
        handle?.write(Data((file + "\n").utf8))
    }

    public func write(_ pair: (stdout: String, file: String)) { write(stdout: pair.stdout, file: pair.file) }
    public func write(_ line: String) { write(stdout: line, file: line) }
}
