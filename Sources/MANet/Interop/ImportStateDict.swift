// Matches a PyTorch state_dict (from any source) against MA-Net's keys and shapes and makes a trainable checkpoint.

import ManetSupport
import ONNXIR
import Runtime

/// What the user may impose on an import; everything left `nil` is read from the source.
public struct ImportOptions: Sendable {
    /// Class count of the result. When it differs from the source's heads, `fc_1` and `fc_2`
    /// are re-initialised (the authors' fine-tuning from MS-Celeb does this).
    public var numClasses: Int?
    /// Stem width; when given, the source must have it (a mismatch lists the mis-shaped keys).
    public var width: Int?
    /// Input side stored in the checkpoint (default: the ONNX input's, else 224).
    public var inputSize: Int?
    /// Seed for re-initialised heads and for the checkpoint's generators.
    public var seed: UInt64 = 0
    /// Refuse a source whose tensors need more than this many bytes, before reading them
    /// (torch.save files; `nil`: no limit).
    public var maxBytes: Int?

    public init(numClasses: Int? = nil, width: Int? = nil, inputSize: Int? = nil, seed: UInt64 = 0, maxBytes: Int? = nil) {
        self.maxBytes = maxBytes
        self.numClasses = numClasses
        self.width = width
        self.inputSize = inputSize
        self.seed = seed
    }
}

/// A state_dict entry as a source declares it: its type and dims, and how to read its values,
/// which an import does only when it writes the entry (one tensor in memory at a time).
struct SourceTensor {
    var elementType: ElementType
    var dims: [Int]
    var load: () throws -> TensorData

    init(elementType: ElementType, dims: [Int], load: @escaping () throws -> TensorData) {
        self.elementType = elementType
        self.dims = dims
        self.load = load
    }

    /// An entry already in memory.
    init(_ tensor: TensorData) {
        self.init(elementType: tensor.elementType, dims: tensor.dims) { tensor }
    }
}

/// A state_dict as read from a file, before it is checked against MA-Net.
struct SourceStateDict {
    var file: String
    /// Tensors by state_dict key (a `module.` prefix already stripped by `normalisingPrefix`).
    var tensors: [String: SourceTensor]
    /// Keys in the order the source holds them (for stable messages).
    var order: [String]
    /// Whether `num_batches_tracked` counters are part of the format (ONNX has none).
    var carriesBatchCounters: Bool
    var inputSize: Int?
    var classNames: [String]?
    var beta: Double?
    /// Folded-BN sources: the module prefixes of the BatchNormalizations made identity.
    var identityBatchNorms: [String] = []
    /// Keys that the ONNX reader could not name (e.g. `onnx::Conv_12 (node /x/Conv)`).
    var unnamed: [String] = []

    init(file: String, tensors: [(String, TensorData)], carriesBatchCounters: Bool) {
        self.init(file: file, entries: tensors.map { ($0.0, SourceTensor($0.1)) }, carriesBatchCounters: carriesBatchCounters)
    }

    init(file: String, entries: [(String, SourceTensor)], carriesBatchCounters: Bool) {
        self.file = file
        self.tensors = [:]
        self.order = []
        self.carriesBatchCounters = carriesBatchCounters
        for (key, value) in entries where self.tensors[key] == nil {
            self.tensors[key] = value
            order.append(key)
        }
    }

    /// DataParallel saves every key as `module.<key>`: strip it when all keys carry it.
    mutating func normalisingPrefix() -> Bool {
        let prefix = "module."
        guard !order.isEmpty, order.allSatisfy({ $0.hasPrefix(prefix) }) else { return false }
        let stripped = order.map { String($0.dropFirst(prefix.count)) }
        var renamed: [String: SourceTensor] = [:]
        for (old, new) in zip(order, stripped) { renamed[new] = tensors[old] }
        tensors = renamed
        order = stripped
        return true
    }
}

/// The outcome of an import: the checkpoint and what was done to get it, for the user.
public struct ImportResult {
    public var checkpoint: TrainingCheckpoint
    /// One line per decision the user should know about (prefix stripped, BN made identity,
    /// heads re-initialised).
    public var notes: [String]
    /// The source's class count (its heads' rows) before any `--num-classes` change.
    public var sourceNumClasses: Int
}

/// What an import written straight to a file made (`ModelImporter.importModel(path:options:writingTo:)`).
public struct ImportSummary: Sendable {
    public var width: Int
    public var numClasses: Int
    public var inputSize: Int
    /// Entries of the written state_dict, and the floats among them.
    public var stateDictCount: Int
    public var floatCount: Int
    public var notes: [String]
    public var sourceNumClasses: Int
}

/// A checked import whose state_dict is still in its source: every key, shape and type has been
/// checked; the values are read (and checked finite) one tensor at a time, when they are written
/// or materialised.
struct ImportPlan {
    struct Entry {
        var name: String
        var dims: [Int]
        var isCounter: Bool
        var load: () throws -> TensorData
    }

    /// Everything but the state_dict (empty here).
    var checkpoint: TrainingCheckpoint
    var entries: [Entry]
    var notes: [String]
    var sourceNumClasses: Int

    /// The checkpoint with its state_dict in memory.
    func materialized() throws -> ImportResult {
        var c = checkpoint
        c.stateDict = try entries.map { try $0.load() }
        return ImportResult(checkpoint: c, notes: notes, sourceNumClasses: sourceNumClasses)
    }

    /// Writes the checkpoint to `path` (atomically, byte for byte what `materialized()`'s
    /// checkpoint writes) holding one tensor at a time.
    func write(to path: String) throws -> ImportSummary {
        try checkpoint.write(to: path, extraStateDict: entries.count) { try entries[$0].load() }
        let floats = entries.filter { !$0.isCounter }.reduce(0) { $0 + $1.dims.reduce(1, *) }
        return ImportSummary(width: checkpoint.width, numClasses: checkpoint.numClasses, inputSize: checkpoint.inputSize,
                             stateDictCount: entries.count, floatCount: floats, notes: notes, sourceNumClasses: sourceNumClasses)
    }
}

enum StateDictMatcher {
    /// MA-Net's eps for every BatchNormalization (PyTorch's default, also CBAM's BasicConv).
    static let batchNormEpsilon: Float = 1e-5

    static let floatTypes: Set<ElementType> = [.float, .double, .float16, .bfloat16]
    static let integerTypes: Set<ElementType> = [.int64, .int32, .int16, .int8, .uint64, .uint32, .uint16, .uint8, .bool]

    /// Reads width and class count from the source, checks every key, and builds the checkpoint.
    static func makeCheckpoint(_ source: SourceStateDict, options: ImportOptions) throws -> ImportResult {
        try plan(source, options: options).materialized()
    }

    /// Reads width and class count from the source and checks every key, shape and type against
    /// MA-Net's layout (no model is built: nothing is allocated for values).
    static func plan(_ source: SourceStateDict, options: ImportOptions) throws -> ImportPlan {
        var notes: [String] = []
        let width: Int
        if let conv1 = source.tensors["conv1.weight"], conv1.dims.count == 4 {
            width = options.width ?? conv1.dims[0]
        } else if let given = options.width {
            width = given
        } else {
            let found = source.order.prefix(5).joined(separator: ", ")
            throw ImportError.notMANet(file: source.file, reason:
                "missing conv1.weight (the stem convolution [width, 3, 7, 7] that gives MA-Net's width); "
                + "the file holds \(source.order.count) tensor(s)" + (found.isEmpty ? "" : ": \(found)")
                + (source.order.count > 5 ? ", ..." : ""))
        }
        let sourceClasses = source.tensors["fc_1.weight"].flatMap { $0.dims.count == 2 ? $0.dims[0] : nil }
            ?? options.numClasses ?? 7
        let targetClasses = options.numClasses ?? sourceClasses
        let inputSize = options.inputSize ?? source.inputSize ?? 224
        do {
            try MANetModel.validate(numClasses: sourceClasses, width: width, inputSize: inputSize)
            try MANetModel.validate(numClasses: targetClasses, width: width, inputSize: inputSize)
        } catch {
            throw ImportError.invalidOption("\(source.file): \(error)")
        }

        // The expected keys and shapes come from the builder itself, at the source's class count.
        let layout = try MANetModel.layout(numClasses: sourceClasses, width: width, inputSize: inputSize)
        var expected: [(key: String, dims: [Int], isCounter: Bool)] = []
        let counterAfter = Dictionary(uniqueKeysWithValues: layout.batchNormModules.map { ($0 + ".running_var", $0 + ".num_batches_tracked") })
        for t in layout.parameters {
            expected.append((t.name, t.dims, false))
            if let counter = counterAfter[t.name] { expected.append((counter, [], true)) }
        }

        var missing: [String] = []
        var misshaped: [ShapeMismatch] = []
        var entries: [ImportPlan.Entry] = []
        let file = source.file
        for e in expected {
            guard let found = source.tensors[e.key] else {
                if e.isCounter && !source.carriesBatchCounters {
                    let zero = TensorData(name: e.key, dims: [], int64s: [0])
                    entries.append(.init(name: e.key, dims: [], isCounter: true) { zero })
                } else {
                    missing.append(e.key)
                }
                continue
            }
            guard found.dims == e.dims else {
                misshaped.append(ShapeMismatch(key: e.key, found: found.dims, expected: e.dims))
                continue
            }
            if e.isCounter {
                guard integerTypes.contains(found.elementType) else {
                    throw ImportError.invalidTensor(file: file, key: e.key, reason: "a BatchNorm counter must be an integer, found \(found.elementType)")
                }
            } else {
                guard floatTypes.contains(found.elementType) else {
                    throw ImportError.invalidTensor(file: file, key: e.key, reason: "a parameter must be floating point, found \(found.elementType)")
                }
            }
            let key = e.key, dims = e.dims, isCounter = e.isCounter, load = found.load
            entries.append(.init(name: key, dims: dims, isCounter: isCounter) {
                try checkedValue(try load(), key: key, dims: dims, isCounter: isCounter, file: file)
            })
        }
        let expectedKeys = Set(expected.map(\.key))
        let unexpected = source.order.filter { !expectedKeys.contains($0) } + source.unnamed
        guard missing.isEmpty, unexpected.isEmpty, misshaped.isEmpty else {
            throw ImportError.keyMismatch(file: source.file, missing: missing, unexpected: unexpected, misshaped: misshaped)
        }

        if targetClasses != sourceClasses {
            // nn.Linear's default initialisation, as the authors' script gets by replacing the heads
            // (the values a fresh build at this seed gives them; the source's heads are not read).
            let headNames = Set(layout.parameters.map(\.name).filter { $0.hasPrefix("fc_1.") || $0.hasPrefix("fc_2.") })
            let fresh = try MANetModel.initialValues(of: headNames, numClasses: targetClasses, width: width,
                                                     inputSize: inputSize, seed: options.seed)
            let heads = Dictionary(uniqueKeysWithValues: fresh.map { ($0.name, $0) })
            entries = entries.map { entry in
                guard let head = heads[entry.name] else { return entry }
                return .init(name: head.name, dims: head.dims, isCounter: false) { head }
            }
            notes.append("the source has \(sourceClasses) classes; fc_1 and fc_2 were re-initialised for \(targetClasses) classes "
                         + "(nn.Linear's default U(-1/sqrt(\(8 * width)), 1/sqrt(\(8 * width))), seed \(options.seed))")
        }
        if !source.identityBatchNorms.isEmpty {
            notes.append("the source has BatchNormalization folded into its convolutions: the \(source.identityBatchNorms.count) "
                         + "BatchNorm layers were made identity (weight 1, bias = the folded conv bias, running_mean 0, "
                         + "running_var 1 - eps so that (x - 0) / sqrt(var + eps) = x exactly); the conv weights hold the folded values")
        }

        var classNames = source.classNames ?? []
        if classNames.count != targetClasses { classNames = (0..<targetClasses).map(String.init) }
        var generator = Xoshiro256(seed: options.seed)
        _ = generator.next()  // the model seed slot, as a fresh Trainer draws it
        let dataSeed = generator.next()
        let recipe = TrainingRecipe()
        let checkpoint = TrainingCheckpoint(
            width: width, numClasses: targetClasses, inputSize: inputSize, beta: source.beta ?? 0.6,
            classNames: classNames, stateDict: [], learningRate: recipe.learningRate,
            seed: options.seed, dataSeed: dataSeed, generatorState: generator.stateWords, recipe: recipe)
        return ImportPlan(checkpoint: checkpoint, entries: entries, notes: notes, sourceNumClasses: sourceClasses)
    }

    /// One source tensor as the checkpoint stores it: float32 (half, bfloat16 exactly, double
    /// only when exact) or int64, every float finite.
    static func checkedValue(_ found: TensorData, key: String, dims: [Int], isCounter: Bool, file: String) throws -> TensorData {
        guard found.dims == dims else {
            throw ImportError.invalidTensor(file: file, key: key, reason: "read as \(found.dims), declared \(dims)")
        }
        let value: Tensor
        do { value = try Tensor(found) } catch {
            throw ImportError.invalidTensor(file: file, key: key, reason: "\(error)")
        }
        if isCounter {
            guard value.dtype == .int64 else {
                throw ImportError.invalidTensor(file: file, key: key, reason: "a BatchNorm counter must be an integer, found \(found.elementType)")
            }
        } else {
            guard value.dtype == .float32 else {
                throw ImportError.invalidTensor(file: file, key: key, reason: "a parameter must be floating point, found \(found.elementType)")
            }
            if let bad = value.floats.firstIndex(where: { !$0.isFinite }) {
                throw ImportError.invalidTensor(file: file, key: key, reason: "value \(value.floats[bad]) at index \(bad) is not finite")
            }
        }
        return value.tensorData(name: key)
    }
}
