// What can stop a training or evaluation run, each with a message a user can act on.

public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case unwritablePath(String, String)
    case nonFiniteLoss(epoch: Int, step: Int, globalStep: Int, value: Double)
    case checkpointMismatch(String)
    case invalidCheckpoint(String)
    case missingParameter(String)
    case invalidOption(String)
    case notYetSupported(String)
    /// Stopped on request (SIGINT) after `stepsDone` of `batches` training steps of `epoch`;
    /// `checkpoint` is where the state was saved (nil without a checkpoint folder).
    case interrupted(epoch: Int, stepsDone: Int, batches: Int, checkpoint: String?)

    public var description: String {
        switch self {
        case let .unwritablePath(path, reason): return "\(path): \(reason)"
        case let .nonFiniteLoss(epoch, step, globalStep, value):
            return "the loss became \(value) at epoch \(epoch), step \(step) (step \(globalStep) of the run); "
                + "training stopped and no checkpoint was written from this state"
        case .checkpointMismatch(let s): return "checkpoint does not match this run: \(s)"
        case .invalidCheckpoint(let s): return "invalid checkpoint: \(s)"
        case .missingParameter(let s): return "missing parameter '\(s)'"
        case .invalidOption(let s): return s
        case .notYetSupported(let s): return s
        case let .interrupted(epoch, stepsDone, batches, checkpoint):
            let position = stepsDone >= batches
                ? "after the training steps of epoch \(epoch) (its evaluation is redone on resume)"
                : "in epoch \(epoch) after step \(stepsDone) of \(batches)"
            return "interrupted \(position); " + (checkpoint.map { "checkpoint written to \($0)" } ?? "no checkpoint folder, nothing saved")
        }
    }
}
