// What every operator is: attributes parsed at load, shape inference, forward, backward.

import ONNXIR

/// How a graph is being run; handed to every operator call: training mode and the run's
/// `RuntimeOptions` (threads, determinism, algorithm and kernel choices).
public struct ExecutionContext: Sendable {
    /// Training mode: BatchNormalization uses batch statistics (and reports running-stat
    /// updates), Dropout stays the identity, and forward keeps what backward needs.
    public var training: Bool
    /// Every choice of the run; operators pass `options.kernels` on to the kernels.
    public var options: RuntimeOptions
    /// Intra-op threads for kernels (`options.threads`).
    public var threads: Int {
        get { options.threads }
        set { options.threads = max(1, newValue) }
    }
    /// Same bits run to run (`options.deterministic`).
    public var deterministic: Bool {
        get { options.deterministic }
        set { options.deterministic = newValue }
    }

    public init(training: Bool = false, threads: Int = ExecutionContext.defaultThreads, deterministic: Bool = false) {
        self.training = training
        options = RuntimeOptions(threads: threads, deterministic: deterministic)
    }

    public init(training: Bool = false, options: RuntimeOptions) {
        self.training = training
        self.options = options
    }

    public static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

import Foundation

/// What a forward call produced.
public struct ForwardResult {
    /// One tensor per node output, in order.
    public var outputs: [Tensor]
    /// Anything backward needs beyond the inputs and outputs (argmax indices, batch
    /// statistics, ...). The executor keeps it only in training mode.
    public var saved: Any?
    /// New values for stateful inputs, by input index: BatchNormalization's running mean and
    /// variance in training mode. The executor writes them back to the initializers.
    public var stateUpdates: [Int: Tensor]
    /// Which of this call's tensors its backward reads; the record keeps only those.
    public var backwardReads: BackwardReads

    public init(_ outputs: [Tensor], saved: Any? = nil, stateUpdates: [Int: Tensor] = [:],
                backwardReads: BackwardReads = .everything) {
        self.outputs = outputs
        self.saved = saved
        self.stateUpdates = stateUpdates
        self.backwardReads = backwardReads
    }
}

/// Which tensors of a forward call its backward reads the elements of. The training record
/// keeps only these (and every input's shape and type), so an activation is freed as soon as
/// neither a later forward step nor a pending backward needs it: e.g. the pre-activation
/// input of a Relu, whose backward reads only its output.
public struct BackwardReads: Sendable, Equatable {
    /// Input indices whose tensors backward reads; nil: every input.
    public var inputs: [Int]?
    /// Whether backward reads the outputs.
    public var outputs: Bool

    public init(inputs: [Int]?, outputs: Bool) {
        self.inputs = inputs
        self.outputs = outputs
    }

    public static let everything = BackwardReads(inputs: nil, outputs: true)
    /// The inputs, not the outputs (Conv, BatchNormalization, Mul).
    public static let inputs = BackwardReads(inputs: nil, outputs: false)
    /// The outputs, not the inputs (Relu, Sigmoid).
    public static let outputs = BackwardReads(inputs: [], outputs: true)
    /// Neither: input shapes (and `saved`) are enough (Add without broadcasting, pooling with saved argmax).
    public static let shapes = BackwardReads(inputs: [], outputs: false)
}

/// A forward call as backward sees it.
public struct ForwardRecord {
    /// The inputs backward reads (nil for an omitted input, or one the forward said backward
    /// does not read: see `BackwardReads`).
    public var inputs: [Tensor?]
    /// The outputs, or none when backward does not read them.
    public var outputs: [Tensor]
    public var saved: Any?
    /// Shape and element type of every input given (nil for an omitted one), kept when the tensor is not.
    public let inputShapes: [[Int]?]
    public let inputTypes: [DType?]

    /// A record of everything the call saw.
    public init(inputs: [Tensor?], outputs: [Tensor], saved: Any?) {
        self.init(inputs: inputs, outputs: outputs, saved: saved, keeping: .everything)
    }

    /// A record of what `reads` names, plus every input's shape and type.
    public init(inputs: [Tensor?], outputs: [Tensor], saved: Any?, keeping reads: BackwardReads) {
        inputShapes = inputs.map { $0?.shape }
        inputTypes = inputs.map { $0?.dtype }
        if let kept = reads.inputs {
            self.inputs = inputs.indices.map { kept.contains($0) ? inputs[$0] : nil }
        } else {
            self.inputs = inputs
        }
        self.outputs = reads.outputs ? outputs : []
        self.saved = saved
    }
}

/// Static knowledge about a value during shape inference: its type, its dims (`nil` = unknown
/// dim; `dims == nil` = unknown rank) and, when it is a constant, the value itself (so that
/// Reshape, Slice, ... can infer through shape arithmetic).
public struct ValueShape: Equatable, Sendable {
    public var dtype: DType
    public var dims: [Int?]?
    public var constant: Tensor?

    public init(dtype: DType, dims: [Int?]?, constant: Tensor? = nil) {
        self.dtype = dtype
        self.dims = dims
        self.constant = constant
    }

    public init(_ tensor: Tensor) {
        self.init(dtype: tensor.dtype, dims: tensor.shape.map { $0 }, constant: tensor)
    }
}

/// One ONNX operator, configured for one node. An operator lives in one file that holds its
/// attribute parsing (in `init`), shape inference, forward and backward, side by side.
public protocol Operator {
    /// Parses and validates every attribute of `node` for opset `opset`; an unknown attribute
    /// or unsupported value throws `RuntimeError.invalidAttribute` naming the node.
    init(node: Node, opset: Int64) throws

    /// Output types and shapes from input types and shapes (`nil` for an omitted input).
    func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape]

    /// Computes the outputs (`nil` inputs are omitted optional inputs).
    func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult

    /// Gradients of the loss with respect to each input, given those with respect to each
    /// output (`nil` = zero / not needed). Returns one entry per input; `nil` where the input
    /// is not differentiable or `needsGradient[i]` is false.
    func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                  _ context: ExecutionContext) throws -> [Tensor?]
}

extension Operator {
    /// Operators without a backward (shape arithmetic, Constant, ...) say so when asked.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        if needsGradient.contains(true) {
            throw RuntimeError.invalidGraph("\(Self.self) has no backward, but a gradient flows through it")
        }
        return record.inputs.map { _ in nil }
    }
}

/// Reads a node's attributes, remembering which were read so that `finish()` can reject
/// unknown ones: every operator's `init` reads what it knows, then calls `finish()`.
public struct AttributeReader {
    public let node: Node
    private var consumed: Set<String> = []

    public init(_ node: Node) { self.node = node }

    private func invalid(_ name: String, _ reason: String) -> RuntimeError {
        .invalidAttribute(node: node.name, opType: node.opType, attribute: name, reason: reason)
    }

    private mutating func value(_ name: String) -> AttributeValue? {
        consumed.insert(name)
        return node.attribute(name)
    }

    public mutating func has(_ name: String) -> Bool {
        node.attribute(name) != nil
    }

    public mutating func int(_ name: String) throws -> Int? {
        guard let v = value(name) else { return nil }
        guard case .int(let i) = v else { throw invalid(name, "expected INT, got \(v.kindName)") }
        guard let n = Int(exactly: i) else { throw invalid(name, "value \(i) out of range") }
        return n
    }

    public mutating func int(_ name: String, default d: Int) throws -> Int { try int(name) ?? d }

    public mutating func ints(_ name: String) throws -> [Int]? {
        guard let v = value(name) else { return nil }
        guard case .ints(let list) = v else { throw invalid(name, "expected INTS, got \(v.kindName)") }
        return list.map { Int($0) }
    }

    public mutating func float(_ name: String) throws -> Float? {
        guard let v = value(name) else { return nil }
        guard case .float(let f) = v else { throw invalid(name, "expected FLOAT, got \(v.kindName)") }
        return f
    }

    public mutating func float(_ name: String, default d: Float) throws -> Float { try float(name) ?? d }

    public mutating func floats(_ name: String) throws -> [Float]? {
        guard let v = value(name) else { return nil }
        guard case .floats(let list) = v else { throw invalid(name, "expected FLOATS, got \(v.kindName)") }
        return list
    }

    public mutating func string(_ name: String) throws -> String? {
        guard let v = value(name) else { return nil }
        guard case .string(let bytes) = v else { throw invalid(name, "expected STRING, got \(v.kindName)") }
        return String(decoding: bytes, as: UTF8.self)
    }

    public mutating func string(_ name: String, default d: String) throws -> String { try string(name) ?? d }

    public mutating func tensor(_ name: String) throws -> TensorData? {
        guard let v = value(name) else { return nil }
        guard case .tensor(let t) = v else { throw invalid(name, "expected TENSOR, got \(v.kindName)") }
        return t
    }

    /// Throws for a value outside what the operator supports.
    public func fail(_ name: String, _ reason: String) -> RuntimeError { invalid(name, reason) }

    /// Throws if the node carries an attribute no `read` call asked for.
    public func finish() throws {
        for a in node.attributes where !consumed.contains(a.name) {
            throw invalid(a.name, "unknown attribute for \(node.opType)")
        }
    }
}
