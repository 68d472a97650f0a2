// Reads a PyTorch ONNX export of MA-Net back into state_dict keys, with BatchNormalization kept or folded.

import ONNXIR

/// Names the parameters of an ONNX graph by state_dict key.
///
/// Exporters name parameters differently: the TorchScript exporter with constant folding off
/// keeps every state_dict name; with folding on (its default) BatchNormalization disappears into
/// the convolutions, whose weights and new biases become anonymous `onnx::Conv_N` initializers;
/// the dynamo exporter keeps `conv1.weight` (holding the folded values) and adds
/// `conv1.weight_bias`. So a parameter is named, in this order, by its initializer name when that
/// is a state_dict key, else by the module path in its node's name (TorchScript's scope
/// `/layer1/layer1.0/conv1/Conv` is module `layer1.0.conv1`), else by its weight's module (a
/// folded bias of the dynamo exporter). Only initializers in a parameter position (Conv weight
/// and bias, Gemm B and C, BatchNormalization's four inputs, MatMul's B) are considered: the
/// others are shape constants of the exporter's index arithmetic.
enum ONNXStateDictReader {
    static func read(_ model: Model, file: String, expected: Set<String>,
                     convFollowers: [String: String]) throws -> SourceStateDict {
        let graph = model.graph
        var initializers: [String: TensorData] = [:]
        for t in graph.initializers { initializers[t.name] = t }

        var named: [(String, TensorData)] = []
        var unnamed: [String] = []
        var foldedBiases: [(module: String, bias: TensorData)] = []
        var taken = Set<String>()
        func take(_ key: String, _ initializer: String) {
            guard let t = initializers[initializer], !taken.contains(key) else { return }
            taken.insert(key)
            named.append((key, t))
        }
        func module(ofNode node: Node) -> String? {
            var parts = node.name.split(separator: "/").map(String.init)
            guard parts.count >= 2 else { return nil }
            parts.removeLast()  // the operator (`Conv`)
            var path: [String] = []
            for p in parts {
                // A child of a Sequential is scoped as `parent.K` below `parent`.
                if let last = path.last, p.hasPrefix(last + ".") {
                    path.append(String(p.dropFirst(last.count + 1)))
                } else {
                    path.append(p)
                }
            }
            return path.joined(separator: ".")
        }
        func describe(_ initializer: String, _ node: Node) -> String {
            "\(initializer) (input of \(node.opType) node '\(node.name)')"
        }

        let hasBatchNorm = graph.nodes.contains { $0.opType == "BatchNormalization" }
        for node in graph.nodes {
            let params: [(index: Int, field: String)]
            switch node.opType {
            case "Conv": params = [(1, "weight"), (2, "bias")]
            case "Gemm": params = [(1, "weight"), (2, "bias")]
            case "MatMul": params = [(1, "weight")]
            case "BatchNormalization": params = [(1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")]
            default: params = []
            }
            var weightModule: String?
            for (index, field) in params where index < node.inputs.count && initializers[node.inputs[index]] != nil {
                let name = node.inputs[index]
                if expected.contains(name) {
                    take(name, name)
                    if field == "weight" { weightModule = String(name.dropLast(".weight".count)) }
                    continue
                }
                // A Conv bias where MA-Net has none: the trace of a folded BatchNormalization.
                if node.opType == "Conv", field == "bias", !hasBatchNorm,
                   let module = weightModule ?? module(ofNode: node), convFollowers[module] != nil {
                    foldedBiases.append((module, initializers[name]!))
                    continue
                }
                if let module = module(ofNode: node), expected.contains(module + "." + field) {
                    take(module + "." + field, name)
                    if field == "weight" { weightModule = module }
                    continue
                }
                // Already taken under its own name by an earlier node (shared CBAM MLP).
                if taken.contains(name) { continue }
                unnamed.append(describe(name, node))
            }
        }
        // Initializers named as state_dict keys but unused by any parameter position still count.
        for t in graph.initializers where expected.contains(t.name) { take(t.name, t.name) }

        var source = SourceStateDict(file: file, tensors: named, carriesBatchCounters: false)
        source.unnamed = unnamed
        for (module, bias) in foldedBiases {
            guard let bn = convFollowers[module] else { continue }
            let channels = bias.dims.reduce(1, *)
            func add(_ field: String, _ value: Float) {
                let key = bn + "." + field
                guard source.tensors[key] == nil else { return }
                source.tensors[key] = SourceTensor(TensorData(name: key, dims: [channels], floats: [Float](repeating: value, count: channels)))
                source.order.append(key)
            }
            if source.tensors[bn + ".bias"] == nil {
                source.tensors[bn + ".bias"] = SourceTensor(TensorData(name: bn + ".bias", elementType: bias.elementType, dims: bias.dims, bytes: bias.bytes))
                source.order.append(bn + ".bias")
            }
            add("weight", 1)
            add("running_mean", 0)
            // (x - 0) / sqrt((1 - eps) + eps) is x exactly in float32 for eps = 1e-5.
            add("running_var", 1 - StateDictMatcher.batchNormEpsilon)
            source.identityBatchNorms.append(bn)
        }
        source.inputSize = inputSide(graph)
        let metadata = Dictionary(model.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        if let names = metadata["class_names"], !names.isEmpty {
            source.classNames = names.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        if let beta = metadata["beta"].flatMap(Double.init), (0...1).contains(beta) { source.beta = beta }
        return source
    }

    /// The side S of the graph input `[batch, 3, S, S]`, when fixed.
    static func inputSide(_ graph: Graph) -> Int? {
        let initializerNames = Set(graph.initializers.map(\.name))
        guard let input = graph.inputs.first(where: { !initializerNames.contains($0.name) }),
              case .tensor(_, let shape?) = input.type, shape.count == 4,
              case .fixed(let h) = shape[2], case .fixed(let w) = shape[3], h == w else { return nil }
        return h
    }

    /// For every convolution of the built MA-Net graph, the BatchNormalization module it feeds.
    static func convFollowers(of model: Model) -> [String: String] {
        var producer: [String: String] = [:]  // conv output value -> conv module
        for node in model.graph.nodes where node.opType == "Conv" && node.inputs.count >= 2 {
            let w = node.inputs[1]
            if w.hasSuffix(".weight") { producer[node.outputs[0]] = String(w.dropLast(".weight".count)) }
        }
        var followers: [String: String] = [:]
        for node in model.graph.nodes where node.opType == "BatchNormalization" && node.inputs.count >= 5 {
            guard let conv = producer[node.inputs[0]] else { continue }
            let w = node.inputs[1]
            followers[conv] = w.hasSuffix(".weight") ? String(w.dropLast(".weight".count)) : w
        }
        return followers
    }
}
