// Ctrl-C for a training run: the first SIGINT asks the trainer to stop after its current step
// (with a checkpoint); a second one exits at once, leaving the previous checkpoint as it was.

import Foundation
import Synchronization

public enum TrainingInterruption {
    private static let count = Atomic<Int>(0)

    /// True once SIGINT arrived (pass `{ TrainingInterruption.isRequested }` to `Trainer.stopRequested`).
    public static var isRequested: Bool { count.load(ordering: .relaxed) > 0 }

    /// Installs the SIGINT handler. The handler only counts, and on the second signal writes a
    /// fixed message and calls `_exit(130)` (both async-signal-safe).
    public static func installHandler() {
        signal(SIGINT) { _ in
            let (_, now) = TrainingInterruption.count.add(1, ordering: .relaxed)
            if now > 1 {
                let message: StaticString = "\nmanet: second interrupt, exiting now; the previous checkpoint is kept\n"
                _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
                _exit(130)
            }
        }
    }
}
