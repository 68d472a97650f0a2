// Where `manet train` (and `evaluate`) show what they are doing: a live line on a terminal, drawn
// by MANet's `ProgressLine`; with --plain or when stdout is not a terminal, the long steps go to
// stderr as lines and stdout keeps the log lines only.

import Foundation
import MANet

final class TrainingDisplay {
    let live: Bool
    private let line: ProgressLine?
    private var lastPlainStatus = ""

    init(live: Bool) {
        self.live = live
        if live {
            var size = winsize()
            let columns = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 ? Int(size.ws_col) : 0
            line = ProgressLine(columns: columns) { text in
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        } else {
            line = nil
        }
    }

    /// A progress event from the trainer.
    func show(_ event: TrainingProgress) {
        if let line {
            line.show(event)
        } else if case .status(let text) = event {
            status(text)
        }
    }

    /// A long step starting: the live line on a terminal, else a line on stderr.
    func status(_ text: String) {
        if let line {
            line.show(.status(text))
        } else if text != lastPlainStatus {
            lastPlainStatus = text
            FileHandle.standardError.write(Data("manet: \(text) ...\n".utf8))
        }
    }

    /// A line for the user on stdout (erasing the live line first).
    func note(_ text: String) {
        clear()
        print(text)
        fflush(stdout)
    }

    func clear() {
        line?.clear()
    }
}
