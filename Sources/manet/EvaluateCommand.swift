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
        let graph = try MANetModel.build(numClasses: checkpoint.numClasses, width: checkpoint.width, inputSize: checkpoint.inputSize)
        let trainer = try Trainer(model: consume graph, options: options, classNames: checkpoint.classNames,
                                  generator: Xoshiro256(seed: 0), dataSeed: 0)
        try trainer.load(checkpoint, resume: false)
        let loader = try BatchLoader(dataset: testSet, options: BatchLoaderOptions(
            batchSize: batchSize, inputSize: checkpoint.inputSize, shuffle: false, augment: false, seed: 0,
            skipBadImages: skipBadImages))
        let result = try trainer.validate(loader: loader, log: try LogWriter(path: nil))
        print("accuracy \(PythonFormat.fixed(Double(result.accuracy), decimals: 3))% on \(testSet.count) test images "
              + "(loss \(PythonFormat.fixed(result.loss, decimals: 4)); model: epoch \(checkpoint.epochsCompleted), width \(checkpoint.width))")
    }
}
