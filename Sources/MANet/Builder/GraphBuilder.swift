// A small builder that emits ONNX IR nodes and initializers, parameters named as a PyTorch state_dict.

import ManetSupport
import ONNXIR

/// Builds an ONNX graph (opset 17 forms) the way a PyTorch module tree reads: `scoped("layer1")
/// { scoped("0") { conv(..., name: "conv1") } }` creates the initializer `layer1.0.conv1.weight`.
/// Value names follow the PyTorch exporter's habit (`/layer1/0/conv1/Conv_output_0`) so that a
/// reader of an exported file finds the module a value came from.
///
/// Initial values follow PyTorch's defaults for the MA-Net code: convolutions kaiming-normal
/// (fan-out, ReLU gain), BatchNormalization weight 1 / bias 0 / mean 0 / var 1, and `nn.Linear`'s
/// default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
public final class GraphBuilder {
    public private(set) var nodes: [Node] = []
    public private(set) var initializers: [TensorData] = []
    /// Every parameter's name and dims in creation order, whatever `values` keeps.
    public private(set) var parameterShapes: [(name: String, dims: [Int])] = []
    /// Module prefixes of every BatchNormalization (`layer1.0.bn1`), in creation order; the
    /// trainer keeps their `num_batches_tracked` counters, which the ONNX graph does not carry.
    public private(set) var batchNormModules: [String] = []
    public var random: Xoshiro256

    private var scope: [String] = []
    private var valueCounters: [String: Int] = [:]
    private var initializerNames: Set<String> = []

    /// Which initial values a builder keeps as initializers; the nodes and `parameterShapes` are
    /// the same in every case.
    public enum Values: Sendable {
        /// Every parameter's values.
        case all
        /// None, and nothing is drawn: the layout of a model too large to hold twice.
        case none
        /// The named parameters only; every value is still drawn in order, so these equal a full build's.
        case only(Set<String>)
    }

    public let values: Values

    public init(seed: UInt64, values: Values = .all) {
        random = Xoshiro256(seed: seed)
        self.values = values
    }

    private var draws: Bool {
        if case .none = values { return false }
        return true
    }

    // MARK: - Naming

    /// Runs `body` inside the module called `name` (a state_dict path component).
    public func scoped<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        scope.append(name)
        defer { scope.removeLast() }
        return try body()
    }

    private func parameterName(_ module: String, _ field: String) -> String {
        (scope + [module, field]).filter { !$0.isEmpty }.joined(separator: ".")
    }

    /// A fresh value name like the PyTorch exporter's: `/scope/module/OpType_output_K`.
    private func valueName(_ module: String, _ opType: String) -> String {
        let path = "/" + (scope + (module.isEmpty ? [] : [module])).joined(separator: "/")
        let base = (path == "/" ? "" : path) + "/" + opType
        let k = valueCounters[base, default: 0]
        valueCounters[base] = k + 1
        return "\(base)_output_\(k)"
    }

    private func nodeName(_ output: String) -> String {
        output.hasSuffix("_output_0") ? String(output.dropLast("_output_0".count)) : output
    }

    @discardableResult
    private func emit(_ opType: String, module: String = "", inputs: [String], outputCount: Int = 1,
                      attributes: [Attribute] = []) -> [String] {
        let first = valueName(module, opType)
        var outputs = [first]
        for i in 1..<max(1, outputCount) {
            outputs.append(String(first.dropLast(1)) + String(i))
        }
        nodes.append(Node(name: nodeName(first), opType: opType, inputs: inputs, outputs: outputs,
                          attributes: attributes))
        return outputs
    }

    private func addInitializer(_ name: String, dims: [Int], floats: [Float]) -> String {
        precondition(!initializerNames.contains(name), "duplicate parameter \(name)")
        initializerNames.insert(name)
        parameterShapes.append((name, dims))
        switch values {
        case .all: initializers.append(TensorData(name: name, dims: dims, floats: floats))
        case .none: break
        case .only(let kept): if kept.contains(name) { initializers.append(TensorData(name: name, dims: dims, floats: floats)) }
        }
        return name
    }

    // MARK: - Initialisation (PyTorch's defaults)

    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`: N(0, 2 / fan_out).
    private func kaimingNormalFanOut(_ dims: [Int]) -> [Float] {
        let fanOut = dims[0] * dims.dropFirst(2).reduce(1, *)
        let std = (2.0 / Double(fanOut)).squareRoot()
        let count = draws ? dims.reduce(1, *) : 0
        return (0..<count).map { _ in Float(random.normal() * std) }
    }

    /// `nn.Linear.reset_parameters`: kaiming_uniform(a=sqrt 5) reduces to U(-1/sqrt(fan_in), ..).
    private func linearUniform(_ count: Int, fanIn: Int) -> [Float] {
        let bound = 1.0 / Double(fanIn).squareRoot()
        return (0..<(draws ? count : 0)).map { _ in Float(random.uniform(-bound, bound)) }
    }

    // MARK: - Layers with parameters

    /// `nn.Conv2d(inChannels, outChannels, kernel, stride, padding, bias=bias)` named `name`.
    public func conv(_ x: String, name: String, in inChannels: Int, out outChannels: Int, kernel: Int,
                     stride: Int = 1, padding: Int = 0, bias: Bool = false) -> String {
        let dims = [outChannels, inChannels, kernel, kernel]
        var inputs = [x, addInitializer(parameterName(name, "weight"), dims: dims, floats: kaimingNormalFanOut(dims))]
        if bias {
            // PyTorch's Conv2d bias default; MA-Net's convolutions have none, kept for completeness.
            let fanIn = inChannels * kernel * kernel
            inputs.append(addInitializer(parameterName(name, "bias"), dims: [outChannels],
                                         floats: linearUniform(outChannels, fanIn: fanIn)))
        }
        return emit("Conv", module: name, inputs: inputs, attributes: [
            Attribute(name: "dilations", value: .ints([1, 1])),
            Attribute(name: "group", value: .int(1)),
            Attribute(name: "kernel_shape", value: .ints([Int64(kernel), Int64(kernel)])),
            Attribute(name: "pads", value: .ints(Array(repeating: Int64(padding), count: 4))),
            Attribute(name: "strides", value: .ints([Int64(stride), Int64(stride)])),
        ])[0]
    }

    /// `nn.BatchNorm2d(channels, eps, momentum)` named `name`. `momentum` is ONNX's (the weight
    /// of the old running value): PyTorch's 0.1 is ONNX's 0.9.
    public func batchNorm(_ x: String, name: String, channels: Int, momentum: Float = 0.9,
                          epsilon: Float = 1e-5) -> String {
        let ones = [Float](repeating: 1, count: channels), zeros = [Float](repeating: 0, count: channels)
        let inputs = [
            x,
            addInitializer(parameterName(name, "weight"), dims: [channels], floats: ones),
            addInitializer(parameterName(name, "bias"), dims: [channels], floats: zeros),
            addInitializer(parameterName(name, "running_mean"), dims: [channels], floats: zeros),
            addInitializer(parameterName(name, "running_var"), dims: [channels], floats: ones),
        ]
        batchNormModules.append((scope + [name]).joined(separator: "."))
        return emit("BatchNormalization", module: name, inputs: inputs, attributes: [
            Attribute(name: "epsilon", value: .float(epsilon)),
            Attribute(name: "momentum", value: .float(momentum)),
        ])[0]
    }

    /// Creates `nn.Linear(inFeatures, outFeatures)`'s parameters (`name.weight` [out, in],
    /// `name.bias`) without applying them: for a layer shared by several inputs (CBAM's MLP).
    public func linearParameters(name: String, in inFeatures: Int, out outFeatures: Int) -> (weight: String, bias: String) {
        let w = addInitializer(parameterName(name, "weight"), dims: [outFeatures, inFeatures],
                               floats: linearUniform(outFeatures * inFeatures, fanIn: inFeatures))
        let b = addInitializer(parameterName(name, "bias"), dims: [outFeatures],
                               floats: linearUniform(outFeatures, fanIn: inFeatures))
        return (w, b)
    }

    /// `nn.Linear(inFeatures, outFeatures)` named `name`, as Gemm with a [out, in] weight.
    public func linear(_ x: String, name: String, in inFeatures: Int, out outFeatures: Int) -> String {
        let p = linearParameters(name: name, in: inFeatures, out: outFeatures)
        return gemm(x, p.weight, p.bias, transB: true, module: name)
    }

    // MARK: - Operators without parameters

    public func gemm(_ a: String, _ b: String, _ c: String?, transB: Bool, module: String = "") -> String {
        emit("Gemm", module: module, inputs: [a, b] + (c.map { [$0] } ?? []), attributes: [
            Attribute(name: "alpha", value: .float(1)),
            Attribute(name: "beta", value: .float(1)),
            Attribute(name: "transB", value: .int(transB ? 1 : 0)),
        ])[0]
    }

    public func relu(_ x: String, module: String = "") -> String { emit("Relu", module: module, inputs: [x])[0] }
    public func sigmoid(_ x: String, module: String = "") -> String { emit("Sigmoid", module: module, inputs: [x])[0] }
    public func add(_ a: String, _ b: String, module: String = "") -> String { emit("Add", module: module, inputs: [a, b])[0] }
    public func mul(_ a: String, _ b: String, module: String = "") -> String { emit("Mul", module: module, inputs: [a, b])[0] }

    public func concat(_ xs: [String], axis: Int, module: String = "") -> String {
        emit("Concat", module: module, inputs: xs, attributes: [Attribute(name: "axis", value: .int(Int64(axis)))])[0]
    }

    /// Opset-13 Split into `parts` equal pieces along `axis` (no `split` input: equal sizes).
    public func split(_ x: String, axis: Int, parts: Int, module: String = "") -> [String] {
        emit("Split", module: module, inputs: [x], outputCount: parts,
             attributes: [Attribute(name: "axis", value: .int(Int64(axis)))])
    }

    /// An int64 Constant node; keeps shape arguments out of the initializers, which are
    /// exactly the model's state_dict.
    public func constant(_ values: [Int64], module: String = "") -> String {
        emit("Constant", module: module, inputs: [], attributes: [
            Attribute(name: "value", value: .tensor(TensorData(dims: [values.count], int64s: values))),
        ])[0]
    }

    /// `x[..., starts:ends, ...]` on `axes` (opset-13 Slice, arguments as Constant inputs).
    public func slice(_ x: String, starts: [Int], ends: [Int], axes: [Int], module: String = "") -> String {
        let s = constant(starts.map(Int64.init), module: module)
        let e = constant(ends.map(Int64.init), module: module)
        let a = constant(axes.map(Int64.init), module: module)
        return emit("Slice", module: module, inputs: [x, s, e, a])[0]
    }

    /// Opset-13 Unsqueeze (axes as an input).
    public func unsqueeze(_ x: String, axes: [Int], module: String = "") -> String {
        emit("Unsqueeze", module: module, inputs: [x, constant(axes.map(Int64.init), module: module)])[0]
    }

    /// Opset-13..17 ReduceMax (axes attribute).
    public func reduceMax(_ x: String, axes: [Int], keepDims: Bool, module: String = "") -> String {
        emit("ReduceMax", module: module, inputs: [x], attributes: [
            Attribute(name: "axes", value: .ints(axes.map(Int64.init))),
            Attribute(name: "keepdims", value: .int(keepDims ? 1 : 0)),
        ])[0]
    }

    /// Opset-13..17 ReduceMean (axes attribute).
    public func reduceMean(_ x: String, axes: [Int], keepDims: Bool, module: String = "") -> String {
        emit("ReduceMean", module: module, inputs: [x], attributes: [
            Attribute(name: "axes", value: .ints(axes.map(Int64.init))),
            Attribute(name: "keepdims", value: .int(keepDims ? 1 : 0)),
        ])[0]
    }

    public func globalAveragePool(_ x: String, module: String = "") -> String {
        emit("GlobalAveragePool", module: module, inputs: [x])[0]
    }

    public func globalMaxPool(_ x: String, module: String = "") -> String {
        emit("GlobalMaxPool", module: module, inputs: [x])[0]
    }

    public func flatten(_ x: String, axis: Int = 1, module: String = "") -> String {
        emit("Flatten", module: module, inputs: [x], attributes: [Attribute(name: "axis", value: .int(Int64(axis)))])[0]
    }

    public func maxPool(_ x: String, kernel: Int, stride: Int, padding: Int, module: String = "") -> String {
        emit("MaxPool", module: module, inputs: [x], attributes: [
            Attribute(name: "ceil_mode", value: .int(0)),
            Attribute(name: "dilations", value: .ints([1, 1])),
            Attribute(name: "kernel_shape", value: .ints([Int64(kernel), Int64(kernel)])),
            Attribute(name: "pads", value: .ints(Array(repeating: Int64(padding), count: 4))),
            Attribute(name: "strides", value: .ints([Int64(stride), Int64(stride)])),
        ])[0]
    }

    /// Renames the value `from` (a node output) to `to`, e.g. to give graph outputs their names.
    public func rename(_ from: String, to: String) {
        for i in nodes.indices {
            nodes[i].outputs = nodes[i].outputs.map { $0 == from ? to : $0 }
            nodes[i].inputs = nodes[i].inputs.map { $0 == from ? to : $0 }
        }
    }
}
