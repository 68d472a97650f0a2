// Parses the authors' training-log format (and ours, which writes the same lines) into epochs.
//
// The format, as the authors' `main.py` writes it, one block per epoch:
//
//     Current learning rate: 0.01
//     Epoch: [0][ 0/96]	Loss 2.7088 (2.7088)	Accuracy 10.156 (10.156)     every print_freq batches
//     Test: [ 0/24]	Loss 0.5033 (0.5033)	Accuracy 86.719 (86.719)        every print_freq batches
//      * Accuracy 71.871                                                    test accuracy (avg)
//     Current best accuracy: 71.87092590332031
//     40.106828927993774                                                   seconds for the epoch
//
// Each progress line prints meters as `Name value (running average)`. The authors never print
// the final train/test averages, so the last running average printed stands in for them; a
// ` * ` summary line carrying `Loss`/`Accuracy` (which our trainer may add) overrides it.
// Quirks handled, all seen in the six published logs: batch counters padded to varying widths,
// meters padded with extra spaces (`Accuracy  0.000 ( 0.000)`), learning rates in exponent
// form (`1.0000000000000004e-08`), epochs with one train line and one test line (SFEW),
// 20 to 400 epochs, and a best accuracy that disagrees with the rounded ` * Accuracy` in the
// last digit (`49.999996185302734` vs `50.000`). Also tolerated: blank lines, CRLF line ends,
// trailing whitespace, a truncated last epoch, and unknown lines (kept as warnings).

import Foundation

/// One epoch of a training log.
public struct EpochSummary: Codable, Equatable, Sendable {
    /// The epoch number as printed (`Epoch: [N]`); counted from 0 by the authors.
    public var epoch: Int
    public var learningRate: Double?
    /// Train loss: the final average when the log prints one, else the last running average.
    public var trainLoss: Double?
    /// Train top-1 accuracy in percent, same rule as `trainLoss`.
    public var trainAccuracy: Double?
    /// Batches per train epoch, from the `[i/N]` counter.
    public var trainBatches: Int?
    /// Test loss: the final average if printed, else the last running average printed.
    public var testLoss: Double?
    /// Test accuracy in percent (` * Accuracy`), the average over the whole test set.
    public var testAccuracy: Double?
    /// `Current best accuracy` after this epoch.
    public var bestAccuracy: Double?
    /// Wall-clock seconds of the epoch (the bare number that closes the block).
    public var seconds: Double?

    public init(epoch: Int) { self.epoch = epoch }

    /// True when every line an epoch block should have was seen.
    public var isComplete: Bool {
        learningRate != nil && trainLoss != nil && trainAccuracy != nil && testAccuracy != nil
            && bestAccuracy != nil && seconds != nil
    }
}

/// A parsed training log.
public struct TrainingLog: Codable, Equatable, Sendable {
    /// Where the log came from (a path, or a name given by the caller).
    public var source: String
    public var epochs: [EpochSummary]
    /// Lines that were skipped or repaired, with their line numbers.
    public var warnings: [String]

    public init(source: String, epochs: [EpochSummary], warnings: [String] = []) {
        self.source = source
        self.epochs = epochs
        self.warnings = warnings
    }

    /// The best test accuracy the run reported (its last `Current best accuracy`), falling back
    /// to the maximum test accuracy when no best line was printed.
    public var bestAccuracy: Double? {
        if let reported = epochs.last(where: { $0.bestAccuracy != nil })?.bestAccuracy { return reported }
        return epochs.compactMap(\.testAccuracy).max()
    }

    /// The epoch where the best test accuracy was first reached.
    public var bestEpoch: Int? {
        guard let best = epochs.compactMap(\.testAccuracy).max() else { return nil }
        return epochs.first { $0.testAccuracy == best }?.epoch
    }

    /// The test accuracy of the last epoch that has one.
    public var finalAccuracy: Double? { epochs.last { $0.testAccuracy != nil }?.testAccuracy }

    /// Total seconds over all epochs that report their time.
    public var totalSeconds: Double { epochs.compactMap(\.seconds).reduce(0, +) }
}

/// Why a file is not a training log at all.
public struct LogParseError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var reason: String
    public var description: String { "\(source): \(reason)" }
}

/// Reads the authors' log format.
public enum LogParser {
    /// Parses the log at `path`.
    public static func parse(contentsOf path: String) throws -> TrainingLog {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LogParseError(source: path, reason: "cannot read the file")
        }
        // Logs are ASCII; decoding leniently keeps a stray byte from rejecting a whole run.
        return try parse(String(decoding: data, as: UTF8.self), source: path)
    }

    /// Parses log text; `source` names it in messages.
    public static func parse(_ text: String, source: String = "<log>") throws -> TrainingLog {
        var state = ParserState()
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            state.consume(String(rawLine), lineNumber: lineNumber)
        }
        state.closeEpoch()
        guard !state.epochs.isEmpty else {
            throw LogParseError(source: source, reason: "no epoch found (expected lines like 'Epoch: [0][ 0/96]\tLoss ...' or 'Current learning rate: ...')")
        }
        var warnings = state.warnings
        if let last = state.epochs.last, !last.isComplete {
            warnings.append("epoch \(last.epoch) is incomplete (the log ends inside it)")
        }
        return TrainingLog(source: source, epochs: state.epochs, warnings: warnings)
    }
}

/// `Name value (average)` pairs of a progress line, e.g. `Loss 0.5 (0.6)` -> Loss: (0.5, 0.6).
struct Meter: Equatable {
    var value: Double
    var average: Double?
}

/// Splits the meters part of a progress line. Parentheses and any whitespace separate tokens,
/// so padding (`Accuracy  0.000 ( 0.000)`) does not matter.
func parseMeters(_ text: Substring) -> [String: Meter]? {
    var tokens: [Substring] = []
    var current = text.startIndex
    var start: Substring.Index? = nil
    while current < text.endIndex {
        let c = text[current]
        if c == " " || c == "\t" || c == "(" || c == ")" {
            if let s = start { tokens.append(text[s..<current]); start = nil }
        } else if start == nil {
            start = current
        }
        current = text.index(after: current)
    }
    if let s = start { tokens.append(text[s..<text.endIndex]) }

    var meters: [String: Meter] = [:]
    var i = 0
    while i < tokens.count {
        let name = String(tokens[i])
        guard Double(name) == nil, i + 1 < tokens.count, let value = Double(tokens[i + 1]) else { return nil }
        if i + 2 < tokens.count, let average = Double(tokens[i + 2]) {
            meters[name] = Meter(value: value, average: average)
            i += 3
        } else {
            meters[name] = Meter(value: value, average: nil)
            i += 2
        }
    }
    return meters
}

private struct ParserState {
    var epochs: [EpochSummary] = []
    var warnings: [String] = []
    /// The epoch being read; `nil` between blocks.
    var open: EpochSummary?
    /// Learning rate seen before the epoch's first train line told its number.
    var pendingLearningRate: Double?
    /// Where in the block we are: decides what a ` * ` line summarises.
    var phase: Phase = .none
    /// A final average from a ` * ` line wins over running averages for the rest of the block.
    var finalTrain = false, finalTest = false

    enum Phase { case none, train, test, closing }

    mutating func closeEpoch() {
        guard var epoch = open else {
            if pendingLearningRate != nil { warnings.append("a learning rate line with no epoch after it was ignored") }
            return
        }
        if epoch.learningRate == nil { epoch.learningRate = pendingLearningRate }
        if let index = epochs.firstIndex(where: { $0.epoch == epoch.epoch }) {
            // A resumed run appends to the same log: the later record of an epoch is the one
            // that produced the checkpoint, so it replaces the earlier.
            warnings.append("epoch \(epoch.epoch) appears twice; the later block is kept")
            epochs.remove(at: index)
        }
        epochs.append(epoch)
        open = nil
        pendingLearningRate = nil
        phase = .none
        finalTrain = false
        finalTest = false
    }

    /// The epoch that test and summary lines belong to; one is opened (numbered after the last)
    /// when a log omits its train lines.
    mutating func current() -> EpochSummary {
        if let e = open { return e }
        let number = (epochs.last?.epoch ?? -1) + 1
        var e = EpochSummary(epoch: number)
        e.learningRate = pendingLearningRate
        pendingLearningRate = nil
        open = e
        return e
    }

    mutating func consume(_ raw: String, lineNumber: Int) {
        // The console output of a run (saved with `tee`, or a terminal's transcript) holds the
        // same lines in their printed form: ` **** Accuracy X *** `, `An Epoch Time:  S`, a live
        // progress line redrawn with carriage returns and erase codes before a log line, and the
        // command's own `manet: ` / `note: ` lines. Only what follows the last carriage return is
        // what the line finally showed.
        var text = Substring(raw)
        if let cr = text.lastIndex(of: "\r") { text = text[text.index(after: cr)...] }
        var line = text.replacingOccurrences(of: "\u{1B}[2K", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
        if line.isEmpty { return }
        for prefix in ["manet: ", "note: ", "warning: "] where line.hasPrefix(prefix) { return }
        if line.hasPrefix("An Epoch Time:") { line = line.dropFirst("An Epoch Time:".count).trimmingCharacters(in: .whitespaces) }
        if line.hasPrefix("**") { line = "* " + line.trimmingCharacters(in: CharacterSet(charactersIn: "* ")) }

        if line.hasPrefix("Current learning rate:") {
            guard let lr = Double(line.dropFirst("Current learning rate:".count).trimmingCharacters(in: .whitespaces)) else {
                warnings.append("line \(lineNumber): unreadable learning rate: \(line)")
                return
            }
            // A learning-rate line always opens a new block.
            if open != nil { closeEpoch() }
            pendingLearningRate = lr
            return
        }

        if line.hasPrefix("Epoch:") {
            guard let (epochNumber, counter, meters) = parseProgress(line.dropFirst("Epoch:".count), epochField: true) else {
                warnings.append("line \(lineNumber): unreadable train line: \(line)")
                return
            }
            let number = epochNumber!
            if let e = open, e.epoch != number || phase == .test || phase == .closing {
                closeEpoch()
            }
            var e = open ?? EpochSummary(epoch: number)
            if open == nil {
                e.learningRate = pendingLearningRate
                pendingLearningRate = nil
            }
            e.trainBatches = counter.total
            if !finalTrain {
                if let loss = meters["Loss"] { e.trainLoss = loss.average ?? loss.value }
                if let acc = meters["Accuracy"] { e.trainAccuracy = acc.average ?? acc.value }
            }
            open = e
            phase = .train
            return
        }

        if line.hasPrefix("Test:") {
            guard let (_, _, meters) = parseProgress(line.dropFirst("Test:".count), epochField: false) else {
                warnings.append("line \(lineNumber): unreadable test line: \(line)")
                return
            }
            if phase == .closing { closeEpoch() }
            var e = current()
            if !finalTest, let loss = meters["Loss"] { e.testLoss = loss.average ?? loss.value }
            open = e
            phase = .test
            return
        }

        if line.hasPrefix("*") {
            guard let meters = parseMeters(line.dropFirst()), !meters.isEmpty else {
                warnings.append("line \(lineNumber): unreadable summary line: \(line)")
                return
            }
            var e = current()
            // A summary right after train lines is the train epoch's final average (our
            // trainer's addition); otherwise it is the test set's (the authors' ` * Accuracy`).
            if phase == .train {
                if let loss = meters["Loss"] { e.trainLoss = loss.value; finalTrain = true }
                if let acc = meters["Accuracy"] { e.trainAccuracy = acc.value; finalTrain = true }
            } else {
                if let loss = meters["Loss"] { e.testLoss = loss.value; finalTest = true }
                if let acc = meters["Accuracy"] { e.testAccuracy = acc.value }
                phase = .test
            }
            open = e
            return
        }

        if line.hasPrefix("Current best accuracy:") {
            guard let best = Double(line.dropFirst("Current best accuracy:".count).trimmingCharacters(in: .whitespaces)) else {
                warnings.append("line \(lineNumber): unreadable best accuracy: \(line)")
                return
            }
            var e = current()
            e.bestAccuracy = best
            open = e
            phase = .closing
            return
        }

        if let seconds = Double(line), seconds.isFinite {
            // The bare number after the best-accuracy line is the epoch time and ends the block.
            if var e = open, phase == .closing, e.seconds == nil {
                e.seconds = seconds
                open = e
                closeEpoch()
            } else {
                warnings.append("line \(lineNumber): a number outside an epoch's closing lines was ignored: \(line)")
            }
            return
        }

        warnings.append("line \(lineNumber): unknown line ignored: \(line.prefix(80))")
    }

    /// Parses `[N][ i/T]  meters` (train, `epochField`) or `[ i/T]  meters` (test).
    func parseProgress(_ rest: Substring, epochField: Bool) -> (Int?, (index: Int, total: Int), [String: Meter])? {
        var s = rest.drop { $0 == " " }
        var epochNumber: Int? = nil
        if epochField {
            guard s.first == "[", let close = s.firstIndex(of: "]"),
                  let n = Int(s[s.index(after: s.startIndex)..<close].trimmingCharacters(in: .whitespaces)) else { return nil }
            epochNumber = n
            s = s[s.index(after: close)...]
        }
        guard s.first == "[", let close = s.firstIndex(of: "]") else { return nil }
        let counter = s[s.index(after: s.startIndex)..<close].split(separator: "/")
        guard counter.count == 2,
              let index = Int(counter[0].trimmingCharacters(in: .whitespaces)),
              let total = Int(counter[1].trimmingCharacters(in: .whitespaces)) else { return nil }
        guard let meters = parseMeters(s[s.index(after: close)...]) else { return nil }
        return (epochNumber, (index, total), meters)
    }
}
