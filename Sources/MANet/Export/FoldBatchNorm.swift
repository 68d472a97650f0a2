// Optimizer pass: folds inference-mode BatchNormalization into the convolution that feeds it.

import ONNXIR
import Runtime

/// The arithmetic is the runtime's `BatchNormFold` (Double, rounded once), so an exported folded
/// graph holds the weights the interpreter's own inference plan folds. Nothing about MA-Net is
/// assumed: any Conv -> BatchNormalization pair whose
/// parameters are initializers, whose weight no other node reads, and whose Conv output feeds
/// only that BatchNormalization is folded; everything else is left as it is.
public enum BatchNormFolding {
    public struct Result {
        public var model: Model
        /// The BatchNormalization nodes removed, by name.
        public var folded: [String]
    }

    public static func fold(_ model: Model) -> Result {
        var graph = model.graph
        var initializerIndex: [String: Int] = [:]
        for (i, t) in graph.initializers.enumerated() { initializerIndex[t.name] = i }
        var consumers: [String: Int] = [:]
        for node in graph.nodes { for input in node.inputs where !input.isEmpty { consumers[input, default: 0] += 1 } }
        let graphOutputs = Set(graph.outputs.map(\.name))
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for o in node.outputs { producer[o] = i } }
        var usedNames = Set(graph.initializers.map(\.name))
        for node in graph.nodes { usedNames.formUnion(node.outputs) }

        func floats(_ name: String) -> [Float]? { initializerIndex[name].flatMap { graph.initializers[$0].floats } }

        var removed = Set<Int>()
        var foldedNames: [String] = []
        for (bnIndex, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.domain.isEmpty {
            // Only the inference form: one output, not in training mode.
            guard bn.inputs.count == 5, bn.outputs.count == 1 || bn.outputs.dropFirst().allSatisfy(\.isEmpty) else { continue }
            if case .int(let mode)? = bn.attribute("training_mode"), mode != 0 { continue }
            guard let convIndex = producer[bn.inputs[0]], !removed.contains(convIndex) else { continue }
            let conv = graph.nodes[convIndex]
            guard conv.opType == "Conv", conv.domain.isEmpty, conv.inputs.count >= 2,
                  consumers[bn.inputs[0]] == 1, !graphOutputs.contains(bn.inputs[0]),
                  consumers[conv.inputs[1]] == 1,
                  let weightIndex = initializerIndex[conv.inputs[1]],
                  let weight = graph.initializers[weightIndex].floats,
                  let gamma = floats(bn.inputs[1]), let beta = floats(bn.inputs[2]),
                  let mean = floats(bn.inputs[3]), let variance = floats(bn.inputs[4]) else { continue }
            let channels = graph.initializers[weightIndex].dims.first ?? 0
            guard channels > 0, [gamma, beta, mean, variance].allSatisfy({ $0.count == channels }),
                  weight.count % channels == 0 else { continue }
            var bias = [Float](repeating: 0, count: channels)
            var biasName: String?
            if conv.inputs.count >= 3, !conv.inputs[2].isEmpty {
                guard consumers[conv.inputs[2]] == 1, let b = floats(conv.inputs[2]), b.count == channels else { continue }
                bias = b
                biasName = conv.inputs[2]
            }
            var epsilon = 1e-5
            if case .float(let e)? = bn.attribute("epsilon") { epsilon = Double(e) }

            var newWeight = weight
            let newBias = BatchNormFold.fold(weight: &newWeight, bias: bias, gamma: gamma, beta: beta,
                                             mean: mean, variance: variance, epsilon: epsilon)
            let weightData = graph.initializers[weightIndex]
            graph.initializers[weightIndex] = TensorData(name: weightData.name, dims: weightData.dims, floats: newWeight)
            if let biasName {
                graph.initializers[initializerIndex[biasName]!] = TensorData(name: biasName, dims: [channels], floats: newBias)
            } else {
                // `layer1.0.conv1.weight` gets `layer1.0.conv1.bias`, the name PyTorch would give it.
                let stem = weightData.name.hasSuffix(".weight") ? String(weightData.name.dropLast(".weight".count)) : weightData.name
                var name = stem + ".bias"
                var k = 1
                while usedNames.contains(name) { name = stem + ".bias_\(k)"; k += 1 }
                usedNames.insert(name)
                initializerIndex[name] = graph.initializers.count
                graph.initializers.append(TensorData(name: name, dims: [channels], floats: newBias))
                biasName = name
            }
            var newConv = conv
            newConv.inputs = [conv.inputs[0], conv.inputs[1], biasName!]
            newConv.outputs = [bn.outputs[0]]
            graph.nodes[convIndex] = newConv
            removed.insert(bnIndex)
            for input in bn.inputs.dropFirst() { consumers[input, default: 1] -= 1 }
            foldedNames.append(bn.name)
        }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        // BatchNorm parameters nobody reads any more leave the file.
        let stillUsed = Set(graph.nodes.flatMap(\.inputs)).union(graph.outputs.map(\.name))
        let graphInputs = Set(graph.inputs.map(\.name))
        graph.initializers.removeAll { !stillUsed.contains($0.name) && !graphInputs.contains($0.name) }
        // Value infos may only describe values that still exist (a folded Conv's old output is gone).
        let existing = Set(graph.nodes.flatMap(\.outputs)).union(graphInputs).union(graph.initializers.map(\.name))
        graph.valueInfos.removeAll { !existing.contains($0.name) }
        var result = model
        result.graph = graph
        return Result(model: result, folded: foldedNames)
    }

}
