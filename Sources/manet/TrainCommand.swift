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

            Stopping and resuming: checkpoints are replaced atomically (temporary file, fsync, \
            rename, fsync of the folder), so a run killed at any moment leaves the previous \
            checkpoint.pb intact; `--resume <dir>/checkpoint.pb` continues from it, cuts the log \
            back to the length it had when that checkpoint was written and redoes the lost work, \
            printing the same per-step losses as an uninterrupted run. Ctrl-C (SIGINT) stops after \
            the current step, writes checkpoint.pb with the position inside the epoch, prints how \
            to resume and exits with status 130; a second Ctrl-C exits at once, keeping the \
            previous checkpoint. A failed write (full disk, file-size limit) of the checkpoint, the \
            log or the curves is an error naming the file; the previous checkpoint stays valid. \
            Leftover temporary files of killed writes (checkpoint.pb.tmp-<pid>) are removed on the \
            next run.

            Paths: --log must be a file (a directory is refused), --checkpoint-dir a folder; a \
            class folder or image that is a symbolic link leading outside the dataset root is \
            refused with an error naming it.
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
        // A file-size limit (ulimit -f) must surface as EFBIG from write(), reported with the
        // file's name, instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        do {
            try train()
        } catch let error as ExitCode {
            throw error
        } catch let TrainingError.interrupted(epoch, stepsDone, batches, checkpoint) {
            let error = TrainingError.interrupted(epoch: epoch, stepsDone: stepsDone, batches: batches, checkpoint: checkpoint)
            print("manet: \(error)")
            if let checkpoint {
                print("manet: resume with: manet train \(resumeArguments(checkpoint: checkpoint))")
            }
            fflush(stdout)
            throw ExitCode(130)
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
        for path in TrainingCheckpoint.removeStaleTemporaries(in: checkpointDir) {
            print("note: removed \(path), left by a checkpoint write that was killed")
        }
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
        var resumedLogLength: UInt64 = 0
        if let resume {
            let checkpoint = try TrainingCheckpoint.read(path: resume)
            resumedLogLength = checkpoint.logLength
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
            trainer = try Trainer(model: consume model, options: options, classNames: trainSet.classNames,
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
        if let resume {
            guard trainer.stepInEpoch <= trainLoader.batchesPerEpoch else {
                throw TrainingError.checkpointMismatch("\(resume) stopped at step \(trainer.stepInEpoch) of epoch \(trainer.epochsCompleted), "
                    + "but \(data)/train makes only \(trainLoader.batchesPerEpoch) batches per epoch")
            }
            // The lines after the checkpoint belong to work that is redone now.
            if resumedLogLength > 0, try !logWriter.truncate(to: resumedLogLength) {
                print("note: \(logPath) is shorter than when \(resume) was written; appending without cutting it back")
            }
        }
        trainer.stopRequested = { TrainingInterruption.isRequested }
        // Test hook (crash-safety tests only): slow every step down so that a signal can be aimed
        // at the middle of an epoch.
        if let delay = ProcessInfo.processInfo.environment["MANET_TEST_STEP_DELAY_MS"].flatMap(UInt32.init), delay <= 10_000 {
            trainer.onStep = { _, _, _ in usleep(delay * 1000) }
        }
        TrainingInterruption.installHandler()
        try trainer.run(train: trainLoader, test: testLoader, log: logWriter)
    }

    /// The `manet train` arguments that continue from `checkpoint` (the recipe comes from it).
    private func resumeArguments(checkpoint: String) -> String {
        var args = ["--data", data, "--resume", checkpoint, "--epochs", String(epochs), "--width", String(width),
                    "--num-classes", String(numClasses), "--checkpoint-dir", checkpointDir,
                    "--print-freq", String(printFreq), "--threads", String(threads)]
        if let log { args += ["--log", log] }
        if skipBadImages { args.append("--skip-bad-images") }
        return args.map(Self.shellQuoted).joined(separator: " ")
    }

    private static func shellQuoted(_ s: String) -> String {
        let plain = s.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        return plain && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Creates `path` if needed and proves it writable before hours of training depend on it.
    private func prepareFolder(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw TrainingError.unwritablePath(path, "the checkpoint folder exists and is not a folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.unwritablePath(path, "cannot create the checkpoint folder: \((error as NSError).localizedDescription)")
        }
        for name in ["checkpoint.pb", "model_best.pb"] { try OutputPath.checkFile(path + "/" + name, what: "checkpoint") }
        let probe = path + "/" + TrainingCheckpoint.writeProbePrefix + "\(getpid())"
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
            throw TrainingError.unwritablePath(path, "the checkpoint folder is not writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }
}
