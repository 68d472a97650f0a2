// The `manet` command line: the root command; each subcommand lives in its own file.

import ArgumentParser

@main
struct Manet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manet",
        abstract: "MA-Net facial-expression recognition, with ONNX as its native format.",
        subcommands: [
            InspectCommand.self,
            VerifyCommand.self, RunCommand.self,
            TrainCommand.self,
            EvaluateCommand.self,
            LogsCommand.self,
            SynthCommand.self,
            ExportCommand.self, ImportCommand.self,
            BenchCommand.self,
        ])
}
