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
        epoch's min and max over the runs. --svg draws every run's curves in two panels side by \
        side: accuracy (%), and loss on its own axis (logarithmic when the losses span more than \
        10x). Test curves are solid, train curves dashed; each run has a colour, and runs with \
        one --label share one (a group, e.g. one trainer's seeds). --label gives one name per \
        log, in the order of the logs; without it, logs that share a file name in different \
        folders (seed-1/pytorch.log, seed-2/pytorch.log, seed-1/manet.log, ...) are grouped by \
        that name, and other runs are named by their file name (with the folder when file names \
        repeat). --title sets the picture's title (default: the groups compared).

        EXAMPLES:
          manet logs runs/train-1/log.txt
          manet logs runs/train-1/log.txt runs/train-2/log.txt --svg curves.svg
          manet logs seed-*/pytorch.log seed-*/manet.log --svg seeds.svg
          manet logs a.log b.log c.log --label manet --label manet --label PyTorch \\
              --title "manet vs PyTorch, width 64" --svg seeds.svg
          manet logs console.txt --json
        """)

    @Argument(help: "Training logs: one for its table, two or more to compare.")
    var logs: [String] = []

    @Option(name: .customLong("svg"), help: "Write the runs' accuracy and loss curves to this SVG file.")
    var svg: String?

    @Option(name: .customLong("label"), help: ArgumentHelp(
        "A run's name in the SVG, once per log in the order of the logs; runs with one label share a colour.",
        valueName: "name"))
    var labels: [String] = []

    @Option(help: ArgumentHelp("The SVG's title (default: the groups compared).", valueName: "text"))
    var title: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if logs.isEmpty { throw ValidationError("Missing expected argument '<logs> ...': give one or more training logs") }
        if svg == nil && !labels.isEmpty { throw ValidationError("--label names the runs in the picture: it needs --svg FILE") }
        if svg == nil && title != nil { throw ValidationError("--title is the picture's title: it needs --svg FILE") }
        if !labels.isEmpty && labels.count != logs.count {
            throw ValidationError("--label is given \(labels.count) time\(labels.count == 1 ? "" : "s") for \(logs.count) logs: "
                                  + "give one per log, in the order of the logs")
        }
        if labels.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--label must not be empty")
        }
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
            let document = TrainingCurves.svg(runs, labels: labels.isEmpty ? nil : labels, title: title)
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
