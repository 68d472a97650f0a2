// `manet evaluate`: test-set accuracy of a trained model, with the authors' validation log lines.

import ArgumentParser
import Foundation
import MANet
import Runtime

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a trained MA-Net on DIR/test (Resize transform, fused logits).")

    @Option(help: "Dataset root holding test/ (one folder per class).") var data: String
    @Option(help: "A manet checkpoint (.pb), e.g. checkpoints/model_best.pb.") var model: String
    @Option(help: "Images per batch.") var batchSize = 32
    @Option(help: "Compute threads (default: all cores).") var threads = ExecutionContext.defaultThreads
    @Option(help: "Print a progress line every N batches.") var printFreq = 10
    @Flag(help: "Skip undecodable images with a warning instead of stopping.") var skipBadImages = false

    func validate() throws {
        guard batchSize > 0, threads > 0, printFreq > 0 else {
            throw ValidationError("--batch-size, --threads and --print-freq must be positive")
        }
    }

    func run() throws {
        do {
            try evaluate()
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    private func evaluate() throws {
        guard model.hasSuffix(".pb") else {
            throw TrainingError.notYetSupported("--model \(model): only manet checkpoints (.pb) are supported so far; "
                + "ONNX and safetensors models come with the interop work")
        }
        let checkpoint = try TrainingCheckpoint.read(path: model)
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
