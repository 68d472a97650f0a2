// `manet train`: the authors' training recipe on an image-folder dataset, with their log lines and checkpoints.

import ArgumentParser
import Foundation
import MANet
import Runtime

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train MA-Net on an image-folder dataset (train/ and test/, one folder per class).",
        discussion: """
            Defaults are the paper's recipe: SGD lr 0.01, momentum 0.9, weight decay 1e-4, StepLR(15, 0.1), \
            batch 128, 100 epochs, beta 0.6, RandomResizedCrop(224) + flip. Log lines are those of the \
            authors' main.py (stdout, and appended to --log); after each epoch the curves are drawn to \
            <log>.svg and checkpoint.pb (latest) / model_best.pb are written to --checkpoint-dir.
            """)

    @Option(help: "Dataset root holding train/ and test/.") var data: String
    @Option(name: .customLong("init"), help: "Start from these weights: a manet checkpoint .pb, an ONNX export or a safetensors state_dict.") var initFrom: String?
    @Option(help: "Continue a run from its checkpoint (same width and class count).") var resume: String?
    @Option(help: "Total epochs (a resumed run continues up to this).") var epochs = 100
    @Option(help: "Images per batch.") var batchSize = 128
    @Option(help: "Initial learning rate.") var lr = 0.01
    @Option(help: "SGD momentum.") var momentum = 0.9
    @Option(help: "Weight decay (applied to every parameter, as the authors' script does).") var weightDecay = 1e-4
    @Option(help: "Weight of the local branch in loss and prediction (global gets 1 - beta).") var beta = 0.6
    @Option(help: "StepLR: epochs between learning-rate decays.") var stepSize = 15
    @Option(help: "StepLR: decay factor.") var gamma = 0.1
    @Option(help: "Stem channels (64 = the paper; smaller for quick runs).") var width = 64
    @Option(help: "Number of classes (must match the dataset's class folders).") var numClasses = 7
    @Option(help: "Seed for weights, data order and augmentation.") var seed: UInt64 = 0
    @Flag(help: "Use the test transform (Resize) for training too.") var noAugment = false
    @Flag(help: "Keep ImageFolder order (classes sorted, files sorted).") var noShuffle = false
    @Option(help: "Print a progress line every N steps.") var printFreq = 10
    @Option(help: "Log file the lines are appended to (default: <checkpoint-dir>/log.txt).") var log: String?
    @Option(help: "Folder for checkpoint.pb and model_best.pb.") var checkpointDir = "checkpoints"
    @Option(help: "Compute threads (default: all cores).") var threads = ExecutionContext.defaultThreads
    @Option(help: "Network input side in pixels (a multiple of 32, at least 64).") var inputSize = 224
    @Flag(help: "Skip undecodable images with a warning instead of stopping.") var skipBadImages = false

    func validate() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard momentum >= 0, weightDecay >= 0 else { throw ValidationError("--momentum and --weight-decay must not be negative") }
        guard (0...1).contains(beta) else { throw ValidationError("--beta must lie in [0, 1]") }
        guard stepSize > 0, gamma > 0 else { throw ValidationError("--step-size and --gamma must be positive") }
        guard printFreq > 0 else { throw ValidationError("--print-freq must be positive") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        guard initFrom == nil || resume == nil else { throw ValidationError("use either --init or --resume, not both") }
        do { try MANetModel.validate(numClasses: numClasses, width: width, inputSize: inputSize) } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() throws {
        do {
            try train()
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    private func train() throws {
        let (trainSet, testSet) = try ImageFolderDataset.load(root: URL(fileURLWithPath: data))
        guard trainSet.classNames.count == numClasses else {
            throw TrainingError.invalidOption("\(data)/train has \(trainSet.classNames.count) class folders, but --num-classes is \(numClasses)")
        }
        guard testSet.classFolders == trainSet.classFolders else {
            throw TrainingError.invalidOption("\(data): train/ and test/ have different class folders")
        }
        try prepareFolder(checkpointDir)
        let logPath = log ?? (checkpointDir + "/log.txt")
        let logWriter = try LogWriter(path: logPath)

        var options = TrainingOptions()
        options.recipe.learningRate = lr
        options.recipe.momentum = momentum
        options.recipe.weightDecay = weightDecay
        options.recipe.stepSize = stepSize
        options.recipe.gamma = gamma
        options.recipe.batchSize = batchSize
        options.recipe.epochs = epochs
        options.recipe.augment = !noAugment
        options.recipe.shuffle = !noShuffle
        options.beta = beta
        options.width = width
        options.numClasses = numClasses
        options.inputSize = inputSize
        options.seed = seed
        options.printFrequency = printFreq
        options.logPath = logPath
        options.checkpointDirectory = checkpointDir
        options.threads = threads
        options.progressBar = ProgressBar.stdoutIsTerminal

        let trainer: Trainer
        if let resume {
            let checkpoint = try TrainingCheckpoint.read(path: resume)
            guard checkpoint.width == width, checkpoint.numClasses == numClasses else {
                throw TrainingError.checkpointMismatch("\(resume) holds width \(checkpoint.width) with \(checkpoint.numClasses) classes; "
                    + "this run asks for width \(width) with \(numClasses) classes (pass --width / --num-classes to match)")
            }
            // A resumed run continues the stored recipe and generators; only the epoch count may grow.
            options.recipe = checkpoint.recipe
            options.recipe.epochs = epochs
            options.beta = checkpoint.beta
            options.inputSize = checkpoint.inputSize
            options.seed = checkpoint.seed
            guard let generator = Xoshiro256(stateWords: checkpoint.generatorState) else {
                throw TrainingError.invalidCheckpoint("\(resume): no generator state")
            }
            let model = try MANetModel.build(numClasses: numClasses, width: width, inputSize: options.inputSize, seed: 0)
            trainer = try Trainer(model: model, options: options, classNames: trainSet.classNames,
                                  generator: generator, dataSeed: checkpoint.dataSeed)
            try trainer.load(checkpoint, resume: true)
            guard trainer.epochsCompleted < epochs else {
                throw TrainingError.invalidOption("\(resume) has already completed \(trainer.epochsCompleted) epochs; pass --epochs above that to continue")
            }
        } else {
            trainer = try Trainer(options: options, classNames: trainSet.classNames)
            if let initFrom {
                // A manet checkpoint, an ONNX export or a safetensors state_dict (see `manet import`);
                // heads of another class count are re-initialised for --num-classes.
                let imported = try ModelImporter.importModel(
                    path: initFrom, options: ImportOptions(numClasses: numClasses, inputSize: inputSize, seed: seed))
                for note in imported.notes { print("note: --init \(initFrom): \(note)") }
                try trainer.load(imported.checkpoint, resume: false)
            }
        }

        var trainOptions = BatchLoaderOptions(batchSize: options.recipe.batchSize, inputSize: options.inputSize,
                                              shuffle: options.recipe.shuffle, augment: options.recipe.augment,
                                              seed: trainer.dataSeed, skipBadImages: skipBadImages)
        trainOptions.prefetchBatches = 2
        let testOptions = BatchLoaderOptions(batchSize: options.recipe.batchSize, inputSize: options.inputSize,
                                             shuffle: false, augment: false, seed: trainer.dataSeed, skipBadImages: skipBadImages)
        let trainLoader = try BatchLoader(dataset: trainSet, options: trainOptions)
        let testLoader = try BatchLoader(dataset: testSet, options: testOptions)
        try trainer.run(train: trainLoader, test: testLoader, log: logWriter)
    }

    /// Creates `path` if needed and proves it writable before hours of training depend on it.
    private func prepareFolder(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.unwritablePath(path, "cannot create the checkpoint folder")
        }
        let probe = path + "/.manet-write-test-\(getpid())"
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
            throw TrainingError.unwritablePath(path, "the checkpoint folder is not writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }
}
