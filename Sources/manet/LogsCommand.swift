// `manet logs`: summarises one training log per epoch, or compares two, and draws their curves.

import ArgumentParser
import Foundation
import ManetSupport
import MANet

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Summarise a training log per epoch, or compare two runs side by side.",
        discussion: """
        Reads the authors' log format (`Current learning rate: ...`, `Epoch: [N][i/T] Loss ...`, \
        `Test: ...`, ` * Accuracy ...`, `Current best accuracy: ...`, epoch seconds), which \
        `manet train` also writes. Per epoch: learning rate, train loss and accuracy (the last \
        running averages printed), test loss (last running average) and accuracy (%), best \
        accuracy so far, seconds. With two logs, the table shows both runs' test accuracy, train \
        loss and test loss with B-A differences, and the final and best accuracies.

        EXAMPLES:
          manet logs runs/train-1/log.txt
          manet logs runs/train-1/log.txt runs/train-2/log.txt --svg curves.svg
          manet logs console.txt --json
        """)

    @Argument(help: "A training log.")
    var log: String

    @Argument(help: "A second training log to compare with the first.")
    var log2: String?

    @Option(name: .customLong("svg"), help: "Write the runs' accuracy and loss x30 curves to this SVG file.")
    var svg: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let runA: TrainingLog, runB: TrainingLog?
        do {
            runA = try LogParser.parse(contentsOf: log)
            runB = try log2.map { try LogParser.parse(contentsOf: $0) }
        } catch let error as LogParseError {
            throw interopExit(2, error.description)
        }

        if let svg {
            let document = TrainingCurves.svg([runA] + (runB.map { [$0] } ?? []))
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
            if let runB {
                struct Report: Encodable { var runs: [TrainingLog]; var comparison: LogComparison }
                data = try encoder.encode(Report(runs: [runA, runB], comparison: LogComparison(runA, runB)))
            } else {
                data = try encoder.encode(runA)
            }
            print(String(decoding: data, as: UTF8.self))
            return
        }

        if let runB {
            print(LogComparison(runA, runB).table(), terminator: "")
            print()
            print("A: " + runA.summary)
            print("B: " + runB.summary)
            for w in runA.warnings { print("warning: A: \(w)") }
            for w in runB.warnings { print("warning: B: \(w)") }
        } else {
            print(runA.table(), terminator: "")
        }
        if let svg { print("curves written to \(svg)") }
    }
}
