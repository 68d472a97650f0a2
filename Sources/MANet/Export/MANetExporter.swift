// `manet export`: a checkpoint -> the inference graph as ONNX (checked, shape-inferred, written atomically) or a safetensors state_dict.

import Foundation
import ONNXFormat
import ONNXIR

public enum ExportError: Error, Equatable, CustomStringConvertible {
    case unsupportedOpset(Int)
    case invalidModel(String)

    public var description: String {
        switch self {
        case .unsupportedOpset(let v):
            return "opset \(v) is not supported for export: choose \(MANetExporter.supportedOpsets.lowerBound) to "
                + "\(MANetExporter.supportedOpsets.upperBound) (the forms of Split, ReduceMax/ReduceMean and Unsqueeze "
                + "the graph uses are those of opsets 13..17; 18 moved Reduce axes to an input)"
        case .invalidModel(let s): return s
        }
    }
}

public struct ExportOptions: Sendable {
    public var opset = 17
    /// Adds `logits` (beta * local + (1 - beta) * global) and `probabilities` (its softmax).
    public var fused = false
    /// Folds every BatchNormalization into its convolution (see `BatchNormFolding`).
    public var foldBatchNorm = false
    /// Writes initializers of 1 KB and more to `<file>.data`.
    public var externalData = false

    public init(opset: Int = 17, fused: Bool = false, foldBatchNorm: Bool = false, externalData: Bool = false) {
        self.opset = opset
        self.fused = fused
        self.foldBatchNorm = foldBatchNorm
        self.externalData = externalData
    }
}

/// Builds the inference graph from a checkpoint: the same MA-Net builder the trainer runs, with
/// the checkpoint's parameters and BatchNorm running statistics as initializers.
public enum MANetExporter {
    public static let supportedOpsets = 13...17
    /// `producer_version` of exported files.
    public static let toolkitVersion = "0.1.0"

    /// Checks that `checkpoint` holds every MA-Net tensor with the right shape, listing all problems.
    public static func checkStateDict(_ checkpoint: TrainingCheckpoint, file: String, graph: Graph) throws {
        let stored = Dictionary(checkpoint.stateDict.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var missing: [String] = [], misshaped: [ShapeMismatch] = []
        for t in graph.initializers {
            guard let s = stored[t.name] else { missing.append(t.name); continue }
            if s.dims != t.dims { misshaped.append(ShapeMismatch(key: t.name, found: s.dims, expected: t.dims)) }
            else if s.elementType != .float {
                throw ImportError.invalidTensor(file: file, key: t.name, reason: "expected float, found \(s.elementType)")
            }
        }
        guard missing.isEmpty, misshaped.isEmpty else {
            throw ImportError.keyMismatch(file: file, missing: missing, unexpected: [], misshaped: misshaped)
        }
    }

    /// The export graph (not yet checked).
    public static func model(from checkpoint: TrainingCheckpoint, file: String = "<checkpoint>",
                             options: ExportOptions = ExportOptions()) throws -> Model {
        guard supportedOpsets.contains(options.opset) else { throw ExportError.unsupportedOpset(options.opset) }
        do {
            try MANetModel.validate(numClasses: checkpoint.numClasses, width: checkpoint.width, inputSize: checkpoint.inputSize)
        } catch {
            throw ImportError.notMANet(file: file, reason: "\(error)")
        }
        var model = try MANetModel.build(numClasses: checkpoint.numClasses, width: checkpoint.width,
                                         inputSize: checkpoint.inputSize, seed: 0)
        try checkStateDict(checkpoint, file: file, graph: model.graph)
        let stored = Dictionary(checkpoint.stateDict.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        model.graph.initializers = model.graph.initializers.map { t in
            let s = stored[t.name]!
            return TensorData(name: t.name, elementType: .float, dims: t.dims, bytes: s.bytes)
        }
        // Every node form the builder emits (Split without a `split` input, Unsqueeze axes as an
        // input, ReduceMax/ReduceMean axes as an attribute, Softmax on one axis) has the same
        // schema from 13 to 17, so the opset number is all that changes; the checker below
        // validates each node against the chosen opset's schema.
        model.opsetImports = [OpsetImport(domain: "", version: Int64(options.opset))]
        if options.fused { addFusedOutputs(&model, beta: checkpoint.beta, numClasses: checkpoint.numClasses) }
        if options.foldBatchNorm {
            model = BatchNormFolding.fold(model).model
        }
        model.producerName = "manet"
        model.producerVersion = toolkitVersion
        model.docString = "MA-Net (Zhao, Liu, Wang, IEEE TIP 2021), width \(checkpoint.width), "
            + "\(checkpoint.numClasses) classes, exported by manet \(toolkitVersion) after \(checkpoint.epochsCompleted) epoch(s)"
        model.metadata = [
            (key: "class_names", value: checkpoint.classNames.joined(separator: ",")),
            (key: "beta", value: String(checkpoint.beta)),
            (key: "input_size", value: String(checkpoint.inputSize)),
            (key: "input_range", value: "0..1"),
            (key: "producer", value: "manet"),
            (key: "producer_version", value: toolkitVersion),
            (key: "manet.width", value: String(checkpoint.width)),
            (key: "manet.num_classes", value: String(checkpoint.numClasses)),
            (key: "manet.batchnorm", value: options.foldBatchNorm ? "folded" : "kept"),
        ]
        return model
    }

    /// `logits = beta * logits_local + (1 - beta) * logits_global` (the trainer's prediction, in
    /// the same float arithmetic) and `probabilities = Softmax(logits, axis 1)`.
    static func addFusedOutputs(_ model: inout Model, beta: Double, numClasses: Int) {
        func constant(_ name: String, _ value: Float) -> Node {
            Node(name: name, opType: "Constant", inputs: [], outputs: [name],
                 attributes: [Attribute(name: "value", value: .tensor(TensorData(dims: [], floats: [value])))])
        }
        let batch = ONNXIR.Dimension.symbolic("batch")
        model.graph.nodes += [
            constant("/fuse/beta", Float(beta)),
            constant("/fuse/one_minus_beta", Float(1 - beta)),
            Node(name: "/fuse/Mul", opType: "Mul", inputs: ["logits_local", "/fuse/beta"], outputs: ["/fuse/Mul_output_0"]),
            Node(name: "/fuse/Mul_1", opType: "Mul", inputs: ["logits_global", "/fuse/one_minus_beta"], outputs: ["/fuse/Mul_1_output_0"]),
            Node(name: "/fuse/Add", opType: "Add", inputs: ["/fuse/Mul_output_0", "/fuse/Mul_1_output_0"], outputs: ["logits"]),
            Node(name: "/Softmax", opType: "Softmax", inputs: ["logits"], outputs: ["probabilities"],
                 attributes: [Attribute(name: "axis", value: .int(1))]),
        ]
        model.graph.outputs += [.tensor("logits", .float, [batch, .fixed(numClasses)]),
                                .tensor("probabilities", .float, [batch, .fixed(numClasses)])]
    }

    /// Builds, checks (ONNX checker, then full shape inference, which must give every output its
    /// declared shape) and writes atomically; with external data `<path>.data` is written first.
    public static func export(_ checkpoint: TrainingCheckpoint, file: String = "<checkpoint>", to path: String,
                              options: ExportOptions = ExportOptions()) throws -> Model {
        let model = try model(from: checkpoint, file: file, options: options)
        try ONNXFile.check(model, file: path)
        let inferred = try ONNXFile.inferShapes(model, file: path)
        for declared in model.graph.outputs {
            let found = inferred.graph.outputs.first { $0.name == declared.name }
            guard case .tensor(let type, let shape)? = found?.type, type == .float,
                  case .tensor(_, let want)? = declared.type, shape == want else {
                throw ExportError.invalidModel("\(path): shape inference gives output \(declared.name) the type "
                                               + "\(String(describing: found?.type)), expected \(String(describing: declared.type))")
            }
        }
        try ONNXFile.save(model, to: path, externalData: options.externalData)
        return model
    }

    /// The checkpoint's PyTorch state_dict as safetensors: names and order as the authors' model
    /// (`num_batches_tracked` as int64 scalars), loadable with `load_state_dict(strict=True)`.
    public static func exportSafetensors(_ checkpoint: TrainingCheckpoint, file: String = "<checkpoint>", to path: String) throws {
        try SafetensorsWriter.write(try pytorchStateDict(checkpoint, file: file), metadata: ["format": "pt"], to: path)
    }

    /// The checkpoint's state_dict in PyTorch's order (the builder's initializers, each BatchNorm's
    /// `num_batches_tracked` after its `running_var`), checked against the model.
    public static func pytorchStateDict(_ checkpoint: TrainingCheckpoint, file: String = "<checkpoint>") throws -> [TensorData] {
        let model = try MANetModel.build(numClasses: checkpoint.numClasses, width: checkpoint.width,
                                         inputSize: checkpoint.inputSize, seed: 0)
        try checkStateDict(checkpoint, file: file, graph: model.graph)
        let stored = Dictionary(checkpoint.stateDict.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var tensors: [TensorData] = []
        let counters = Dictionary(uniqueKeysWithValues: MANetModel.batchNormModules(of: model).map {
            ($0 + ".running_var", $0 + ".num_batches_tracked")
        })
        for t in model.graph.initializers {
            tensors.append(stored[t.name]!)
            if let counter = counters[t.name] {
                let value = stored[counter]?.int64s?.first ?? 0
                tensors.append(TensorData(name: counter, dims: [], int64s: [value]))
            }
        }
        return tensors
    }
}
