// The authors' AverageMeter / ProgressMeter and their log lines, printed to stdout and appended to the log file.

import Foundation

/// Running value and average of the authors' loss meter: Python floats, so Double.
public struct AverageMeter: Equatable, Sendable {
    public private(set) var value = 0.0
    public private(set) var sum = 0.0
    public private(set) var count = 0
    public var average: Double { count == 0 ? 0 : sum / Double(count) }

    public init() {}

    /// A meter part-way through an epoch (restored from a checkpoint).
    public init(value: Double, sum: Double, count: Int) {
        self.value = value
        self.sum = sum
        self.count = count
    }

    public mutating func update(_ value: Double, count n: Int) {
        self.value = value
        sum += value * Double(n)
        count += n
    }
}

/// The authors' accuracy meter. Their `accuracy()` returns a float32 tensor (correct * (100 /
/// batch)) and the meter sums `val * n` as a float32 tensor, so the average, and the "Current
/// best accuracy" printed from it, are float32 values; this keeps that arithmetic.
public struct AccuracyMeter: Equatable, Sendable {
    public private(set) var value: Float = 0
    public private(set) var sum: Float = 0
    public private(set) var count = 0
    public var average: Float { count == 0 ? 0 : sum / Float(count) }

    public init() {}

    /// A meter part-way through an epoch (restored from a checkpoint).
    public init(value: Float, sum: Float, count: Int) {
        self.value = value
        self.sum = sum
        self.count = count
    }

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

/// Where log lines go: stdout, and appended to the log file (opened once, each line written
/// with one `write(2)` so that a crash loses nothing already printed). A failed write (a full
/// disk, a file-size limit) is an error naming the log, never a silently shortened log.
public final class LogWriter {
    private let descriptor: Int32
    public let path: String?
    /// Erases the progress bar before a line is printed (set when stdout is a terminal).
    public var clearLine: (() -> Void)?

    /// Opens (creating if needed) `path` for appending; throws a message naming the path.
    /// A directory or anything but a regular file (or a character device such as /dev/null)
    /// is refused.
    public init(path: String?) throws {
        self.path = path
        guard let path else { descriptor = -1; return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.unwritablePath(path, "cannot open the log file for appending: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard fstat(fd, &status) == 0,
              (status.st_mode & S_IFMT) == S_IFREG || (status.st_mode & S_IFMT) == S_IFCHR else {
            close(fd)
            throw TrainingError.unwritablePath(path, "the log path is not a regular file")
        }
        descriptor = fd
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Bytes in the log file now (0 without a file).
    public func length() throws -> UInt64 {
        guard descriptor >= 0, let path else { return 0 }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw TrainingError.unwritablePath(path, "cannot read the log file's size: \(String(cString: strerror(errno)))")
        }
        return UInt64(status.st_size)
    }

    /// Cuts the log back to `length` bytes (a resumed run drops the lines of the work it redoes).
    /// Returns false, leaving the file alone, when it is shorter than that (another log).
    @discardableResult
    public func truncate(to length: UInt64) throws -> Bool {
        guard descriptor >= 0, let path, length > 0 else { return false }
        guard try self.length() >= length else { return false }
        guard ftruncate(descriptor, off_t(length)) == 0 else {
            throw TrainingError.unwritablePath(path, "cannot truncate the log file to \(length) bytes: \(String(cString: strerror(errno)))")
        }
        return true
    }

    /// Prints `stdout` and appends `file` (plus a newline) to the log.
    public func write(stdout: String, file: String) throws {
        clearLine?()
        print(stdout)
        fflush(Glibc.stdout)
        guard descriptor >= 0, let path else { return }
        let bytes = Array((file + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TrainingError.unwritablePath(path, "cannot append to the log file: \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }

    public func write(_ pair: (stdout: String, file: String)) throws { try write(stdout: pair.stdout, file: pair.file) }
    public func write(_ line: String) throws { try write(stdout: line, file: line) }
}
