// The `manet` command line: the root command; each subcommand lives in its own file.

import ArgumentParser
import Foundation
import MANet
import Runtime

@main
struct Manet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manet",
        abstract: "MA-Net facial-expression recognition, with ONNX as its native format.",
        discussion: """
            Every command takes the thing it works on (model, checkpoint, source, log) as its first \
            argument and follows one grammar (docs/CLI.md). Errors are one line on stderr beginning \
            `manet: error: `. Exit status: 0 success, 1 verification mismatch, 2 error, 64 usage \
            error, 130 interrupted.

            Shell completion: `manet --generate-completion-script bash|zsh|fish` prints a script \
            (`make install` installs them).

            EXAMPLES:
              manet synth --out data --train-per-class 250 --test-per-class 50 --size 64
              manet train --data data --width 8 --input-size 64 --epochs 14 --checkpoint-dir runs/w8
              manet evaluate runs/w8/model_best.pb --data data
              manet export runs/w8/model_best.pb -o model.onnx --fused
              manet run model.onnx --input data/test
              manet env
            """,
        version: MANetExporter.toolkitVersion,
        subcommands: [
            InspectCommand.self,
            VerifyCommand.self, RunCommand.self,
            TrainCommand.self,
            EvaluateCommand.self,
            LogsCommand.self,
            SynthCommand.self,
            ExportCommand.self, ImportCommand.self,
            BenchCommand.self,
            EnvCommand.self,
        ])

    /// Parses, runs, and turns every error into one `manet: error: ` line and the documented exit
    /// status (see `report`), instead of ArgumentParser's own `Error:` and status 1.
    /// The allocator tuning is the program's choice (`AllocatorTuning`): made once, before any
    /// command runs.
    static func main() {
        AllocatorTuning.keepFreedMemory()
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            Glibc.exit(report(error, command: nil))
        }
        do {
            try command.run()
        } catch {
            Glibc.exit(report(error, command: type(of: command)))
        }
        Glibc.exit(ExitStatus.success)
    }
}
