// Ctrl-C for a training run: the first SIGINT asks the trainer to stop after its current step
// (with a checkpoint) and says so at once; a second one exits at once, leaving the previous
// checkpoint as it was. Nothing is installed unless the program asks (`installHandler`): a
// library does not take its user's signals.

import Foundation
import Synchronization

public enum TrainingInterruption {
    private static let count = Atomic<Int>(0)

    /// True once SIGINT arrived (pass `{ TrainingInterruption.isRequested }` to `Trainer.stopRequested`).
    public static var isRequested: Bool { count.load(ordering: .relaxed) > 0 }

    /// Installs the SIGINT handler. The handler only counts and writes fixed messages to stderr:
    /// on the first signal that the run stops after the current step, on the second that it exits,
    /// then calls `_exit(130)` (all async-signal-safe). The first message comes at once, while
    /// the step (which can take a minute at full width) is still running.
    public static func installHandler() {
        signal(SIGINT) { _ in
            let (_, now) = TrainingInterruption.count.add(1, ordering: .relaxed)
            if now == 1 {
                let message: StaticString = "\nmanet: stopping after this step, Ctrl-C again to quit now\n"
                _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
            }
            if now > 1 {
                let message: StaticString = "\nmanet: second interrupt, exiting now; the previous checkpoint is kept\n"
                _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
                _exit(130)
            }
        }
    }
}
