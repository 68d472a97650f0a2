// What a training or evaluation run is doing, as events for whoever shows them, and a one-line
// renderer for terminals. The library only reports; the command line decides where lines go.

import Foundation

/// One thing the trainer did or is about to do (see `Trainer.onProgress`).
public enum TrainingProgress: Equatable, Sendable {
    /// A long step is starting (building the model, reading the first batch, writing a checkpoint).
    case status(String)
    /// A training step finished: `epoch` counts from 0 as the authors' log does, `step` from 1.
    case training(epoch: Int, epochs: Int, step: Int, steps: Int, images: Int, loss: Double, accuracy: Double)
    /// An evaluation batch finished (`epoch` nil outside training).
    case evaluating(epoch: Int?, epochs: Int, step: Int, steps: Int, images: Int, loss: Double, accuracy: Double)
}

/// Renders `TrainingProgress` as one live line: phase, epoch, step, images/s, elapsed and ETA of
/// the phase, loss and accuracy so far. `render` is pure apart from its own rate bookkeeping and
/// takes the time as an argument, so it is testable without a terminal or a clock.
public final class ProgressLine {
    private var phaseKey = ""
    private var phaseStart = 0.0
    private var phaseFirstStep = 0
    private var phaseImages = 0
    private var visible = false
    private let write: (String) -> Void
    private let now: () -> Double
    /// Terminal columns the line is cut to (0: no limit).
    public var columns: Int

    /// `write` receives the bytes for the terminal (carriage returns and erase codes included).
    public init(columns: Int = 0, now: @escaping () -> Double = { Date().timeIntervalSinceReferenceDate },
                write: @escaping (String) -> Void) {
        self.columns = columns
        self.now = now
        self.write = write
    }

    /// The text of the line for `event` at time `time` (seconds), without control codes.
    public func render(_ event: TrainingProgress, at time: Double) -> String {
        switch event {
        case .status(let text):
            phaseKey = ""
            return text + " ..."
        case let .training(epoch, epochs, step, steps, images, loss, accuracy):
            let rate = account(key: "train \(epoch)", step: step, images: images, time: time)
            return "epoch \(epoch) (\(epoch + 1) of \(epochs)) train " + Self.counters(step: step, steps: steps, rate: rate, time: time, start: phaseStart,
                                                                                     first: phaseFirstStep)
                + "  loss \(String(format: "%.4f", loss))  acc \(String(format: "%.2f", accuracy))%"
        case let .evaluating(epoch, epochs, step, steps, images, loss, accuracy):
            let rate = account(key: "test \(epoch ?? -1)", step: step, images: images, time: time)
            let head = epoch.map { "epoch \($0) (\($0 + 1) of \(epochs)) test " } ?? "test "
            return head + Self.counters(step: step, steps: steps, rate: rate, time: time, start: phaseStart, first: phaseFirstStep)
                + "  loss \(String(format: "%.4f", loss))  acc \(String(format: "%.2f", accuracy))%"
        }
    }

    /// Draws `event` over the previous line.
    public func show(_ event: TrainingProgress) {
        var text = render(event, at: now())
        if columns > 1 && text.count >= columns { text = String(text.prefix(columns - 1)) }
        write("\r\u{1B}[2K" + text)
        visible = true
    }

    /// Erases the line (before a log line is printed, and at the end).
    public func clear() {
        guard visible else { return }
        write("\r\u{1B}[2K")
        visible = false
    }

    /// Images per second in the current phase; a new phase (or a step count going back) restarts it.
    private func account(key: String, step: Int, images: Int, time: Double) -> Double {
        if key != phaseKey {
            phaseKey = key
            // The first step's time includes reading the first batch: the rate counts from the
            // end of that step, the elapsed time from the phase's start.
            phaseStart = time
            phaseFirstStep = step
            phaseImages = 0
            firstStepEnd = time
            return 0
        }
        phaseImages += images
        let seconds = time - firstStepEnd
        return seconds > 0 ? Double(phaseImages) / seconds : 0
    }
    private var firstStepEnd = 0.0

    static func counters(step: Int, steps: Int, rate: Double, time: Double, start: Double, first: Int) -> String {
        let width = String(steps).count
        var text = "step \(String(repeating: " ", count: max(0, width - String(step).count)))\(step)/\(steps)"
        text += rate > 0 ? String(format: "  %.1f img/s", rate) : "  -- img/s"
        let elapsed = time - start
        text += "  elapsed " + duration(elapsed)
        let done = step - first
        if done > 0 && elapsed > 0 {
            text += "  ETA " + duration(elapsed / Double(done) * Double(steps - step))
        } else {
            text += "  ETA --"
        }
        return text
    }

    /// `m:ss`, or `h:mm:ss` from an hour on.
    public static func duration(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    public static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
}
