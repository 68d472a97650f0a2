// One error path for every command (docs/CLI.md): a command throws, `Manet.main` prints one line
// `manet: error: ...` (and `manet: hint: ...` when there is a next command to name) on stderr
// and exits with the documented code.

import ArgumentParser
import Foundation
import MANet

/// An error found while working: the message names the file or option and the reason; `hint`
/// names the command that helps; `code` is the exit status (2 unless said otherwise).
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var hint: String?
    var code: Int32

    init(_ message: String, hint: String? = nil, code: Int32 = 2) {
        self.message = message
        self.hint = hint
        self.code = code
    }

    var description: String { message }
}

/// The exit codes of docs/CLI.md.
enum ExitStatus {
    static let success: Int32 = 0
    static let mismatch: Int32 = 1
    static let error: Int32 = 2
    static let usage: Int32 = 64
    static let interrupted: Int32 = 130
}

extension CLIError {
    /// An import mismatch as one error: a few keys per list and a hint, or every key with `verbose`.
    init(_ error: ImportError, verbose: Bool) {
        self.init(verbose ? error.fullDescription : error.description,
                  hint: !verbose && error.isSummarised ? "--verbose lists every key" : nil)
    }
}

/// The error to throw for `message` with exit `code` (2 error, 1 mismatch). Kept for the commands
/// written before `CLIError`: `throw interopExit(2, "...")`.
func interopExit(_ code: Int32, _ message: String) -> CLIError {
    CLIError(message, code: code)
}

/// Writes `text` and a newline to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

extension Manet {
    /// Prints what `error` means for the user and returns the exit status. `command` is the
    /// subcommand that ran (for its usage line), nil for errors of parsing.
    static func report(_ error: Error, command: ParsableCommand.Type?) -> Int32 {
        switch error {
        case let e as CLIError:
            printError("manet: error: " + e.message)
            if let hint = e.hint { printError("manet: hint: " + hint) }
            return e.code
        case let e as ExitCode:
            // The command printed its own report (a mismatch, an interruption).
            return e.rawValue
        default:
            break
        }
        let type = command ?? Manet.self
        let code = type.exitCode(for: error)
        if code == .success {
            // --help, --version, completion scripts: ArgumentParser's text, on stdout.
            print(type.fullMessage(for: error))
            return 0
        }
        if code == .validationFailure {
            // A usage error (unknown option, missing argument, value out of range): ArgumentParser's
            // message and usage line under our prefix.
            var text = type.fullMessage(for: error)
            for prefix in ["Error: ", "error: "] where text.hasPrefix(prefix) {
                text.removeFirst(prefix.count)
            }
            printError("manet: error: " + text)
            return ExitStatus.usage
        }
        // Anything else a library threw while working: its description names the file and reason.
        printError("manet: error: \(error)")
        return ExitStatus.error
    }
}
