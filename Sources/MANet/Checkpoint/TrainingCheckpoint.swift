// The trainer's checkpoint in Swift, encoded through the C layer (proto/checkpoint.proto).

import _CONNX
import Foundation
import ONNXIR

/// One finished epoch: what the curves and the checkpoint history keep.
public struct EpochRecord: Equatable, Sendable {
    public var epoch: Int
    public var learningRate: Double
    public var trainLoss: Double
    public var trainAccuracy: Float
    public var testLoss: Double
    public var testAccuracy: Float
    public var seconds: Double

    public init(epoch: Int, learningRate: Double, trainLoss: Double, trainAccuracy: Float,
                testLoss: Double, testAccuracy: Float, seconds: Double) {
        self.epoch = epoch
        self.learningRate = learningRate
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.testLoss = testLoss
        self.testAccuracy = testAccuracy
        self.seconds = seconds
    }
}

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

    // MARK: - Encoding through the C layer

    private static func take(_ error: UnsafeMutablePointer<connx_error>?) -> String? {
        guard let error else { return nil }
        defer { connx_error_free(error) }
        return error.pointee.message.map { String(cString: $0) } ?? "out of memory"
    }

    private func makeHandle() throws -> OpaquePointer {
        var handle: OpaquePointer?
        if let message = Self.take(connx_checkpoint_new(&handle)) { throw TrainingError.invalidCheckpoint(message) }
        guard let handle else { throw TrainingError.invalidCheckpoint("out of memory") }
        do {
            var h = connx_checkpoint_header()
            h.width = Int32(width)
            h.num_classes = Int32(numClasses)
            h.input_size = Int32(inputSize)
            h.beta = beta
            h.epochs_completed = Int32(epochsCompleted)
            h.learning_rate = learningRate
            h.best_accuracy = bestAccuracy
            h.best_epoch = Int32(bestEpoch)
            h.seed = seed
            h.data_seed = dataSeed
            let words = generatorState + [UInt64](repeating: 0, count: max(0, 4 - generatorState.count))
            h.generator_state = (words[0], words[1], words[2], words[3])
            h.initial_learning_rate = recipe.learningRate
            h.momentum = recipe.momentum
            h.weight_decay = recipe.weightDecay
            h.step_size = Int32(recipe.stepSize)
            h.gamma = recipe.gamma
            h.batch_size = Int32(recipe.batchSize)
            h.epochs = Int32(recipe.epochs)
            h.augment = recipe.augment ? 1 : 0
            h.shuffle = recipe.shuffle ? 1 : 0
            h.step_in_epoch = Int32(stepInEpoch)
            h.loss_value = epochLoss.value
            h.loss_sum = epochLoss.sum
            h.loss_count = Int64(epochLoss.count)
            h.accuracy_value = epochAccuracy.value
            h.accuracy_sum = epochAccuracy.sum
            h.accuracy_count = Int64(epochAccuracy.count)
            h.log_length = logLength
            connx_checkpoint_set_header(handle, &h)
            for name in classNames {
                var bytes = Array(name.utf8)
                bytes.withUnsafeMutableBufferPointer { b in
                    b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, b.count)) {
                        connx_checkpoint_add_class_name(handle, connx_str(data: $0, length: b.count))
                    }
                }
                _ = bytes
            }
            for r in history {
                var e = connx_checkpoint_epoch(epoch: Int32(r.epoch), learning_rate: r.learningRate,
                                               train_loss: r.trainLoss, train_accuracy: r.trainAccuracy,
                                               test_loss: r.testLoss, test_accuracy: r.testAccuracy, seconds: r.seconds)
                connx_checkpoint_add_epoch(handle, &e)
            }
            try Self.add(stateDict, to: handle, list: CONNX_CHECKPOINT_STATE_DICT)
            try Self.add(momentumBuffers, to: handle, list: CONNX_CHECKPOINT_MOMENTUM)
        } catch {
            connx_checkpoint_free(handle)
            throw error
        }
        return handle
    }

    private static func add(_ tensors: [TensorData], to handle: OpaquePointer, list: connx_checkpoint_list) throws {
        for t in tensors {
            let nameBytes = Array(t.name.utf8) + [0]
            let dims = t.dims.map(Int64.init) + [0]
            let message: String? = nameBytes.withUnsafeBufferPointer { nameBuffer in
                dims.withUnsafeBufferPointer { dimBuffer in
                    t.bytes.withUnsafeBufferPointer { raw in
                        nameBuffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: nameBuffer.count) { name in
                            let rawPointer = UnsafeRawPointer(raw.baseAddress ?? UnsafePointer(nameBuffer.baseAddress!))
                            var c = connx_checkpoint_tensor(
                                name: connx_str(data: name, length: nameBuffer.count - 1),
                                data_type: t.elementType.rawValue,
                                dims: dimBuffer.baseAddress, rank: t.dims.count,
                                raw: connx_str(data: rawPointer.assumingMemoryBound(to: CChar.self), length: raw.count))
                            return take(connx_checkpoint_add_tensor(handle, list, &c))
                        }
                    }
                }
            }
            if let message { throw TrainingError.invalidCheckpoint(message) }
        }
    }

    private static func read(_ handle: OpaquePointer) throws -> TrainingCheckpoint {
        var h = connx_checkpoint_header()
        connx_checkpoint_get_header(handle, &h)
        func string(_ s: connx_str) -> String {
            guard let data = s.data else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: data, count: s.length), as: UTF8.self)
        }
        let classNames = (0..<connx_checkpoint_class_name_count(handle)).map { string(connx_checkpoint_class_name(handle, $0)) }
        let history = (0..<connx_checkpoint_epoch_count(handle)).map { i -> EpochRecord in
            var e = connx_checkpoint_epoch()
            connx_checkpoint_get_epoch(handle, i, &e)
            return EpochRecord(epoch: Int(e.epoch), learningRate: e.learning_rate, trainLoss: e.train_loss,
                               trainAccuracy: e.train_accuracy, testLoss: e.test_loss,
                               testAccuracy: e.test_accuracy, seconds: e.seconds)
        }
        func tensors(_ list: connx_checkpoint_list) throws -> [TensorData] {
            try (0..<connx_checkpoint_tensor_count(handle, list)).map { i in
                var t = connx_checkpoint_tensor()
                if let message = take(connx_checkpoint_get_tensor(handle, list, i, &t)) {
                    throw TrainingError.invalidCheckpoint(message)
                }
                guard let type = ElementType(rawValue: t.data_type) else {
                    throw TrainingError.invalidCheckpoint("tensor \(string(t.name)) has unknown type \(t.data_type)")
                }
                let dims = (0..<t.rank).map { Int(t.dims[$0]) }
                let bytes = t.raw.data.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: t.raw.length)) } ?? []
                return TensorData(name: string(t.name), elementType: type, dims: dims, bytes: bytes)
            }
        }
        var recipe = TrainingRecipe()
        recipe.learningRate = h.initial_learning_rate
        recipe.momentum = h.momentum
        recipe.weightDecay = h.weight_decay
        recipe.stepSize = Int(h.step_size)
        recipe.gamma = h.gamma
        recipe.batchSize = Int(h.batch_size)
        recipe.epochs = Int(h.epochs)
        recipe.augment = h.augment != 0
        recipe.shuffle = h.shuffle != 0
        let g = h.generator_state
        guard h.step_in_epoch >= 0, h.loss_count >= 0, h.accuracy_count >= 0 else {
            throw TrainingError.invalidCheckpoint("negative epoch position (step \(h.step_in_epoch))")
        }
        var checkpoint = TrainingCheckpoint(
            width: Int(h.width), numClasses: Int(h.num_classes), inputSize: Int(h.input_size), beta: h.beta,
            classNames: classNames, stateDict: try tensors(CONNX_CHECKPOINT_STATE_DICT),
            momentumBuffers: try tensors(CONNX_CHECKPOINT_MOMENTUM), epochsCompleted: Int(h.epochs_completed),
            learningRate: h.learning_rate, bestAccuracy: h.best_accuracy, bestEpoch: Int(h.best_epoch),
            history: history, seed: h.seed, dataSeed: h.data_seed, generatorState: [g.0, g.1, g.2, g.3],
            recipe: recipe)
        checkpoint.stepInEpoch = Int(h.step_in_epoch)
        checkpoint.epochLoss = AverageMeter(value: h.loss_value, sum: h.loss_sum, count: Int(h.loss_count))
        checkpoint.epochAccuracy = AccuracyMeter(value: h.accuracy_value, sum: h.accuracy_sum, count: Int(h.accuracy_count))
        checkpoint.logLength = h.log_length
        return checkpoint
    }

    /// The serialized checkpoint message.
    public func encoded() throws -> [UInt8] {
        let handle = try makeHandle()
        defer { connx_checkpoint_free(handle) }
        var out = connx_bytes()
        if let message = Self.take(connx_checkpoint_serialize(handle, &out)) { throw TrainingError.invalidCheckpoint(message) }
        defer { connx_bytes_free(out) }
        return out.data.map { [UInt8](UnsafeBufferPointer(start: $0, count: out.length)) } ?? []
    }

    public static func decode(_ bytes: [UInt8]) throws -> TrainingCheckpoint {
        var handle: OpaquePointer?
        let message = bytes.withUnsafeBytes { take(connx_checkpoint_parse($0.baseAddress, $0.count, &handle)) }
        if let message { throw TrainingError.invalidCheckpoint(message) }
        guard let handle else { throw TrainingError.invalidCheckpoint("no result") }
        defer { connx_checkpoint_free(handle) }
        return try read(handle)
    }

    /// Writes atomically (temporary file, fsync, rename): a crash leaves the old file intact.
    public func write(to path: String) throws {
        let handle = try makeHandle()
        defer { connx_checkpoint_free(handle) }
        if let message = Self.take(connx_checkpoint_write_file(handle, path)) {
            throw TrainingError.unwritablePath(path, message)
        }
    }

    /// Removes the temporary files (`<name>.tmp-<pid>`) that writes killed before their rename
    /// left in `folder`, for checkpoint names in `names`, and the empty write probes
    /// (`.manet-write-test-<pid>`) of runs killed while checking the folder; files of a live
    /// process are kept. Returns the paths removed. Readers never look at these names, so a
    /// leftover is harmless until then.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String, names: [String] = ["checkpoint.pb", "model_best.pb"]) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        let prefixes = names.map { $0 + ".tmp-" } + [writeProbePrefix]
        for entry in entries {
            for prefix in prefixes where entry.hasPrefix(prefix) {
                guard let pid = Int32(entry.dropFirst(prefix.count)) else { continue }
                if pid != getpid() && kill(pid, 0) == 0 { continue }  // a live writer's file
                let path = folder + "/" + entry
                if unlink(path) == 0 { removed.append(path) }
            }
        }
        return removed
    }

    /// Name prefix of the empty file `manet train` creates and removes to prove the checkpoint
    /// folder writable (followed by the process id).
    public static let writeProbePrefix = ".manet-write-test-"

    public static func read(path: String) throws -> TrainingCheckpoint {
        var handle: OpaquePointer?
        if let message = take(connx_checkpoint_read_file(path, &handle)) { throw TrainingError.invalidCheckpoint(message) }
        guard let handle else { throw TrainingError.invalidCheckpoint("\(path): no result") }
        defer { connx_checkpoint_free(handle) }
        return try read(handle)
    }
}
