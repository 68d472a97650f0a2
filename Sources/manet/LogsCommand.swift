// `manet logs`: summarises one training log per epoch, compares two or more, and draws their curves.

import ArgumentParser
import Foundation
import ManetSupport
import MANet

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Summarise a training log per epoch, or compare two or more runs side by side.",
        discussion: """
        Reads the authors' log format (`Current learning rate: ...`, `Epoch: [N][i/T] Loss ...`, \
        `Test: ...`, ` * Accuracy ...`, `Current best accuracy: ...`, epoch seconds), which \
        `manet train` also writes. Per epoch: learning rate, train loss and accuracy (the last \
        running averages printed), test loss (last running average) and accuracy (%), best \
        accuracy so far, seconds. With two logs, the table shows both runs' test accuracy, train \
        loss and test loss with B-A differences, and the final and best accuracies. With more \
        (e.g. several seeds of two trainers), one block per metric with a column per run and the \
        epoch's min and max over the runs. --svg draws every run's curves in one chart (one or \
        two runs: a colour per metric, the second run dashed; more: a colour per run, a dash per \
        metric).

        EXAMPLES:
          manet logs runs/train-1/log.txt
          manet logs runs/train-1/log.txt runs/train-2/log.txt --svg curves.svg
          manet logs torch-1.log torch-2.log manet-1.log manet-2.log --svg seeds.svg
          manet logs console.txt --json
        """)

    @Argument(help: "Training logs: one for its table, two or more to compare.")
    var logs: [String] = []

    @Option(name: .customLong("svg"), help: "Write the runs' accuracy and loss x30 curves to this SVG file.")
    var svg: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if logs.isEmpty { throw ValidationError("Missing expected argument '<logs> ...': give one or more training logs") }
    }

    func run() throws {
        let runs: [TrainingLog]
        do {
            runs = try logs.map { try LogParser.parse(contentsOf: $0) }
        } catch let error as LogParseError {
            throw interopExit(2, error.description)
        }
        let runA = runs[0], runB: TrainingLog? = runs.count == 2 ? runs[1] : nil

        if let svg {
            let document = TrainingCurves.svg(runs)
            do {
                try AtomicFile.write(Array(document.utf8), to: svg)
            } catch let e as FileError {
                throw interopExit(2, "\(svg): cannot write the SVG: \(e.reason)")
            }
        }

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data: Data
            if runs.count > 2 {
                struct Runs: Encodable { var runs: [TrainingLog] }
                data = try encoder.encode(Runs(runs: runs))
            } else if let runB {
                struct Report: Encodable { var runs: [TrainingLog]; var comparison: LogComparison }
                data = try encoder.encode(Report(runs: [runA, runB], comparison: LogComparison(runA, runB)))
            } else {
                data = try encoder.encode(runA)
            }
            print(String(decoding: data, as: UTF8.self))
            return
        }

        if runs.count > 2 {
            print(MultiRunTable.table(runs), terminator: "")
        } else if let runB {
            print(LogComparison(runA, runB).table(), terminator: "")
            print()
            print("A: " + runA.summary)
            print("B: " + runB.summary)
        } else {
            print(runA.table(), terminator: "")
        }
        // What the parser passed over, in the CLI's warning form, after the report it concerns.
        fflush(stdout)
        for run in runs {
            for w in run.warnings { printError("manet: warning: \(run.source): \(w)") }
        }
        if let svg { print("curves written to \(svg)") }
    }
}
