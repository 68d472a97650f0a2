// The trainer's checkpoint message (proto/checkpoint.proto) as Swift values, encoded and decoded
// through the C layer. MANet's `TrainingCheckpoint` gives these fields their meaning; this file
// only moves them across the protobuf boundary, so that only ONNXFormat knows protobuf.

import _CONNX
import ManetSupport
import ONNXIR

/// Every field of a `manet.Checkpoint` message. Tensors are stored as ONNX TensorProtos (float
/// or int64, raw little-endian bytes), named by their state_dict key.
public struct CheckpointMessage: Equatable, Sendable {
    /// One finished epoch of the history.
    public struct Epoch: Equatable, Sendable {
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

    public var width = 0
    public var numClasses = 0
    public var inputSize = 0
    public var beta = 0.0
    public var classNames: [String] = []
    public var stateDict: [TensorData] = []
    public var momentumBuffers: [TensorData] = []
    public var epochsCompleted = 0
    public var learningRate = 0.0
    public var bestAccuracy: Float = 0
    public var bestEpoch = 0
    public var history: [Epoch] = []
    public var seed: UInt64 = 0
    public var dataSeed: UInt64 = 0
    /// xoshiro256** state; all zero when absent.
    public var generatorState: [UInt64] = [0, 0, 0, 0]
    public var initialLearningRate = 0.0
    public var momentum = 0.0
    public var weightDecay = 0.0
    public var stepSize = 0
    public var gamma = 0.0
    public var batchSize = 0
    public var epochs = 0
    public var augment = false
    public var shuffle = false
    /// Mid-epoch position: steps taken in epoch `epochsCompleted` and the meters' state.
    public var stepInEpoch = 0
    public var lossValue = 0.0
    public var lossSum = 0.0
    public var lossCount = 0
    public var accuracyValue: Float = 0
    public var accuracySum: Float = 0
    public var accuracyCount = 0
    /// Bytes of the log file when the checkpoint was written (0: unknown).
    public var logLength: UInt64 = 0

    public init() {}

    /// The serialized message. Fails if a tensor's bytes disagree with its dims or type, or the
    /// message exceeds protobuf's 2 GB limit; the error's `reason` says which.
    public func encoded() throws -> [UInt8] {
        let handle = try makeHandle()
        defer { connx_checkpoint_free(handle) }
        var out = connx_bytes()
        if let message = takeMessage(connx_checkpoint_serialize(handle, &out)) { throw FileError(file: "<checkpoint>", reason: message) }
        return takeBytes(out)
    }

    /// The bytes of `encoded()`, handed to `sink` piece by piece so that the message is never
    /// whole in memory: the fields before the state_dict, each entry of `stateDict` and then
    /// `extraStateDict` more asked of `tensor` one at a time (each is released before the next
    /// is asked for), the momentum buffers, the rest. An error from `tensor` or `sink` stops the
    /// encoding and is rethrown as is.
    public func encode(extraStateDict: Int = 0, tensor: (Int) throws -> TensorData = { _ in fatalError("no extra tensors") },
                       into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var frame = self
        frame.stateDict = []
        frame.momentumBuffers = []
        let handle = try frame.makeHandle()
        defer { connx_checkpoint_free(handle) }
        var head = connx_bytes(), tail = connx_bytes()
        if let message = takeMessage(connx_checkpoint_serialize_frame(handle, &head, &tail)) {
            throw FileError(file: "<checkpoint>", reason: message)
        }
        defer { connx_bytes_free(head); connx_bytes_free(tail) }
        var total = head.length + tail.length
        func put(_ bytes: connx_bytes) throws {
            guard let data = bytes.data, bytes.length > 0 else { return }
            try sink(UnsafeRawBufferPointer(start: data, count: bytes.length))
        }
        func put(_ t: TensorData, _ list: connx_checkpoint_list) throws {
            let entry = try Self.encodeEntry(t, list: list)
            defer { connx_bytes_free(entry) }
            total += entry.length
            guard total <= Int(Int32.max) else { throw FileError(file: "<checkpoint>", reason: "the checkpoint exceeds protobuf's 2 GB limit") }
            try put(entry)
        }
        try put(head)
        for t in stateDict { try put(t, CONNX_CHECKPOINT_STATE_DICT) }
        for i in 0..<extraStateDict { try put(try tensor(i), CONNX_CHECKPOINT_STATE_DICT) }
        for t in momentumBuffers { try put(t, CONNX_CHECKPOINT_MOMENTUM) }
        try put(tail)
    }

    private static func encodeEntry(_ t: TensorData, list: connx_checkpoint_list) throws -> connx_bytes {
        let arena = StringArena()
        let dims = t.dims.map(Int64.init) + [0]
        var out = connx_bytes()
        let message: String? = dims.withUnsafeBufferPointer { dimBuffer in
            t.bytes.withUnsafeBytes { raw in
                var c = connx_checkpoint_tensor(name: arena.str(t.name), data_type: t.elementType.rawValue,
                                                dims: dimBuffer.baseAddress, rank: t.dims.count,
                                                raw: connx_str(data: raw.baseAddress?.assumingMemoryBound(to: CChar.self), length: raw.count))
                return takeMessage(connx_checkpoint_encode_tensor(list, &c, &out))
            }
        }
        if let message { throw FileError(file: "<checkpoint>", reason: message) }
        return out
    }

    /// Parses a serialized checkpoint (`file` names it in errors) and checks every stored tensor:
    /// a TensorProto with a name, a float or int64 type, and raw bytes matching its dims.
    public static func decode(_ bytes: [UInt8], file: String = "<checkpoint>") throws -> CheckpointMessage {
        var handle: OpaquePointer?
        let message = bytes.withUnsafeBytes { takeMessage(connx_checkpoint_parse($0.baseAddress, $0.count, &handle)) }
        if let message { throw FileError(file: file, reason: message) }
        guard let handle else { throw FileError(file: file, reason: "no result") }
        defer { connx_checkpoint_free(handle) }
        return try read(handle, file: file)
    }

    private func makeHandle() throws -> OpaquePointer {
        var handle: OpaquePointer?
        if let message = takeMessage(connx_checkpoint_new(&handle)) { throw FileError(file: "<checkpoint>", reason: message) }
        guard let handle else { throw FileError(file: "<checkpoint>", reason: "out of memory") }
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
            h.initial_learning_rate = initialLearningRate
            h.momentum = momentum
            h.weight_decay = weightDecay
            h.step_size = Int32(stepSize)
            h.gamma = gamma
            h.batch_size = Int32(batchSize)
            h.epochs = Int32(epochs)
            h.augment = augment ? 1 : 0
            h.shuffle = shuffle ? 1 : 0
            h.step_in_epoch = Int32(stepInEpoch)
            h.loss_value = lossValue
            h.loss_sum = lossSum
            h.loss_count = Int64(lossCount)
            h.accuracy_value = accuracyValue
            h.accuracy_sum = accuracySum
            h.accuracy_count = Int64(accuracyCount)
            h.log_length = logLength
            connx_checkpoint_set_header(handle, &h)
            let arena = StringArena()
            for name in classNames { connx_checkpoint_add_class_name(handle, arena.str(name)) }
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
            let arena = StringArena()
            let dims = t.dims.map(Int64.init) + [0]
            let message: String? = dims.withUnsafeBufferPointer { dimBuffer in
                var c = connx_checkpoint_tensor(name: arena.str(t.name), data_type: t.elementType.rawValue,
                                                dims: dimBuffer.baseAddress, rank: t.dims.count, raw: arena.str(t.bytes))
                return takeMessage(connx_checkpoint_add_tensor(handle, list, &c))
            }
            if let message { throw FileError(file: "<checkpoint>", reason: message) }
        }
    }

    private static func read(_ handle: OpaquePointer, file: String) throws -> CheckpointMessage {
        var h = connx_checkpoint_header()
        connx_checkpoint_get_header(handle, &h)
        var m = CheckpointMessage()
        m.width = Int(h.width)
        m.numClasses = Int(h.num_classes)
        m.inputSize = Int(h.input_size)
        m.beta = h.beta
        m.classNames = (0..<connx_checkpoint_class_name_count(handle)).map { connx_checkpoint_class_name(handle, $0).string }
        m.history = (0..<connx_checkpoint_epoch_count(handle)).map { i -> Epoch in
            var e = connx_checkpoint_epoch()
            connx_checkpoint_get_epoch(handle, i, &e)
            return Epoch(epoch: Int(e.epoch), learningRate: e.learning_rate, trainLoss: e.train_loss,
                         trainAccuracy: e.train_accuracy, testLoss: e.test_loss, testAccuracy: e.test_accuracy, seconds: e.seconds)
        }
        func tensors(_ list: connx_checkpoint_list) throws -> [TensorData] {
            try (0..<connx_checkpoint_tensor_count(handle, list)).map { i in
                var t = connx_checkpoint_tensor()
                if let message = takeMessage(connx_checkpoint_get_tensor(handle, list, i, &t)) {
                    throw FileError(file: file, reason: message)
                }
                guard let type = ElementType(rawValue: t.data_type) else {
                    throw FileError(file: file, reason: "tensor \(t.name.string) has unknown type \(t.data_type)")
                }
                let dims = (0..<t.rank).map { Int(t.dims[$0]) }
                return TensorData(name: t.name.string, elementType: type, dims: dims, bytes: t.raw.bytes)
            }
        }
        m.stateDict = try tensors(CONNX_CHECKPOINT_STATE_DICT)
        m.momentumBuffers = try tensors(CONNX_CHECKPOINT_MOMENTUM)
        m.epochsCompleted = Int(h.epochs_completed)
        m.learningRate = h.learning_rate
        m.bestAccuracy = h.best_accuracy
        m.bestEpoch = Int(h.best_epoch)
        m.seed = h.seed
        m.dataSeed = h.data_seed
        let g = h.generator_state
        m.generatorState = [g.0, g.1, g.2, g.3]
        m.initialLearningRate = h.initial_learning_rate
        m.momentum = h.momentum
        m.weightDecay = h.weight_decay
        m.stepSize = Int(h.step_size)
        m.gamma = h.gamma
        m.batchSize = Int(h.batch_size)
        m.epochs = Int(h.epochs)
        m.augment = h.augment != 0
        m.shuffle = h.shuffle != 0
        m.stepInEpoch = Int(h.step_in_epoch)
        m.lossValue = h.loss_value
        m.lossSum = h.loss_sum
        m.lossCount = Int(h.loss_count)
        m.accuracyValue = h.accuracy_value
        m.accuracySum = h.accuracy_sum
        m.accuracyCount = Int(h.accuracy_count)
        m.logLength = h.log_length
        return m
    }
}
