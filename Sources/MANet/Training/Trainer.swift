// The training loop of the authors' main.py on the Executor: epochs, SGD steps, evaluation, best model, logs, checkpoints.

import Foundation
import ManetSupport
import ONNXIR
import Runtime

/// Options of a training run; defaults are the authors' recipe.
public struct TrainingOptions: Sendable {
    public var recipe = TrainingRecipe()
    public var beta = 0.6
    public var width = 64
    public var numClasses = 7
    public var inputSize = 224
    public var seed: UInt64 = 0
    public var printFrequency = 10
    public var logPath: String?
    public var checkpointDirectory: String?
    public var threads = ExecutionContext.defaultThreads
    /// Same bits run to run (needed for `--resume` to repeat an uninterrupted run exactly).
    public var deterministic = true
    /// The runtime's algorithm and kernel choices; its `threads` and `deterministic` are
    /// replaced by the two options above.
    public var runtime = RuntimeOptions()

    public init() {}
}

/// Which parameters SGD updates and which tensors are BatchNormalization buffers, read from
/// the graph (so a model imported from PyTorch is exactly as trainable as a built one).
public struct ParameterRoles: Sendable {
    public var trainable: [String]
    public var runningStatistics: [String]
    public var batchNormModules: [String]

    public init(model: Model) {
        let bnNodes = model.graph.nodes.filter { $0.opType == "BatchNormalization" && $0.inputs.count >= 5 }
        let running = Set(bnNodes.flatMap { [$0.inputs[3], $0.inputs[4]] })
        let used = Set(model.graph.nodes.flatMap(\.inputs))
        trainable = model.graph.initializers.filter { $0.elementType == .float && !running.contains($0.name) && used.contains($0.name) }.map(\.name)
        runningStatistics = model.graph.initializers.map(\.name).filter { running.contains($0) }
        batchNormModules = MANetModel.batchNormModules(of: model)
    }
}

/// Runs training; also the unit a parity test drives step by step (`step(images:labels:)`).
public final class Trainer {
    public let options: TrainingOptions
    /// The graph, its initializers reduced to name, type and dims (the values live once, in the executor).
    public let model: Model
    public let executor: Executor
    public let roles: ParameterRoles
    public let classNames: [String]
    public private(set) var optimizer: SGD
    public let schedule: StepLR
    public let lossFunction: MANetLoss
    /// `num_batches_tracked` of each BatchNormalization module (PyTorch counts training forwards).
    public private(set) var batchesTracked: [String: Int64]
    public private(set) var epochsCompleted = 0
    /// Training steps already taken in epoch `epochsCompleted` (a run resumed mid-epoch), and
    /// that epoch's meters so far.
    public private(set) var stepInEpoch = 0
    public private(set) var epochLoss = AverageMeter()
    public private(set) var epochAccuracy = AccuracyMeter()
    /// Polled after every training step (and evaluation batch): true stops the run with a
    /// checkpoint (`manet train` sets it from SIGINT).
    public var stopRequested: (() -> Bool)?
    public private(set) var bestAccuracy: Float = 0
    public private(set) var bestEpoch = -1
    public private(set) var history: [EpochRecord] = []
    public private(set) var generator: Xoshiro256
    public let dataSeed: UInt64
    /// Steps taken in this process and before (from the checkpoint), for error messages.
    public private(set) var globalStep = 0
    /// Called after every training step with (epoch, step in epoch, loss): tests compare runs.
    public var onStep: ((Int, Int, Double) -> Void)?
    /// Told what the run is doing: each training step and evaluation batch, and the long steps
    /// (first batch, evaluation, checkpoint writes) before they start. The trainer prints nothing
    /// of it; `manet train` draws a live line from it on a terminal.
    public var onProgress: ((TrainingProgress) -> Void)?
    /// Called with each step's gradients (before weight decay) ahead of the update: parity tests.
    public var onGradients: (([String: Tensor]) -> Void)?
    /// Called with the checkpoint's path inside every checkpoint write, when the temporary file is
    /// complete, just before it is renamed into place (`AtomicFile.write`'s `beforeRename`):
    /// crash-safety tests kill the process there, or throw to play a crash between the write and
    /// the rename (the run then stops with that error and the previous checkpoint is as it was).
    public var beforeCheckpointRename: ((_ path: String) throws -> Void)?

    /// A fresh run: builds MA-Net from `options` with weights drawn from the seed.
    public convenience init(options: TrainingOptions, classNames: [String]) throws {
        var generator = Xoshiro256(seed: options.seed)
        let modelSeed = generator.next()
        let dataSeed = generator.next()
        let model = try MANetModel.build(numClasses: options.numClasses, width: options.width,
                                         inputSize: options.inputSize, seed: modelSeed)
        try self.init(model: consume model, options: options, classNames: classNames, generator: generator, dataSeed: dataSeed)
    }

    /// Continues the run that wrote `checkpoint`: its recipe (up to `options.recipe.epochs`),
    /// beta, input size, seeds, generators, weights, optimiser state and position in the epoch.
    /// The rest of `options` (threads, paths, printing) is this run's. The checkpoint's width and
    /// class count must be those of `options`.
    public convenience init(resuming checkpoint: TrainingCheckpoint, options: TrainingOptions, classNames: [String]) throws {
        var options = options
        let epochs = options.recipe.epochs
        options.recipe = checkpoint.recipe
        options.recipe.epochs = epochs
        options.beta = checkpoint.beta
        options.inputSize = checkpoint.inputSize
        options.seed = checkpoint.seed
        guard let generator = Xoshiro256(stateWords: checkpoint.generatorState) else {
            throw TrainingError.invalidCheckpoint("no generator state")
        }
        let model = try MANetModel.build(numClasses: options.numClasses, width: options.width, inputSize: options.inputSize, seed: 0)
        try self.init(model: consume model, options: options, classNames: classNames, generator: generator, dataSeed: checkpoint.dataSeed)
        try load(checkpoint, resume: true)
    }

    /// A run over a given graph (built or imported), with its current initializer values.
    /// Takes the model over like `Executor.init`: handed on (`consume model`), its weight
    /// bytes are freed as they are converted instead of staying alongside the executor's.
    public init(model: consuming Model, options: TrainingOptions, classNames: [String], generator: Xoshiro256, dataSeed: UInt64) throws {
        self.options = options
        self.classNames = classNames
        self.generator = generator
        self.dataSeed = dataSeed
        roles = ParameterRoles(model: copy model)
        var runtime = options.runtime
        runtime.threads = options.threads
        runtime.deterministic = options.deterministic
        executor = try Executor(model: consume model, options: runtime, training: true)
        self.model = executor.model
        optimizer = SGD(learningRate: options.recipe.learningRate, momentum: options.recipe.momentum,
                        weightDecay: options.recipe.weightDecay)
        schedule = StepLR(initialLearningRate: options.recipe.learningRate, stepSize: options.recipe.stepSize,
                          gamma: options.recipe.gamma)
        lossFunction = MANetLoss(beta: options.beta)
        batchesTracked = Dictionary(uniqueKeysWithValues: roles.batchNormModules.map { ($0, 0) })
    }

    // MARK: - One step

    /// Forward in training mode, loss, backward, SGD update. Throws `nonFiniteLoss` before any
    /// parameter changes when the loss is NaN or infinite.
    @discardableResult
    public func step(images: Tensor, labels: [Int], epoch: Int = 0, stepInEpoch: Int = 0) throws -> MANetLoss.Result {
        executor.context.training = true
        let pass = try executor.forward(inputs: ["input": images])
        guard let local = pass.outputs["logits_local"], let global = pass.outputs["logits_global"] else {
            throw TrainingError.missingParameter("logits_local / logits_global outputs")
        }
        let result = timed("(loss)") { lossFunction.evaluate(logitsLocal: local, logitsGlobal: global, labels: labels) }
        globalStep += 1
        guard result.loss.isFinite else {
            throw TrainingError.nonFiniteLoss(epoch: epoch, step: stepInEpoch, globalStep: globalStep, value: result.loss)
        }
        // The pass is handed over, so backward frees each node's activations once it used them.
        let gradients = try executor.backward(consume pass, outputGradients: ["logits_local": result.gradientLocal,
                                                                              "logits_global": result.gradientGlobal],
                                              wrt: roles.trainable)
        onGradients?(gradients)
        try timed("(SGD update)") {
            for name in roles.trainable {
                guard executor.initializer(name) != nil, let gradient = gradients[name] else {
                    throw TrainingError.missingParameter(name)
                }
                // In place: backward consumed the pass, so the executor holds the only reference.
                try executor.updateInitializer(name) {
                    optimizer.step(name, parameter: &$0, gradient: gradient.floats, threads: options.threads)
                }
            }
        }
        for module in roles.batchNormModules { batchesTracked[module, default: 0] += 1 }
        return result
    }

    /// `body`, its time added to the executor's profile when one is attached (`manet bench --train --profile`).
    private func timed<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        guard let profile = executor.profile else { return try body() }
        return try profile.time(phase, body)
    }

    /// Inference-mode logits.
    public func predict(images: Tensor) throws -> (local: Tensor, global: Tensor) {
        executor.context.training = false
        let out = try executor.run(inputs: ["input": images])
        return (out["logits_local"]!, out["logits_global"]!)
    }

    // MARK: - Epochs

    /// One pass over the training set from step `first` (a resumed epoch) with the epoch's meters,
    /// logging every `printFrequency` steps. Returns the steps done when `stopRequested` ended it
    /// early, nil when it finished.
    func trainEpoch(_ epoch: Int, from first: Int, loader: BatchLoader, log: LogWriter,
                    losses: inout AverageMeter, accuracy: inout AccuracyMeter) throws -> Int? {
        let reader = loader.epoch(epoch, fromBatch: first)
        defer { reader.cancel() }
        let batches = loader.batchesPerEpoch
        var i = first
        onProgress?(.status("epoch \(epoch) (\(epoch + 1) of \(options.recipe.epochs)): reading the first batch and taking step \(first + 1) of \(batches)"))
        while let batch = try reader.next() {
            let result = try step(images: batch.images, labels: batch.labels, epoch: epoch, stepInEpoch: i)
            losses.update(Double(Float(result.loss)), count: batch.count)
            accuracy.update(correct: result.correct, batchSize: batch.count)
            onStep?(epoch, i, result.loss)
            if i % options.printFrequency == 0 {
                try log.write(LogLine.progress(prefix: LogLine.trainPrefix(epoch: epoch), batch: i, batches: batches,
                                               loss: losses, accuracy: accuracy))
            }
            onProgress?(.training(epoch: epoch, epochs: options.recipe.epochs, step: i + 1, steps: batches, images: batch.count,
                                  loss: losses.average, accuracy: Double(accuracy.average)))
            i += 1
            if i < batches, stopRequested?() == true { return i }
        }
        return nil
    }

    /// Evaluation on `loader` (test transform, inference-mode BatchNormalization).
    public func validate(loader: BatchLoader, log: LogWriter?, epoch: Int? = nil,
                         onPredictions: ((_ labels: [Int], _ predicted: [Int]) -> Void)? = nil) throws -> (loss: Double, accuracy: Float) {
        try validate(loader: loader, log: log, epoch: epoch, stoppable: false, onPredictions: onPredictions)!
    }

    /// As `validate`; with `stoppable`, returns nil as soon as `stopRequested` says so.
    /// `onPredictions` receives each batch's labels and predicted classes (argmax of the fused
    /// logits, the prediction the accuracy counts).
    func validate(loader: BatchLoader, log: LogWriter?, epoch: Int?, stoppable: Bool,
                  onPredictions: ((_ labels: [Int], _ predicted: [Int]) -> Void)? = nil) throws -> (loss: Double, accuracy: Float)? {
        var losses = AverageMeter(), accuracy = AccuracyMeter()
        let reader = loader.epoch(0)
        defer { reader.cancel() }
        let batches = reader.batchCount
        var i = 0
        onProgress?(.status((epoch.map { "epoch \($0) (\($0 + 1) of \(options.recipe.epochs)): " } ?? "")
                            + "evaluating \(loader.dataset.count) test images in \(batches) batches"))
        while let batch = try reader.next() {
            if stoppable, stopRequested?() == true { return nil }
            let (local, global) = try predict(images: batch.images)
            let result = lossFunction.evaluate(logitsLocal: local, logitsGlobal: global, labels: batch.labels)
            if let onPredictions { onPredictions(batch.labels, lossFunction.predictions(logitsLocal: local, logitsGlobal: global)) }
            losses.update(Double(Float(result.loss)), count: batch.count)
            accuracy.update(correct: result.correct, batchSize: batch.count)
            if i % options.printFrequency == 0 {
                try log?.write(LogLine.progress(prefix: LogLine.testPrefix, batch: i, batches: batches, loss: losses, accuracy: accuracy))
            }
            onProgress?(.evaluating(epoch: epoch, epochs: options.recipe.epochs, step: i + 1, steps: batches, images: batch.count,
                                    loss: losses.average, accuracy: Double(accuracy.average)))
            i += 1
        }
        try log?.write(LogLine.testAccuracy(accuracy.average))
        return (losses.average, accuracy.average)
    }

    /// Trains from `epochsCompleted` (and `stepInEpoch` within it) to `options.recipe.epochs`,
    /// evaluating, drawing the curves and checkpointing after each epoch.
    ///
    /// Crash safety: the latest checkpoint is replaced atomically at the end of each epoch and
    /// records the log's length, so a run killed at any moment resumes from the last finished
    /// epoch and (after the log is cut back to that length) prints exactly the lines an
    /// uninterrupted run prints. When `stopRequested` turns true (SIGINT) the run stops after the
    /// current step, writes a checkpoint of that mid-epoch state and throws `interrupted`.
    public func run(train: BatchLoader, test: BatchLoader, log: LogWriter) throws {
        let batches = train.batchesPerEpoch
        while epochsCompleted < options.recipe.epochs {
            let epoch = epochsCompleted
            let start = Date()
            let lr = schedule.learningRate(epoch: epoch)
            optimizer.learningRate = lr
            if stepInEpoch == 0 { try log.write(LogLine.learningRate(lr)) }
            var losses = epochLoss, accuracy = epochAccuracy
            if stepInEpoch < batches {
                let stopped = try trainEpoch(epoch, from: stepInEpoch, loader: train, log: log,
                                             losses: &losses, accuracy: &accuracy)
                if let stopped { try stop(epoch: epoch, stepsDone: stopped, batches: batches, losses, accuracy, logLength: try log.length()) }
            }
            let trainedLength = try log.length()
            guard let tested = try validate(loader: test, log: log, epoch: epoch, stoppable: true) else {
                try stop(epoch: epoch, stepsDone: batches, batches: batches, losses, accuracy, logLength: trainedLength)
            }
            let (testLoss, testAccuracy) = tested
            let isBest = testAccuracy > bestAccuracy || bestEpoch < 0
            if isBest {
                bestAccuracy = max(testAccuracy, bestAccuracy)
                bestEpoch = epoch
            }
            try log.write(LogLine.bestAccuracy(bestAccuracy))
            epochsCompleted = epoch + 1
            stepInEpoch = 0
            epochLoss = AverageMeter()
            epochAccuracy = AccuracyMeter()
            let seconds = Date().timeIntervalSince(start)
            history.append(EpochRecord(epoch: epoch, learningRate: lr, trainLoss: losses.average, trainAccuracy: accuracy.average,
                                       testLoss: testLoss, testAccuracy: testAccuracy, seconds: seconds))
            if let path = log.path { try writeCurves(besideLog: path) }
            // The epoch's last line goes before the checkpoint, so that the log length the
            // checkpoint records covers the whole epoch.
            try log.write(LogLine.epochTime(Date().timeIntervalSince(start)))
            if let dir = options.checkpointDirectory {
                onProgress?(.status("epoch \(epoch) (\(epoch + 1) of \(options.recipe.epochs)): writing \(isBest ? "model_best.pb and " : "")checkpoint.pb"))
                var checkpoint = try makeCheckpoint()
                checkpoint.logLength = try log.length()
                // Best first: a kill between the two leaves the previous latest checkpoint, whose
                // resume redoes this epoch and writes both again.
                if isBest { try writeCheckpoint(checkpoint, to: dir + "/model_best.pb") }
                try writeCheckpoint(checkpoint, to: dir + "/checkpoint.pb")
            }
            if epochsCompleted < options.recipe.epochs, stopRequested?() == true {
                throw TrainingError.interrupted(epoch: epochsCompleted, stepsDone: 0, batches: batches,
                                                checkpoint: options.checkpointDirectory.map { $0 + "/checkpoint.pb" })
            }
        }
    }

    /// Saves the mid-epoch state (the latest checkpoint) and throws `interrupted`.
    private func stop(epoch: Int, stepsDone: Int, batches: Int, _ losses: AverageMeter, _ accuracy: AccuracyMeter,
                      logLength: UInt64) throws -> Never {
        stepInEpoch = stepsDone
        epochLoss = losses
        epochAccuracy = accuracy
        var path: String?
        if let dir = options.checkpointDirectory {
            onProgress?(.status("stopping: writing checkpoint.pb"))
            var checkpoint = try makeCheckpoint()
            checkpoint.logLength = logLength
            path = dir + "/checkpoint.pb"
            try writeCheckpoint(checkpoint, to: path!)
        }
        throw TrainingError.interrupted(epoch: epoch, stepsDone: stepsDone, batches: batches, checkpoint: path)
    }

    private func writeCheckpoint(_ checkpoint: TrainingCheckpoint, to path: String) throws {
        try checkpoint.write(to: path, beforeRename: beforeCheckpointRename.map { hook in { try hook(path) } })
    }

    /// `<log>.svg` beside the log: accuracy and loss per epoch, train and test, in two panels.
    func writeCurves(besideLog path: String) throws {
        let epochs = history.map { r -> EpochSummary in
            var e = EpochSummary(epoch: r.epoch)
            e.learningRate = r.learningRate
            e.trainLoss = r.trainLoss
            e.trainAccuracy = Double(r.trainAccuracy)
            e.testLoss = r.testLoss
            e.testAccuracy = Double(r.testAccuracy)
            e.seconds = r.seconds
            return e
        }
        let svgPath = URL(fileURLWithPath: path).deletingPathExtension().path + ".svg"
        let svg = TrainingCurves.svg([TrainingLog(source: path, epochs: epochs)], title: "MA-Net training: \(URL(fileURLWithPath: path).lastPathComponent)")
        do {
            try AtomicFile.write(Array(svg.utf8), to: svgPath)
        } catch let e as FileError {
            throw TrainingError.unwritablePath(svgPath, "cannot write the curves: \(e.reason)")
        }
    }

    // MARK: - Checkpoints

    /// The whole training state. Refuses to produce one from non-finite weights.
    public func makeCheckpoint() throws -> TrainingCheckpoint {
        var stateDict: [TensorData] = []
        var afterModule: [String: String] = [:]  // running_var name -> module, to place the counter as PyTorch does
        for module in roles.batchNormModules { afterModule[module + ".running_var"] = module }
        for data in model.graph.initializers {
            guard let value = executor.initializer(data.name) else { throw TrainingError.missingParameter(data.name) }
            if value.dtype == .float32, value.floats.contains(where: { !$0.isFinite }) {
                throw TrainingError.invalidCheckpoint("parameter \(data.name) holds NaN or infinity; not saving")
            }
            stateDict.append(value.tensorData(name: data.name))
            if let module = afterModule[data.name] {
                stateDict.append(TensorData(name: module + ".num_batches_tracked", dims: [], int64s: [batchesTracked[module] ?? 0]))
            }
        }
        let momentum = roles.trainable.compactMap { name -> TensorData? in
            guard let buffer = optimizer.momentumBuffers[name], let shape = executor.initializer(name)?.shape else { return nil }
            return TensorData(name: name, dims: shape, floats: buffer)
        }
        var recipe = options.recipe
        recipe.epochs = options.recipe.epochs
        var checkpoint = TrainingCheckpoint(
            width: options.width, numClasses: options.numClasses, inputSize: options.inputSize, beta: options.beta,
            classNames: classNames, stateDict: stateDict, momentumBuffers: momentum, epochsCompleted: epochsCompleted,
            learningRate: schedule.learningRate(epoch: epochsCompleted), bestAccuracy: bestAccuracy, bestEpoch: bestEpoch,
            history: history, seed: options.seed, dataSeed: dataSeed, generatorState: generator.stateWords, recipe: recipe)
        checkpoint.stepInEpoch = stepInEpoch
        checkpoint.epochLoss = epochLoss
        checkpoint.epochAccuracy = epochAccuracy
        return checkpoint
    }

    /// Sets every initializer, and the `num_batches_tracked` counters, from state_dict tensors
    /// (a checkpoint's, or a PyTorch state_dict read from safetensors).
    public func loadStateDict(_ tensors: [TensorData]) throws {
        var byName: [String: TensorData] = [:]
        for t in tensors { byName[t.name] = t }
        for data in model.graph.initializers {
            guard let stored = byName[data.name] else { throw TrainingError.checkpointMismatch("no tensor '\(data.name)'") }
            try executor.setInitializer(data.name, try Tensor(stored))
        }
        for module in roles.batchNormModules {
            batchesTracked[module] = byName[module + ".num_batches_tracked"]?.int64s?.first ?? 0
        }
    }

    /// Loads weights (and, with `resume`, the optimiser state, progress and generators).
    public func load(_ checkpoint: TrainingCheckpoint, resume: Bool) throws {
        guard checkpoint.width == options.width, checkpoint.numClasses == options.numClasses else {
            throw TrainingError.checkpointMismatch("it holds width \(checkpoint.width) with \(checkpoint.numClasses) classes, "
                + "this run has width \(options.width) with \(options.numClasses) classes")
        }
        guard checkpoint.inputSize == options.inputSize || !resume else {
            throw TrainingError.checkpointMismatch("it was trained at input size \(checkpoint.inputSize), this run uses \(options.inputSize)")
        }
        try loadStateDict(checkpoint.stateDict)
        guard resume else { return }
        optimizer.momentumBuffers = [:]
        for t in checkpoint.momentumBuffers {
            guard let values = t.floats else { throw TrainingError.invalidCheckpoint("momentum buffer \(t.name) is not float") }
            optimizer.momentumBuffers[t.name] = values
        }
        epochsCompleted = checkpoint.epochsCompleted
        bestAccuracy = checkpoint.bestAccuracy
        bestEpoch = checkpoint.bestEpoch
        history = checkpoint.history
        stepInEpoch = checkpoint.stepInEpoch
        epochLoss = checkpoint.epochLoss
        epochAccuracy = checkpoint.epochAccuracy
        if let g = Xoshiro256(stateWords: checkpoint.generatorState) { generator = g }
    }
}
