// MA-Net (Zhao, Liu, Wang, IEEE TIP 2021) as an ONNX IR graph, parameters named as the authors' state_dict.

import ONNXIR

/// Why a model cannot be built with the requested options.
public enum MANetConfigurationError: Error, Equatable, CustomStringConvertible {
    case inputSize(Int)
    case width(Int)
    case numClasses(Int)

    public var description: String {
        switch self {
        case .inputSize(let s):
            return "input size \(s) is not supported: MA-Net needs a multiple of 32 that is at least 64 "
                + "(the layer2 map, input/8, is cut into 2x2 patches that are halved again by layer3_1)"
        case .width(let w):
            return "width \(w) is not supported: it must be at least 4 (CBAM's reduction 16 applied to 4*width channels)"
        case .numClasses(let n):
            return "number of classes \(n) is not supported: it must be at least 2"
        }
    }
}

/// Builds MA-Net. `width` is the stem's channel count (64 in the paper); every stage scales
/// with it. Graph input `input` [batch, 3, S, S]; outputs `logits_local` (fc_1, the local
/// attention branch) and `logits_global` (fc_2, the global multi-scale branch).
public enum MANetModel {
    public static let opset: Int64 = 17
    /// PyTorch's `BatchNorm2d(momentum=0.1)` in ONNX's convention (weight of the old value).
    static let batchNormMomentum: Float = 0.9
    /// CBAM's spatial gate uses `BatchNorm2d(momentum=0.01)`.
    static let spatialGateMomentum: Float = 0.99

    public static func validate(numClasses: Int, width: Int, inputSize: Int) throws {
        guard inputSize >= 64, inputSize % 32 == 0 else { throw MANetConfigurationError.inputSize(inputSize) }
        guard width >= 4 else { throw MANetConfigurationError.width(width) }
        guard numClasses >= 2 else { throw MANetConfigurationError.numClasses(numClasses) }
    }

    public static func build(numClasses: Int = 7, width: Int = 64, inputSize: Int = 224, seed: UInt64 = 0) throws -> Model {
        let b = try builder(numClasses: numClasses, width: width, inputSize: inputSize, seed: seed, values: .all)
        let batch = Dimension.symbolic("batch")
        let graph = Graph(
            name: "MA-Net",
            nodes: b.nodes,
            inputs: [.tensor("input", .float, [batch, .fixed(3), .fixed(inputSize), .fixed(inputSize)])],
            outputs: [.tensor("logits_local", .float, [batch, .fixed(numClasses)]),
                      .tensor("logits_global", .float, [batch, .fixed(numClasses)])],
            initializers: b.initializers,
            docString: "MA-Net, width \(width), \(numClasses) classes, input \(inputSize)x\(inputSize)")
        return Model(irVersion: 8, producerName: "manet", producerVersion: "1",
                     opsetImports: [OpsetImport(domain: "", version: opset)],
                     metadata: [(key: "manet.width", value: String(width)),
                                (key: "manet.num_classes", value: String(numClasses)),
                                (key: "manet.input_size", value: String(inputSize))],
                     graph: graph)
    }

    private static func builder(numClasses: Int, width: Int, inputSize: Int, seed: UInt64,
                                values: GraphBuilder.Values) throws -> GraphBuilder {
        try validate(numClasses: numClasses, width: width, inputSize: inputSize)
        let b = GraphBuilder(seed: seed, values: values)
        let (local, global) = network(b, input: "input", numClasses: numClasses, width: width, inputSize: inputSize)
        b.rename(local, to: "logits_local")
        b.rename(global, to: "logits_global")
        return b
    }

    /// The parameters' names and dims in `build`'s initializer order and the BatchNorm modules
    /// (as `batchNormModules(of:)` lists them), with no value drawn or held: what an import checks
    /// a source against without a second copy of the weights.
    public static func layout(numClasses: Int, width: Int, inputSize: Int) throws
        -> (parameters: [(name: String, dims: [Int])], batchNormModules: [String]) {
        let b = try builder(numClasses: numClasses, width: width, inputSize: inputSize, seed: 0, values: .none)
        return (b.parameterShapes, batchNormModules(of: b.nodes))
    }

    /// The initial values `build` gives the parameters in `names` (every value is drawn in order,
    /// only these are kept), in initializer order.
    public static func initialValues(of names: Set<String>, numClasses: Int, width: Int, inputSize: Int,
                                     seed: UInt64) throws -> [TensorData] {
        try builder(numClasses: numClasses, width: width, inputSize: inputSize, seed: seed, values: .only(names)).initializers
    }

    /// Module prefixes of every BatchNormalization in `model` (`layer1.0.bn1`), taken from the
    /// running-mean input names; these carry a `num_batches_tracked` in the PyTorch state_dict.
    public static func batchNormModules(of model: Model) -> [String] { batchNormModules(of: model.graph.nodes) }

    static func batchNormModules(of nodes: [Node]) -> [String] {
        nodes.filter { $0.opType == "BatchNormalization" && $0.inputs.count >= 4 }.map { node in
            let mean = node.inputs[3]
            return mean.hasSuffix(".running_mean") ? String(mean.dropLast(".running_mean".count)) : mean
        }
    }

    // MARK: - The network, reading like the authors' module tree

    static func network(_ b: GraphBuilder, input: String, numClasses: Int, width w: Int,
                        inputSize: Int) -> (local: String, global: String) {
        // Stem and pre-extractor (ResNet-18's conv1 .. layer2).
        var x = b.conv(input, name: "conv1", in: 3, out: w, kernel: 7, stride: 2, padding: 3)
        x = b.batchNorm(x, name: "bn1", channels: w, momentum: batchNormMomentum)
        x = b.relu(x)
        x = b.maxPool(x, kernel: 3, stride: 2, padding: 1, module: "maxpool")
        x = layer(b, "layer1", x, inplanes: w, planes: w, stride: 1, block: basicBlock)
        let features = layer(b, "layer2", x, inplanes: w, planes: 2 * w, stride: 2, block: basicBlock)

        // Local branch: four patches of the layer2 map, each with its own attention layers.
        let side = inputSize / 8, half = side / 2
        let rows = [(0, half), (0, half), (half, side), (half, side)]
        let cols = [(0, half), (half, side), (0, half), (half, side)]
        var patches: [String] = []
        for k in 0..<4 {
            var p = b.slice(features, starts: [rows[k].0, cols[k].0], ends: [rows[k].1, cols[k].1], axes: [2, 3])
            p = layer(b, "layer3_1_p\(k + 1)", p, inplanes: 2 * w, planes: 4 * w, stride: 2, block: attentionBlock)
            p = layer(b, "layer4_1_p\(k + 1)", p, inplanes: 4 * w, planes: 8 * w, stride: 1, block: attentionBlock)
            patches.append(p)
        }
        let top = b.concat([patches[0], patches[1]], axis: 3)
        let bottom = b.concat([patches[2], patches[3]], axis: 3)
        var local = b.concat([top, bottom], axis: 2)
        local = b.flatten(b.globalAveragePool(local, module: "avgpool"))
        local = b.linear(local, name: "fc_1", in: 8 * w, out: numClasses)

        // Global branch: multi-scale blocks over the whole map.
        var global = layer(b, "layer3_2", features, inplanes: 2 * w, planes: 4 * w, stride: 2, block: mulScaleBlock)
        global = layer(b, "layer4_2", global, inplanes: 4 * w, planes: 8 * w, stride: 2, block: mulScaleBlock)
        global = b.flatten(b.globalAveragePool(global, module: "avgpool"))
        global = b.linear(global, name: "fc_2", in: 8 * w, out: numClasses)
        return (local, global)
    }

    typealias Block = (GraphBuilder, String, Int, Int, Int, Bool) -> String

    /// Two blocks, as torchvision's `_make_layer`: the first may stride and gets a downsample
    /// (1x1 conv + BN) when the shape changes.
    static func layer(_ b: GraphBuilder, _ name: String, _ x: String, inplanes: Int, planes: Int,
                      stride: Int, block: Block) -> String {
        b.scoped(name) {
            let needsDownsample = stride != 1 || inplanes != planes
            let first = b.scoped("0") { block(b, x, inplanes, planes, stride, needsDownsample) }
            return b.scoped("1") { block(b, first, planes, planes, 1, false) }
        }
    }

    static func downsample(_ b: GraphBuilder, _ x: String, inplanes: Int, planes: Int, stride: Int) -> String {
        b.scoped("downsample") {
            let y = b.conv(x, name: "0", in: inplanes, out: planes, kernel: 1, stride: stride)
            return b.batchNorm(y, name: "1", channels: planes, momentum: batchNormMomentum)
        }
    }

    static func basicBlock(_ b: GraphBuilder, _ x: String, _ inplanes: Int, _ planes: Int, _ stride: Int,
                           _ hasDownsample: Bool) -> String {
        residualBlock(b, x, inplanes, planes, stride, hasDownsample, attention: false)
    }

    static func attentionBlock(_ b: GraphBuilder, _ x: String, _ inplanes: Int, _ planes: Int, _ stride: Int,
                               _ hasDownsample: Bool) -> String {
        residualBlock(b, x, inplanes, planes, stride, hasDownsample, attention: true)
    }

    /// BasicBlock; the attention block passes bn2's output through CBAM before the residual add.
    static func residualBlock(_ b: GraphBuilder, _ x: String, _ inplanes: Int, _ planes: Int, _ stride: Int,
                              _ hasDownsample: Bool, attention: Bool) -> String {
        var y = b.conv(x, name: "conv1", in: inplanes, out: planes, kernel: 3, stride: stride, padding: 1)
        y = b.relu(b.batchNorm(y, name: "bn1", channels: planes, momentum: batchNormMomentum))
        y = b.conv(y, name: "conv2", in: planes, out: planes, kernel: 3, padding: 1)
        y = b.batchNorm(y, name: "bn2", channels: planes, momentum: batchNormMomentum)
        if attention { y = b.scoped("cbam") { cbam(b, y, channels: planes) } }
        let identity = hasDownsample ? downsample(b, x, inplanes: inplanes, planes: planes, stride: stride) : x
        return b.relu(b.add(y, identity))
    }

    /// CBAM (Woo et al. 2018) with reduction 16: channel gate, then spatial gate.
    static func cbam(_ b: GraphBuilder, _ x: String, channels: Int) -> String {
        let hidden = channels / 16
        let gated = b.scoped("ChannelGate") { () -> String in
            // The MLP (Flatten, Linear, ReLU, Linear: hence `mlp.1` and `mlp.3`) is shared by the
            // average- and max-pooled descriptors: parameters created once, applied twice.
            let (fc1, fc3) = b.scoped("mlp") {
                (b.linearParameters(name: "1", in: channels, out: hidden),
                 b.linearParameters(name: "3", in: hidden, out: channels))
            }
            func mlp(_ pooled: String) -> String {
                b.scoped("mlp") {
                    let h = b.relu(b.gemm(b.flatten(pooled), fc1.weight, fc1.bias, transB: true, module: "1"))
                    return b.gemm(h, fc3.weight, fc3.bias, transB: true, module: "3")
                }
            }
            let avg = mlp(b.globalAveragePool(x))
            let max = mlp(b.globalMaxPool(x))
            let scale = b.unsqueeze(b.sigmoid(b.add(avg, max)), axes: [2, 3])
            return b.mul(x, scale)
        }
        return b.scoped("SpatialGate") { () -> String in
            // ChannelPool: channel-max first, then channel-mean.
            let compressed = b.concat([b.reduceMax(gated, axes: [1], keepDims: true),
                                       b.reduceMean(gated, axes: [1], keepDims: true)], axis: 1)
            let attention = b.scoped("spatial") { () -> String in
                let c = b.conv(compressed, name: "conv", in: 2, out: 1, kernel: 7, padding: 3)
                return b.batchNorm(c, name: "bn", channels: 1, momentum: spatialGateMomentum)
            }
            return b.mul(gated, b.sigmoid(attention))
        }
    }

    /// The multi-scale block: 3x3 conv, then two cascades over 4 channel groups in opposite
    /// orders, summed with the identity.
    static func mulScaleBlock(_ b: GraphBuilder, _ x: String, _ inplanes: Int, _ planes: Int, _ stride: Int,
                              _ hasDownsample: Bool) -> String {
        let g = planes / 4
        var y = b.conv(x, name: "conv1", in: inplanes, out: planes, kernel: 3, stride: stride, padding: 1)
        y = b.relu(b.batchNorm(y, name: "bn1", channels: planes, momentum: batchNormMomentum))
        let sp = b.split(y, axis: 1, parts: 4)
        func convBN(_ v: String, _ suffix: String) -> String {
            let c = b.conv(v, name: "conv\(suffix)", in: g, out: g, kernel: 3, padding: 1)
            return b.batchNorm(c, name: "bn\(suffix)", channels: g, momentum: batchNormMomentum)
        }
        // First cascade: group 0 -> 3.
        let o11 = convBN(sp[0], "1_2_1")
        let o12 = convBN(b.add(b.relu(o11), sp[1]), "1_2_2")
        let o13 = convBN(b.add(b.relu(o12), sp[2]), "1_2_3")
        let o14 = convBN(b.add(b.relu(o13), sp[3]), "1_2_4")
        // Second cascade: group 3 -> 0. PyTorch creates conv2_2_1 .. conv2_2_4 in the
        // module's __init__ order; creation order here only affects random draws, not names.
        let o24 = convBN(sp[3], "2_2_4")
        let o23 = convBN(b.add(b.relu(o24), sp[2]), "2_2_3")
        let o22 = convBN(b.add(b.relu(o23), sp[1]), "2_2_2")
        let o21 = convBN(b.add(b.relu(o22), sp[0]), "2_2_1")
        let out1 = b.concat([o11, o12, o13, o14], axis: 1)
        let out2 = b.concat([o21, o22, o23, o24], axis: 1)
        let identity = hasDownsample ? downsample(b, x, inplanes: inplanes, planes: planes, stride: stride) : x
        return b.relu(b.add(b.add(out1, out2), identity))
    }
}
