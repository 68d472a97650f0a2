// A one-line progress bar (step, images/s, ETA) for interactive terminals only.

import Foundation

/// Redraws itself with a carriage return; `clear()` erases it before a log line is printed.
/// The trainer creates one only when stdout is a terminal, so logs piped to a file stay clean.
public final class ProgressBar {
    private var start = Date()
    private var images = 0
    private var lastStep = 0
    private var visible = false

    public init() {}

    public static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }

    public func update(step: Int, of total: Int, images count: Int, label: String) {
        if step <= lastStep { start = Date(); images = 0 }
        lastStep = step
        images += count
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(images) / elapsed
        let remaining = Double(total - step) * elapsed / Double(max(step, 1))
        let width = 30
        let filled = total > 0 ? width * step / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let eta = String(format: "%d:%02d", Int(remaining) / 60, Int(remaining) % 60)
        let text = "\r\(label) [\(bar)] \(step)/\(total)  \(String(format: "%.1f", rate)) img/s  ETA \(eta)"
        FileHandle.standardOutput.write(Data(text.utf8))
        visible = true
    }

    public func clear() {
        guard visible else { return }
        FileHandle.standardOutput.write(Data("\r\u{1B}[2K".utf8))
        visible = false
    }
}
