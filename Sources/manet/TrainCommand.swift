// `manet train`: the authors' training recipe on an image-folder dataset, with their log lines and checkpoints.

import ArgumentParser
import Foundation
import MANet
import ManetSupport
import Runtime

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train MA-Net on an image-folder dataset (train/ and test/, one folder per class).",
        discussion: """
            Defaults are the paper's recipe: SGD lr 0.01, momentum 0.9, weight decay 1e-4, StepLR(15, 0.1), \
            batch 128, 100 epochs, beta 0.6, RandomResizedCrop(224) + flip. Log lines are those of the \
            authors' main.py (appended to --log, and on stdout); after each epoch the curves are drawn \
            to <log>.svg and checkpoint.pb (latest) / model_best.pb are written to --checkpoint-dir. \
            The run ends with a summary: best accuracy and its epoch, wall time, and where the log, \
            the curves and the checkpoints are.

            Runs never overwrite runs: without --checkpoint-dir each run gets a new folder \
            runs/train-N (the first N not taken; with --resume of a checkpoint.pb, that checkpoint's own folder). A \
            --checkpoint-dir (or --log) that holds another run's checkpoints or log is refused, \
            naming the way on: `--resume <dir>/checkpoint.pb` to continue that run, --overwrite to \
            replace it, or another folder. A refused run writes nothing.

            Progress: on a terminal a live line shows the phase (epoch k of N, train or test), the \
            step, images/s, elapsed time and ETA of the phase, and the loss and accuracy so far; long \
            steps (building the model, the first batch, evaluation, checkpoint writes) say what they \
            are doing. The live line never reaches the log file. When stdout is not a terminal, or \
            with --plain, stdout gets the log lines only and the long steps go to stderr.

            Stopping and resuming: checkpoints are replaced atomically (temporary file, fsync, \
            rename, fsync of the folder), so a run killed at any moment leaves the previous \
            checkpoint.pb intact; `--resume <dir>/checkpoint.pb` continues from it, cuts the log \
            back to the length it had when that checkpoint was written and redoes the lost work, \
            printing the same per-step losses as an uninterrupted run. Ctrl-C (SIGINT) is answered \
            at once ("stopping after this step, Ctrl-C again to quit now"); the run stops after \
            the current step, writes checkpoint.pb with the position inside the epoch, prints how \
            to resume and exits with status 130; a second Ctrl-C exits at once, keeping the \
            previous checkpoint. A failed write (full disk, file-size limit) of the checkpoint, the \
            log or the curves is an error naming the file; the previous checkpoint stays valid. \
            Leftover temporary files of killed writes (checkpoint.pb.tmp-<pid>) are removed on the \
            next run.

            Resuming: a manet checkpoint.pb continues with the recipe it stores (batch size, \
            schedule, beta, augmentation, shuffling, input size, seed and generators); only \
            --epochs may grow. The authors' .pth/.pth.tar holds no schedule: it gives the weights, \
            the epochs completed, best_acc, the SGD momentum buffers and, when its optimizer has \
            them, the learning rate (initial_lr), momentum and weight decay; the rest comes from \
            this command line, as main.py took it from its own: --batch-size, --step-size, --gamma, \
            --epochs, --beta, --no-augment, --no-shuffle, --input-size, --seed (data order and \
            augmentation), and --lr, --momentum, --weight-decay where the file has none. The first \
            epoch's learning rate is StepLR's at the file's epoch (from that lr, --step-size and \
            --gamma). Such a run starts a new run folder, whose checkpoint.pb then stores that \
            recipe like any other.

            Paths: --log must be a file (a directory is refused), --checkpoint-dir a folder; a \
            class folder or image that is a symbolic link leading outside the dataset root is \
            refused with an error naming it.

            EXAMPLES:
              manet train --data data --width 8 --input-size 64 --epochs 14
              manet train --data data --resume runs/train-1/checkpoint.pb --epochs 20
              manet train --data data --resume epoch40.pth.tar --batch-size 128 --step-size 15 --epochs 60
              manet train --data data --init imported.pb --epochs 1 --lr 0.001
              manet train --data data --checkpoint-dir runs/w8 --overwrite
            """)

    @Option(help: "Dataset root holding train/ and test/.") var data: String
    @Option(name: .customLong("init"), help: "Start from these weights: a manet checkpoint .pb, an ONNX export or a safetensors state_dict.") var initFrom: String?
    @Option(help: "Continue a run (same width and class count): a manet checkpoint .pb with its stored recipe, or the authors' .pth/.pth.tar (weights, epoch, best_acc, SGD momentum; the schedule from this command line, see Resuming).") var resume: String?
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
    @Option(help: "Folder for checkpoint.pb, model_best.pb and the log (default: a new runs/train-N; with --resume of a checkpoint.pb, its folder; an authors' .pth starts a new one).")
    var checkpointDir: String?
    @Flag(help: "Replace the checkpoints, log and curves an earlier run left in --checkpoint-dir.") var overwrite = false
    @Flag(help: "No live progress line, even on a terminal (stdout gets the log lines only).") var plain = false
    @Flag(help: "List every key of an --init mismatch (default: a few of each).") var verbose = false
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
        let display = TrainingDisplay(live: !plain && ProgressLine.stdoutIsTerminal)
        let started = Date()
        let folder: String
        do {
            folder = try train(display: display, started: started)
        } catch let TrainingError.interrupted(epoch, stepsDone, batches, checkpoint) {
            display.clear()
            let error = TrainingError.interrupted(epoch: epoch, stepsDone: stepsDone, batches: batches, checkpoint: checkpoint)
            print("manet: \(error)")
            if let checkpoint {
                print("manet: resume with: manet train \(resumeArguments(checkpoint: checkpoint, folder: (checkpoint as NSString).deletingLastPathComponent))")
            }
            fflush(stdout)
            throw ExitCode(ExitStatus.interrupted)
        } catch {
            display.clear()
            throw error
        }
        _ = folder
    }

    /// Trains and prints the end-of-run summary; returns the run's folder.
    private func train(display: TrainingDisplay, started: Date) throws -> String {
        // Everything that can refuse the run comes before anything is written, so that a refused
        // run (a bad dataset, a mismatched --resume, a folder holding another run) leaves no file.
        let (trainSet, testSet) = try ImageFolderDataset.load(root: URL(fileURLWithPath: data))
        guard trainSet.classNames.count == numClasses else {
            throw TrainingError.invalidOption("\(data)/train has \(trainSet.classNames.count) class folders, but --num-classes is \(numClasses)")
        }
        guard testSet.classFolders == trainSet.classFolders else {
            throw TrainingError.invalidOption("\(data): train/ and test/ have different class folders")
        }
        var resumed: TrainingCheckpoint?
        if let resume {
            let checkpoint: TrainingCheckpoint
            if resumesPyTorch {
                // The authors' checkpoint: weights, epoch, best accuracy and SGD momentum.
                // The file holds no batch size, schedule, augmentation or shuffling: this command line's.
                var recipe = TrainingRecipe()
                recipe.learningRate = lr
                recipe.momentum = momentum
                recipe.weightDecay = weightDecay
                recipe.stepSize = stepSize
                recipe.gamma = gamma
                recipe.batchSize = batchSize
                recipe.epochs = epochs
                recipe.augment = !noAugment
                recipe.shuffle = !noShuffle
                let imported = try PyTorchTrainingState.resumeCheckpoint(
                    path: resume, options: ImportOptions(numClasses: numClasses, width: width, inputSize: inputSize, seed: seed),
                    recipe: recipe)
                for note in imported.notes { display.note("note: --resume \(resume): \(note)") }
                // Beta is not in the file either (main.py's is 0.6, --beta's default).
                var taken = imported.checkpoint
                taken.beta = beta
                checkpoint = taken
            } else {
                checkpoint = try CheckpointInput.read(resume, option: "--resume")
            }
            guard checkpoint.width == width, checkpoint.numClasses == numClasses else {
                throw TrainingError.checkpointMismatch("\(resume) holds width \(checkpoint.width) with \(checkpoint.numClasses) classes; "
                    + "this run asks for width \(width) with \(numClasses) classes (pass --width / --num-classes to match)")
            }
            resumed = checkpoint
        }
        let checkpointDir = try runFolder()
        let logPath = log ?? (checkpointDir + "/log.txt")
        try refuseClobbering(folder: checkpointDir, logPath: logPath)

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
        options.runtime = try RuntimeEnvironment.options(threads: threads, deterministic: options.deterministic,
                                                         optimizations: .none)

        let trainer: Trainer
        var resumedLogLength: UInt64 = 0
        if let resume, let checkpoint = resumed {
            resumedLogLength = checkpoint.logLength
            guard checkpoint.epochsCompleted < epochs else {
                throw TrainingError.invalidOption("\(resume) has already completed \(checkpoint.epochsCompleted) epochs; pass --epochs above that to continue")
            }
            // A resumed run continues the stored recipe and generators; only the epoch count may grow.
            display.status("building MA-Net (width \(width), \(numClasses) classes, \(checkpoint.inputSize) px) and loading \(resume)")
            do {
                trainer = try Trainer(resuming: checkpoint, options: options, classNames: trainSet.classNames)
            } catch TrainingError.invalidCheckpoint(let reason) {
                throw TrainingError.invalidCheckpoint("\(resume): \(reason)")
            }
            options = trainer.options
            guard trainer.epochsCompleted < epochs else {
                throw TrainingError.invalidOption("\(resume) has already completed \(trainer.epochsCompleted) epochs; pass --epochs above that to continue")
            }
        } else {
            display.status("building MA-Net (width \(width), \(numClasses) classes, \(inputSize) px)")
            trainer = try Trainer(options: options, classNames: trainSet.classNames)
            if let initFrom {
                // A manet checkpoint, an ONNX export or a safetensors state_dict (see `manet import`);
                // heads of another class count are re-initialised for --num-classes.
                display.status("loading the weights of \(initFrom)")
                let imported: ImportResult
                do {
                    imported = try ModelImporter.importModel(
                        path: initFrom, options: ImportOptions(numClasses: numClasses, width: width, inputSize: inputSize, seed: seed))
                } catch let error as ImportError {
                    throw CLIError(error, verbose: verbose)
                }
                for note in imported.notes { display.note("note: --init \(initFrom): \(note)") }
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
        }

        // From here on the run writes.
        try prepareFolder(checkpointDir)
        if overwrite && resume == nil {
            for path in [checkpointDir + "/checkpoint.pb", checkpointDir + "/model_best.pb", logPath, Self.curvesPath(logPath)]
            where Self.isRegularFile(path) {
                try FileManager.default.removeItem(atPath: path)
            }
        }
        for path in TrainingCheckpoint.removeStaleTemporaries(in: checkpointDir) {
            display.note("note: removed \(path), left by a checkpoint write that was killed")
        }
        let logWriter = try LogWriter(path: logPath)
        if resume != nil {
            // The lines after the checkpoint belong to work that is redone now.
            if resumedLogLength > 0, try !logWriter.truncate(to: resumedLogLength) {
                display.note("note: \(logPath) is shorter than when \(resume!) was written; appending without cutting it back")
            }
        }
        logWriter.clearLine = { display.clear() }
        trainer.onProgress = { display.show($0) }
        trainer.stopRequested = { TrainingInterruption.isRequested }
        TrainingInterruption.installHandler()
        display.note("manet: training \(trainSet.count) images (\(trainLoader.batchesPerEpoch) steps per epoch) to epoch \(epochs); "
                     + "writing to \(checkpointDir)/")
        try trainer.run(train: trainLoader, test: testLoader, log: logWriter)
        display.clear()

        // The summary: what the user looks for when the run is over.
        let wall = Date().timeIntervalSince(started)
        let best = trainer.bestEpoch >= 0
            ? "best accuracy \(PythonFormat.fixed(Double(trainer.bestAccuracy), decimals: 3))% at epoch \(trainer.bestEpoch)"
            : "no epoch evaluated"
        print("manet: done: \(best) (epochs 0-\(trainer.epochsCompleted - 1)), wall time \(ProgressLine.duration(wall))")
        print("manet: log          \(logPath)")
        print("manet: curves       \(Self.curvesPath(logPath))")
        print("manet: checkpoints  \(checkpointDir)/checkpoint.pb (latest), \(checkpointDir)/model_best.pb (best)")
        print("manet: next: manet evaluate \(shellQuoted(checkpointDir + "/model_best.pb")) --data \(shellQuoted(data))")
        return checkpointDir
    }

    /// `--checkpoint-dir`, else the folder of the `--resume` checkpoint, else the first free
    /// `runs/train-N` (not created here).
    private var resumesPyTorch: Bool { resume.map { (try? ModelImporter.format(ofFile: $0)) == .pth } ?? false }

    private func runFolder() throws -> String {
        if let checkpointDir { return checkpointDir }
        // An authors' .pth.tar starts a new run folder; a manet checkpoint continues in its own.
        if let resume, !resumesPyTorch {
            let folder = (resume as NSString).deletingLastPathComponent
            return folder.isEmpty ? "." : folder
        }
        var n = 1
        while FileManager.default.fileExists(atPath: "runs/train-\(n)") { n += 1 }
        return "runs/train-\(n)"
    }

    /// Refuses a folder (or a --log file) that holds another run, unless this run continues it
    /// (--resume of a checkpoint in that folder) or replaces it (--overwrite).
    private func refuseClobbering(folder: String, logPath: String) throws {
        if overwrite { return }
        if let resume, !resumesPyTorch {
            // Continuing in the checkpoint's own folder is the point of --resume.
            let own = URL(fileURLWithPath: (resume as NSString).deletingLastPathComponent.isEmpty ? "." : (resume as NSString).deletingLastPathComponent)
                .resolvingSymlinksInPath().path
            if own == URL(fileURLWithPath: folder).resolvingSymlinksInPath().path { return }
        }
        var found = ["checkpoint.pb", "model_best.pb"].filter { Self.isRegularFile(folder + "/" + $0) }.map { folder + "/" + $0 }
        if Self.isRegularFile(logPath), let size = try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int, size > 0 {
            found.append(logPath)
        }
        guard !found.isEmpty else { return }
        let checkpoint = folder + "/checkpoint.pb"
        var ways: [String] = []
        if Self.isRegularFile(checkpoint) { ways.append("`--resume \(shellQuoted(checkpoint))` continues it") }
        ways.append("`--overwrite` replaces it")
        ways.append(checkpointDir == nil ? "`--checkpoint-dir NEW` writes elsewhere" : "another --checkpoint-dir (or none: a new runs/train-N) keeps both")
        throw CLIError("\(folder) holds another run (\(found.joined(separator: ", "))); refusing to overwrite it",
                       hint: ways.joined(separator: "; "))
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Where the trainer draws the curves: `<log without extension>.svg`.
    static func curvesPath(_ logPath: String) -> String {
        (logPath as NSString).deletingPathExtension + ".svg"
    }

    /// The `manet train` arguments that continue from `checkpoint` (the recipe comes from it).
    private func resumeArguments(checkpoint: String, folder: String) -> String {
        var args = ["--data", data, "--resume", checkpoint, "--epochs", String(epochs), "--width", String(width),
                    "--num-classes", String(numClasses), "--checkpoint-dir", folder,
                    "--print-freq", String(printFreq), "--threads", String(threads)]
        if let log { args += ["--log", log] }
        if skipBadImages { args.append("--skip-bad-images") }
        return args.map(shellQuoted).joined(separator: " ")
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
