// The authors' training checkpoint layout both ways: {'epoch', 'state_dict', 'best_acc', 'optimizer'} <-> a resumable TrainingCheckpoint.

import Foundation
import ONNXIR
import PyTorchFormat

/// `torch.optim.SGD.state_dict()` numbers parameters in `model.parameters()` order, which is the
/// state_dict's order without the BatchNorm buffers (both walk the modules in registration order,
/// a module's own parameters first). So parameter `i` of the optimizer is the `i`-th key of the
/// state_dict that is not `running_mean`, `running_var` or `num_batches_tracked`.
public enum PyTorchTrainingState {
    static func isBuffer(_ key: String) -> Bool {
        key.hasSuffix(".running_mean") || key.hasSuffix(".running_var") || key.hasSuffix(".num_batches_tracked")
    }

    // MARK: - Reading (train --resume X.pth.tar)

    /// A checkpoint that continues the authors' run: the weights as `import` reads them, plus the
    /// epoch, the best accuracy, the SGD momentum buffers and the optimizer's hyper-parameters.
    /// `recipe` gives what the authors' layout does not hold, their main.py's command line: batch
    /// size, StepLR's step and gamma, epochs, augmentation and shuffling; the learning rate,
    /// momentum and weight decay are the file's param group's when it has them. The next epoch's
    /// learning rate is StepLR's at the file's epoch.
    public static func resumeCheckpoint(path: String, options: ImportOptions = ImportOptions(),
                                        recipe runRecipe: TrainingRecipe = TrainingRecipe()) throws -> ImportResult {
        let (source0, readNotes, file, stateDict) = try PyTorchCheckpointReader.read(path: path, maxBytes: options.maxBytes)
        var source = source0
        let prefixed = source.normalisingPrefix()
        var result = try StateDictMatcher.makeCheckpoint(source, options: options)
        result.notes = readNotes + (prefixed ? ["stripped DataParallel's `module.` prefix from every key"] : []) + result.notes
        guard let root = file.root.dict else { return result }
        func fail(_ reason: String) -> ImportError { .invalidTensor(file: path, key: "optimizer", reason: reason) }

        var checkpoint = result.checkpoint
        checkpoint.recipe = runRecipe
        func schedule(_ recipe: TrainingRecipe) -> Double {
            StepLR(initialLearningRate: recipe.learningRate, stepSize: recipe.stepSize, gamma: recipe.gamma)
                .learningRate(epoch: checkpoint.epochsCompleted)
        }
        if let epoch = root["epoch"]?.int {
            guard epoch >= 0 else { throw ImportError.unreadable(file: path, reason: "'epoch' is \(epoch)") }
            checkpoint.epochsCompleted = epoch
        }
        if let best = root["best_acc"] {
            var value: Double?
            if let d = best.double { value = d }
            if let t = best.tensor {
                let data = try file.tensorData(t, name: "best_acc")
                value = PyTorchCheckpointReader.convert(data).floats?.first.map(Double.init)
            }
            if let value, value.isFinite {
                checkpoint.bestAccuracy = Float(value)
                checkpoint.bestEpoch = max(checkpoint.epochsCompleted - 1, 0)
            }
        }
        checkpoint.learningRate = schedule(runRecipe)
        guard let optimizer = root["optimizer"]?.dict else {
            result.notes.append("no 'optimizer' in the file: momentum buffers start at zero")
            result.checkpoint = checkpoint
            return result
        }
        guard case .list(let groups)? = optimizer["param_groups"], groups.items.count == 1, let group = groups.items[0].dict,
              case .list(let params)? = group["params"] else {
            throw fail("expected one param_group with a 'params' list (torch.optim.SGD over model.parameters())")
        }
        // The file's own parameter order, `module.` stripped as the state_dict's keys were.
        let keys = stateDict.entries.compactMap { $0.key.string }.map { prefixed && $0.hasPrefix("module.") ? String($0.dropFirst(7)) : $0 }
        let parameterKeys = keys.filter { !isBuffer($0) }
        guard params.items.count == parameterKeys.count else {
            throw fail("its param_group has \(params.items.count) parameters, the state_dict \(parameterKeys.count)")
        }
        var recipe = checkpoint.recipe
        if let lr = group["initial_lr"]?.double ?? group["lr"]?.double { recipe.learningRate = lr }
        if let m = group["momentum"]?.double { recipe.momentum = m }
        if let wd = group["weight_decay"]?.double { recipe.weightDecay = wd }
        if let d = group["dampening"]?.double, d != 0 { throw fail("dampening \(d): the trainer's SGD has none") }
        if case .bool(true)? = group["nesterov"] { throw fail("Nesterov momentum: the trainer's SGD has none") }
        checkpoint.recipe = recipe
        checkpoint.learningRate = schedule(recipe)

        // Optimizer ids -> parameter names; the buffers are the parameters' shapes.
        var nameOfID: [Int: String] = [:]
        for (index, id) in params.items.enumerated() {
            guard let id = id.int else { throw fail("parameter id \(id.summary) is not an integer") }
            nameOfID[id] = parameterKeys[index]
        }
        let shapes = Dictionary(checkpoint.stateDict.map { ($0.name, $0.dims) }, uniquingKeysWith: { a, _ in a })
        var buffers: [String: TensorData] = [:]
        let reinitialisedHeads = result.sourceNumClasses != checkpoint.numClasses
        if let state = optimizer["state"]?.dict {
            for (key, value) in state.entries {
                guard let id = key.int, let name = nameOfID[id] else { throw fail("state for unknown parameter id \(key.summary)") }
                guard let t = value.dict?["momentum_buffer"]?.tensor else { continue }
                // Re-initialised heads start without momentum, as a fresh optimizer gives them.
                if reinitialisedHeads, name.hasPrefix("fc_1.") || name.hasPrefix("fc_2.") { continue }
                let data = PyTorchCheckpointReader.convert(try file.tensorData(t, name: "optimizer.state.\(id).momentum_buffer"))
                guard data.elementType == .float, data.dims == shapes[name] else {
                    throw fail("momentum buffer of parameter \(id) (\(name)) is \(data.elementType) \(data.dims), the parameter is \(shapes[name] ?? [])")
                }
                buffers[name] = TensorData(name: name, elementType: .float, dims: data.dims, bytes: data.bytes)
            }
        }
        file.releaseCache()
        checkpoint.momentumBuffers = parameterKeys.compactMap { buffers[$0] }
        result.notes.append("resumes after epoch \(checkpoint.epochsCompleted) (best accuracy \(checkpoint.bestAccuracy)) with "
                            + "\(checkpoint.momentumBuffers.count) SGD momentum buffers; lr \(recipe.learningRate), momentum "
                            + "\(recipe.momentum), weight decay \(recipe.weightDecay), next epoch's lr \(checkpoint.learningRate)")
        result.checkpoint = checkpoint
        return result
    }

    // MARK: - Writing (export --format pth)

    /// The authors' layout of `checkpoint`: epoch, the state_dict in PyTorch's order (with
    /// DataParallel's `module.` unless `modulePrefix` is false), best_acc as a 0-d tensor, and
    /// `optimizer` as `torch.optim.SGD.state_dict()` would give it (momentum buffers by parameter id).
    public static func value(of checkpoint: TrainingCheckpoint, file: String, modulePrefix: Bool) throws -> TorchSaveValue {
        let stateDict = pytorchOrder(try MANetExporter.pytorchStateDict(checkpoint, file: file))
        let prefix = modulePrefix ? "module." : ""
        let parameterKeys = stateDict.map(\.name).filter { !isBuffer($0) }
        let buffers = Dictionary(checkpoint.momentumBuffers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var state: [(TorchSaveValue, TorchSaveValue)] = []
        for (id, key) in parameterKeys.enumerated() {
            guard let b = buffers[key] else { continue }
            state.append((.int(id), .dict([(.string("momentum_buffer"), .tensor(b))])))
        }
        let recipe = checkpoint.recipe
        let group: [(TorchSaveValue, TorchSaveValue)] = [
            (.string("lr"), .float(checkpoint.learningRate)),
            (.string("momentum"), .float(recipe.momentum)),
            (.string("dampening"), .int(0)),
            (.string("weight_decay"), .float(recipe.weightDecay)),
            (.string("nesterov"), .bool(false)),
            (.string("maximize"), .bool(false)),
            (.string("foreach"), .none),
            (.string("differentiable"), .bool(false)),
            (.string("fused"), .none),
            (.string("initial_lr"), .float(recipe.learningRate)),
            (.string("params"), .list(parameterKeys.indices.map { .int($0) })),
        ]
        return .dict([
            (.string("epoch"), .int(checkpoint.epochsCompleted)),
            (.string("state_dict"), .orderedDict(stateDict.map { (prefix + $0.name, .tensor($0)) })),
            (.string("best_acc"), .tensor(TensorData(dims: [], floats: [checkpoint.bestAccuracy]))),
            (.string("optimizer"), .dict([(.string("state"), .dict(state)), (.string("param_groups"), .list([.dict(group)]))])),
        ])
    }

    /// The reference model's top-level modules in registration order (tools/fixtures/manet_reference.py).
    static let topLevelOrder = ["conv1", "bn1", "layer1", "layer2", "layer3_1_p1", "layer4_1_p1", "layer3_1_p2", "layer4_1_p2",
                                "layer3_1_p3", "layer4_1_p3", "layer3_1_p4", "layer4_1_p4", "layer3_2", "layer4_2", "fc_1", "fc_2"]

    /// `tensors` (the builder's order) in the order of PyTorch's `state_dict()`, which is module
    /// registration order: the builder differs in three places, fixed here. An attention block
    /// registers `downsample` (in BasicBlock's constructor) before its `cbam`; a multi-scale block
    /// registers `conv2_2_1` ... `conv2_2_4` in ascending order; the heads come last. Within a
    /// module, parameters and buffers keep the builder's order (weight, bias, running_mean,
    /// running_var, num_batches_tracked), which is PyTorch's.
    public static func pytorchOrder(_ tensors: [TensorData]) -> [TensorData] {
        var children: [String: [String]] = [:]  // parent path -> child names, first appearance
        for t in tensors {
            let parts = t.name.split(separator: ".").map(String.init)
            for i in parts.indices {
                let parent = parts[..<i].joined(separator: ".")
                if !(children[parent]?.contains(parts[i]) ?? false) { children[parent, default: []].append(parts[i]) }
            }
        }
        var rank: [String: [String: Int]] = [:]
        for (parent, var names) in children {
            if parent.isEmpty {
                let seen = names
                names.sort { (topLevelOrder.firstIndex(of: $0) ?? Int.max, seen.firstIndex(of: $0)!) < (topLevelOrder.firstIndex(of: $1) ?? Int.max, seen.firstIndex(of: $1)!) }
            } else {
                if let c = names.firstIndex(of: "cbam"), let d = names.firstIndex(of: "downsample"), c < d {
                    names.remove(at: c)
                    names.insert("cbam", at: names.firstIndex(of: "downsample")! + 1)
                }
                let scale = names.indices.filter { names[$0].hasPrefix("conv2_2_") || names[$0].hasPrefix("bn2_2_") }
                let sorted = scale.map { names[$0] }.sorted { a, b in
                    (String(a.split(separator: "_").last!), a.hasPrefix("bn") ? 1 : 0) < (String(b.split(separator: "_").last!), b.hasPrefix("bn") ? 1 : 0)
                }
                for (i, name) in zip(scale, sorted) { names[i] = name }
            }
            rank[parent] = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        }
        func path(_ name: String) -> [Int] {
            let parts = name.split(separator: ".").map(String.init)
            return parts.indices.map { rank[parts[..<$0].joined(separator: ".")]?[parts[$0]] ?? 0 }
        }
        return tensors.map { ($0, path($0.name)) }.sorted { $0.1.lexicographicallyPrecedes($1.1) }.map(\.0)
    }

    public static func write(_ checkpoint: TrainingCheckpoint, file: String, to path: String, modulePrefix: Bool) throws {
        let value = try value(of: checkpoint, file: file, modulePrefix: modulePrefix)
        do {
            try TorchSave.write(value, to: path)
        } catch let error as PyTorchFormatError {
            throw ImportError.unreadable(file: path, reason: error.reason)
        }
    }
}
