// Exit codes shared by `run`, `verify` and `logs`: 0 pass, 1 mismatch, 2 error (message on stderr).

import ArgumentParser
import Foundation

/// Writes `message` to standard error and returns the exit code to throw, so a user's bad file
/// ends the command with a one-line reason and code 2 (or 1 for a parity mismatch), never a trap.
func interopExit(_ code: Int32, _ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    return ExitCode(code)
}
