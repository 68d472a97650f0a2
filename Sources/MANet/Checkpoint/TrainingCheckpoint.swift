// The trainer's checkpoint in Swift; ONNXFormat's `CheckpointMessage` encodes it (proto/checkpoint.proto).

import Foundation
import ManetSupport
import ONNXFormat
import ONNXIR

/// One finished epoch: what the curves and the checkpoint history keep (stored as is).
public typealias EpochRecord = CheckpointMessage.Epoch

/// The optimiser and schedule a run was started with.
public struct TrainingRecipe: Equatable, Sendable {
    public var learningRate = 0.01
    public var momentum = 0.9
    public var weightDecay = 1e-4
    public var stepSize = 15
    public var gamma = 0.1
    public var batchSize = 128
    public var epochs = 100
    public var augment = true
    public var shuffle = true

    public init() {}
}

/// Everything needed to continue a run exactly, or to evaluate / export its model.
public struct TrainingCheckpoint: Equatable, Sendable {
    public var width: Int
    public var numClasses: Int
    public var inputSize: Int
    public var beta: Double
    public var classNames: [String]
    /// The PyTorch state_dict: parameters, running statistics (float) and
    /// `num_batches_tracked` (int64 scalars), named by state_dict key.
    public var stateDict: [TensorData]
    /// SGD momentum buffers, named as their parameter.
    public var momentumBuffers: [TensorData]
    public var epochsCompleted: Int
    /// The rate the next epoch will use.
    public var learningRate: Double
    public var bestAccuracy: Float
    public var bestEpoch: Int
    public var history: [EpochRecord]
    public var seed: UInt64
    public var dataSeed: UInt64
    public var generatorState: [UInt64]
    public var recipe: TrainingRecipe
    /// Training steps already taken in epoch `epochsCompleted` (0 at an epoch boundary; set
    /// when a run is interrupted mid-epoch) and the epoch's meters at that point.
    public var stepInEpoch = 0
    public var epochLoss = AverageMeter()
    public var epochAccuracy = AccuracyMeter()
    /// Bytes of the log file when this checkpoint was written (0: unknown).
    public var logLength: UInt64 = 0

    public init(width: Int, numClasses: Int, inputSize: Int, beta: Double, classNames: [String],
                stateDict: [TensorData], momentumBuffers: [TensorData] = [], epochsCompleted: Int = 0,
                learningRate: Double, bestAccuracy: Float = 0, bestEpoch: Int = -1, history: [EpochRecord] = [],
                seed: UInt64, dataSeed: UInt64, generatorState: [UInt64], recipe: TrainingRecipe) {
        self.width = width
        self.numClasses = numClasses
        self.inputSize = inputSize
        self.beta = beta
        self.classNames = classNames
        self.stateDict = stateDict
        self.momentumBuffers = momentumBuffers
        self.epochsCompleted = epochsCompleted
        self.learningRate = learningRate
        self.bestAccuracy = bestAccuracy
        self.bestEpoch = bestEpoch
        self.history = history
        self.seed = seed
        self.dataSeed = dataSeed
        self.generatorState = generatorState
        self.recipe = recipe
    }

    /// The state_dict entry called `name`.
    public func tensor(_ name: String) -> TensorData? { stateDict.first { $0.name == name } }

    // MARK: - Encoding (through ONNXFormat's CheckpointMessage)

    /// The message this checkpoint is stored as.
    var message: CheckpointMessage {
        var m = CheckpointMessage()
        m.width = width
        m.numClasses = numClasses
        m.inputSize = inputSize
        m.beta = beta
        m.classNames = classNames
        m.stateDict = stateDict
        m.momentumBuffers = momentumBuffers
        m.epochsCompleted = epochsCompleted
        m.learningRate = learningRate
        m.bestAccuracy = bestAccuracy
        m.bestEpoch = bestEpoch
        m.history = history
        m.seed = seed
        m.dataSeed = dataSeed
        m.generatorState = generatorState
        m.initialLearningRate = recipe.learningRate
        m.momentum = recipe.momentum
        m.weightDecay = recipe.weightDecay
        m.stepSize = recipe.stepSize
        m.gamma = recipe.gamma
        m.batchSize = recipe.batchSize
        m.epochs = recipe.epochs
        m.augment = recipe.augment
        m.shuffle = recipe.shuffle
        m.stepInEpoch = stepInEpoch
        m.lossValue = epochLoss.value
        m.lossSum = epochLoss.sum
        m.lossCount = epochLoss.count
        m.accuracyValue = epochAccuracy.value
        m.accuracySum = epochAccuracy.sum
        m.accuracyCount = epochAccuracy.count
        m.logLength = logLength
        return m
    }

    init(message m: CheckpointMessage) throws {
        guard m.stepInEpoch >= 0, m.lossCount >= 0, m.accuracyCount >= 0 else {
            throw TrainingError.invalidCheckpoint("negative epoch position (step \(m.stepInEpoch))")
        }
        var recipe = TrainingRecipe()
        recipe.learningRate = m.initialLearningRate
        recipe.momentum = m.momentum
        recipe.weightDecay = m.weightDecay
        recipe.stepSize = m.stepSize
        recipe.gamma = m.gamma
        recipe.batchSize = m.batchSize
        recipe.epochs = m.epochs
        recipe.augment = m.augment
        recipe.shuffle = m.shuffle
        self.init(width: m.width, numClasses: m.numClasses, inputSize: m.inputSize, beta: m.beta,
                  classNames: m.classNames, stateDict: m.stateDict, momentumBuffers: m.momentumBuffers,
                  epochsCompleted: m.epochsCompleted, learningRate: m.learningRate, bestAccuracy: m.bestAccuracy,
                  bestEpoch: m.bestEpoch,
                  history: m.history,
                  seed: m.seed, dataSeed: m.dataSeed, generatorState: m.generatorState, recipe: recipe)
        stepInEpoch = m.stepInEpoch
        epochLoss = AverageMeter(value: m.lossValue, sum: m.lossSum, count: m.lossCount)
        epochAccuracy = AccuracyMeter(value: m.accuracyValue, sum: m.accuracySum, count: m.accuracyCount)
        logLength = m.logLength
    }

    /// The serialized checkpoint message.
    public func encoded() throws -> [UInt8] {
        do {
            return try message.encoded()
        } catch let e as FileError {
            throw TrainingError.invalidCheckpoint(e.reason)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> TrainingCheckpoint {
        do {
            return try TrainingCheckpoint(message: try CheckpointMessage.decode(bytes))
        } catch let e as FileError {
            throw TrainingError.invalidCheckpoint(e.reason)
        }
    }

    /// Writes atomically (`AtomicFile`: temporary file, fsync, rename, fsync of the folder): a
    /// crash leaves the old file or the new one, never a torn file. `beforeRename` runs when the
    /// temporary file is complete, just before the rename (tests kill a process there, or throw
    /// to play a crash; the error is rethrown as it is).
    /// The bytes are `encoded()`'s, written as they are made, one tensor at a time: the file's
    /// content is never a second time in memory.
    public func write(to path: String, beforeRename: (() throws -> Void)? = nil) throws {
        try write(to: path, beforeRename: beforeRename, extraStateDict: 0) { _ in fatalError("no extra tensors") }
    }

    /// `write(to:)` for a checkpoint whose state_dict is appended from `tensor(0..<extraStateDict)`,
    /// each asked for when it is written: an import streams its source this way. An error from
    /// `tensor` leaves `path` as it was.
    func write(to path: String, beforeRename: (() throws -> Void)? = nil, extraStateDict: Int,
               tensor: (Int) throws -> TensorData) throws {
        do {
            try AtomicFile.write(to: path, beforeRename: beforeRename) { fd in
                try message.encode(extraStateDict: extraStateDict, tensor: tensor) { piece in
                    try AtomicFile.writeAll(piece, to: fd, path: path)
                }
            }
        } catch let e as FileError {
            // The encoder's own failures name "<checkpoint>"; a write failure names the path.
            if e.file == "<checkpoint>" { throw TrainingError.invalidCheckpoint(e.reason) }
            throw TrainingError.unwritablePath(path, e.reason)
        }
    }

    /// Removes the temporary files (`<name>.tmp-<pid>`) that writes killed before their rename
    /// left in `folder`, for checkpoint names in `names`, and the empty write probes
    /// (`.manet-write-test-<pid>`) of runs killed while checking the folder; files of a live
    /// process are kept. Returns the paths removed. Readers never look at these names, so a
    /// leftover is harmless until then.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String, names: [String] = ["checkpoint.pb", "model_best.pb"]) -> [String] {
        AtomicFile.staleFiles(in: folder, prefixes: names.map(AtomicFile.temporaryPrefix(for:)) + [writeProbePrefix])
            .filter { unlink($0) == 0 }
    }

    /// Name prefix of the empty file `manet train` creates and removes to prove the checkpoint
    /// folder writable (followed by the process id).
    public static let writeProbePrefix = ".manet-write-test-"

    public static func read(path: String) throws -> TrainingCheckpoint {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path)
        } catch let e as FileError {
            throw TrainingError.invalidCheckpoint(e.reason)
        }
        do {
            return try TrainingCheckpoint(message: try CheckpointMessage.decode(bytes, file: path))
        } catch let e as FileError {
            throw TrainingError.invalidCheckpoint("\(path): \(e.reason)")
        }
    }
}
