// `manet evaluate`: test-set accuracy of a trained model, with the authors' validation log lines.

import ArgumentParser
import Foundation
import MANet
import ManetSupport
import Runtime

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a trained MA-Net on DIR/test (Resize transform, fused logits).",
        discussion: """
            Prints the authors' validation lines, then the accuracy and loss, the accuracy of each \
            class and the confusion matrix (rows: true class, columns: predicted). The model's epoch \
            is counted as `manet logs` counts it (the epoch that produced the weights, from 0).

            EXAMPLES:
              manet evaluate runs/train-1/model_best.pb --data data
              manet evaluate model.onnx --data data --json
              manet evaluate runs/train-1/model_best.pb --data data --svg confusion.svg
            """)

    @Argument(help: ArgumentHelp("The model: a manet checkpoint (.pb), e.g. runs/train-1/model_best.pb, or an ONNX export or safetensors state_dict of MA-Net.", valueName: "model"))
    var modelArgument: String?
    @Option(name: .customLong("model"), help: .hidden) var modelOption: String?
    @Option(help: "Dataset root holding test/ (one folder per class).") var data: String
    @Option(help: "Images per batch.") var batchSize = 32
    @Option(help: "Compute threads (default: all cores).") var threads = ExecutionContext.defaultThreads
    @Option(help: "Print a progress line every N batches.") var printFreq = 10
    @Flag(help: "Skip undecodable images with a warning instead of stopping.") var skipBadImages = false
    @Flag(help: "Print one JSON object (accuracy, loss, epoch, per-class results, confusion matrix) instead of the text report.") var json = false
    @Option(help: "Also draw the confusion matrix to this SVG file.") var svg: String?
    @Flag(help: "No live progress line, even on a terminal.") var plain = false

    /// The positional model, or the old `--model` spelling.
    var model: String { modelArgument ?? modelOption ?? "" }

    func validate() throws {
        switch (modelArgument, modelOption) {
        case (nil, nil): throw ValidationError("give the model to evaluate: manet evaluate MODEL --data DIR")
        case (.some, .some): throw ValidationError("give the model once (positional MODEL; --model is its old spelling)")
        default: break
        }
        guard batchSize > 0, threads > 0, printFreq > 0 else {
            throw ValidationError("--batch-size, --threads and --print-freq must be positive")
        }
    }

    func run() throws {
        // An ONNX export or a safetensors state_dict is evaluated as `manet import` would read it.
        let checkpoint: TrainingCheckpoint
        if CheckpointInput.otherModelKind(model) != nil {
            checkpoint = try ModelImporter.importModel(path: model).checkpoint
        } else {
            checkpoint = try CheckpointInput.read(model, option: "")
        }
        let testSet = try ImageFolderDataset(root: URL(fileURLWithPath: data), split: .test)
        guard testSet.classNames.count == checkpoint.numClasses else {
            throw TrainingError.checkpointMismatch("\(model) classifies \(checkpoint.numClasses) classes, \(data)/test has \(testSet.classNames.count)")
        }
        var options = TrainingOptions()
        options.width = checkpoint.width
        options.numClasses = checkpoint.numClasses
        options.inputSize = checkpoint.inputSize
        options.beta = checkpoint.beta
        options.threads = threads
        options.printFrequency = printFreq
        options.runtime = try RuntimeEnvironment.options(threads: threads, deterministic: options.deterministic,
                                                         optimizations: .none)
        let graph = try MANetModel.build(numClasses: checkpoint.numClasses, width: checkpoint.width, inputSize: checkpoint.inputSize)
        let trainer = try Trainer(model: consume graph, options: options, classNames: checkpoint.classNames,
                                  generator: Xoshiro256(seed: 0), dataSeed: 0)
        try trainer.load(checkpoint, resume: false)
        let loader = try BatchLoader(dataset: testSet, options: BatchLoaderOptions(
            batchSize: batchSize, inputSize: checkpoint.inputSize, shuffle: false, augment: false, seed: 0,
            skipBadImages: skipBadImages))
        let display = TrainingDisplay(live: !json && !plain && ProgressLine.stdoutIsTerminal)
        trainer.onProgress = { display.show($0) }
        var matrix = ConfusionMatrix(classNames: testSet.classNames)
        // --json keeps stdout for the JSON object: the authors' validation lines are not printed.
        let log = json ? nil : try LogWriter(path: nil)
        log?.clearLine = { display.clear() }
        let result = try trainer.validate(loader: loader, log: log) { labels, predicted in
            matrix.add(labels: labels, predicted: predicted)
        }
        display.clear()
        if let svg {
            try OutputPath.checkFile(svg, what: "--svg")
            let picture = matrix.svg(title: "\((model as NSString).lastPathComponent) on \(data)/test: accuracy "
                                     + "\(PythonFormat.fixed(Double(result.accuracy), decimals: 3))%")
            do {
                try picture.write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError("--svg \(svg): cannot write the picture: \(error.localizedDescription)")
            }
        }
        // The epoch as the authors' log (and `manet logs`) counts it: the one whose end wrote the weights.
        let epoch: Int? = checkpoint.stepInEpoch == 0 && checkpoint.epochsCompleted > 0 ? checkpoint.epochsCompleted - 1 : nil
        let origin: String
        if checkpoint.stepInEpoch > 0 {
            origin = "epoch \(checkpoint.epochsCompleted) after step \(checkpoint.stepInEpoch) (an interrupted run)"
        } else if let epoch {
            origin = "epoch \(epoch)"
        } else {
            origin = "untrained or imported"
        }
        if json {
            struct ClassResult: Encodable { var index: Int; var name: String; var images: Int; var correct: Int; var accuracy: Double? }
            struct Report: Encodable {
                var model: String
                var data: String
                var images: Int
                var accuracy: Double
                var loss: Double
                var epoch: Int?
                var stepInEpoch: Int
                var width: Int
                var classes: [ClassResult]
                /// `confusion[true][predicted]`.
                var confusion: [[Int]]
                var svg: String?
            }
            let report = Report(
                model: model, data: data, images: matrix.total, accuracy: Double(result.accuracy), loss: result.loss,
                epoch: epoch, stepInEpoch: checkpoint.stepInEpoch, width: checkpoint.width,
                classes: testSet.classNames.indices.map {
                    ClassResult(index: $0, name: testSet.classNames[$0], images: matrix.images(of: $0),
                                correct: matrix.correct(of: $0), accuracy: matrix.accuracy(of: $0))
                },
                confusion: matrix.counts, svg: svg)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("accuracy \(PythonFormat.fixed(Double(result.accuracy), decimals: 3))% on \(matrix.total) test images "
              + "(loss \(PythonFormat.fixed(result.loss, decimals: 4)); model: \(origin), width \(checkpoint.width))")
        print(matrix.text(), terminator: "")
        if let svg { print("confusion matrix drawn to \(svg)") }
    }
}
