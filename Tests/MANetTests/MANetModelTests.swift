// The MA-Net builder: state_dict names and shapes, graph interface, options and their errors.

import ManetSupport
import XCTest
import ONNXIR
@testable import MANet

final class MANetModelTests: XCTestCase {
    func shapes(_ model: Model) -> [String: [Int]] {
        Dictionary(uniqueKeysWithValues: model.graph.initializers.map { ($0.name, $0.dims) })
    }

    func testFullWidthHasThePapersParameterCount() throws {
        let model = try MANetModel.build()
        // Trainable parameters (running statistics excluded), as `sum(p.numel() for p in
        // model.parameters())` counts them: the paper's 50.5 M.
        let runningStats = Set(model.graph.nodes.filter { $0.opType == "BatchNormalization" }.flatMap { $0.inputs[3...4] })
        let count = model.graph.initializers.filter { !runningStats.contains($0.name) }.reduce(0) { $0 + $1.dims.reduce(1, *) }
        XCTAssertEqual(Double(count) / 1e6, 50.5, accuracy: 0.05, "\(count) parameters")
    }

    func testStateDictNamesFollowTheAuthorsModules() throws {
        let s = shapes(try MANetModel.build(numClasses: 7, width: 64, inputSize: 224))
        XCTAssertEqual(s["conv1.weight"], [64, 3, 7, 7])
        XCTAssertEqual(s["bn1.running_var"], [64])
        XCTAssertEqual(s["layer1.1.conv2.weight"], [64, 64, 3, 3])
        XCTAssertEqual(s["layer2.0.downsample.0.weight"], [128, 64, 1, 1])
        XCTAssertEqual(s["layer2.0.downsample.1.running_mean"], [128])
        XCTAssertNil(s["layer1.0.downsample.0.weight"], "layer1 keeps its shape: no downsample")
        XCTAssertEqual(s["layer3_1_p2.1.cbam.ChannelGate.mlp.1.weight"], [16, 256])
        XCTAssertEqual(s["layer3_1_p2.1.cbam.ChannelGate.mlp.3.bias"], [256])
        XCTAssertEqual(s["layer4_1_p4.0.cbam.SpatialGate.spatial.conv.weight"], [1, 2, 7, 7])
        XCTAssertEqual(s["layer4_1_p4.0.cbam.SpatialGate.spatial.bn.weight"], [1])
        XCTAssertEqual(s["layer4_1_p1.0.downsample.0.weight"], [512, 256, 1, 1], "stride 1 but channels change")
        XCTAssertNil(s["layer4_1_p1.1.downsample.0.weight"])
        XCTAssertEqual(s["layer4_2.0.conv1_2_3.weight"], [128, 128, 3, 3])
        XCTAssertEqual(s["layer4_2.1.bn2_2_1.bias"], [128])
        XCTAssertEqual(s["layer3_2.0.downsample.0.weight"], [256, 128, 1, 1])
        XCTAssertEqual(s["fc_1.weight"], [7, 512])
        XCTAssertEqual(s["fc_2.bias"], [7])
        // Every patch has its own layers.
        for k in 1...4 { XCTAssertNotNil(s["layer3_1_p\(k).0.conv1.weight"]) }
        XCTAssertNil(s["layer3_1_p5.0.conv1.weight"])
    }

    /// The layout an import checks against, and the fresh heads it re-initialises, are the
    /// build's own, with no model of values built.
    func testLayoutAndInitialValuesAreTheBuilds() throws {
        let model = try MANetModel.build(numClasses: 9, width: 8, inputSize: 64, seed: 21)
        let layout = try MANetModel.layout(numClasses: 9, width: 8, inputSize: 64)
        XCTAssertEqual(layout.parameters.map(\.name), model.graph.initializers.map(\.name))
        XCTAssertEqual(layout.parameters.map(\.dims), model.graph.initializers.map(\.dims))
        XCTAssertEqual(layout.batchNormModules, MANetModel.batchNormModules(of: model))
        let heads: Set<String> = ["fc_1.weight", "fc_1.bias", "fc_2.weight", "fc_2.bias"]
        XCTAssertEqual(try MANetModel.initialValues(of: heads, numClasses: 9, width: 8, inputSize: 64, seed: 21),
                       model.graph.initializers.filter { heads.contains($0.name) })
    }

    func testGraphInterfaceAndOpset() throws {
        let model = try MANetModel.build(numClasses: 5, width: 8, inputSize: 96)
        XCTAssertEqual(model.opsetVersion(for: ""), 17)
        XCTAssertEqual(model.graph.inputs.map(\.name), ["input"])
        XCTAssertEqual(model.graph.inputs[0].type, .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(3), .fixed(96), .fixed(96)]))
        XCTAssertEqual(model.graph.outputs.map(\.name), ["logits_local", "logits_global"])
        XCTAssertEqual(model.graph.outputs[1].type, .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(5)]))
        let produced = Set(model.graph.nodes.flatMap(\.outputs))
        XCTAssertTrue(produced.contains("logits_local") && produced.contains("logits_global"))
        // Every node input is a graph input, an initializer or an earlier node's output.
        var known = Set(model.graph.initializers.map(\.name) + ["input"])
        for node in model.graph.nodes {
            for i in node.inputs where !i.isEmpty { XCTAssertTrue(known.contains(i), "\(node.name) reads undefined \(i)") }
            known.formUnion(node.outputs)
        }
        XCTAssertEqual(Set(model.graph.nodes.map(\.name)).count, model.graph.nodes.count, "node names are unique")
    }

    func testPatchesHalveTheLayer2Map() throws {
        // At 224 the authors slice 0:14 / 14:28 of the 28x28 map; the builder derives that.
        let model = try MANetModel.build(inputSize: 224)
        let slices = model.graph.nodes.filter { $0.opType == "Slice" }
        XCTAssertEqual(slices.count, 4)
        let constants = Dictionary(uniqueKeysWithValues: model.graph.nodes.filter { $0.opType == "Constant" }.map { node -> (String, [Int64]) in
            guard case .tensor(let t)? = node.attribute("value") else { return (node.outputs[0], []) }
            return (node.outputs[0], t.int64s ?? [])
        })
        let windows = slices.map { [constants[$0.inputs[1]]!, constants[$0.inputs[2]]!, constants[$0.inputs[3]]!] }
        XCTAssertEqual(windows, [
            [[0, 0], [14, 14], [2, 3]], [[0, 14], [14, 28], [2, 3]],
            [[14, 0], [28, 14], [2, 3]], [[14, 14], [28, 28], [2, 3]],
        ])
    }

    func testBatchNormMomentaAndEpsilon() throws {
        let model = try MANetModel.build(width: 8, inputSize: 64)
        for node in model.graph.nodes where node.opType == "BatchNormalization" {
            let spatial = node.inputs[1].contains("SpatialGate")
            XCTAssertEqual(node.attribute("momentum"), .float(spatial ? 0.99 : 0.9), node.name)
            XCTAssertEqual(node.attribute("epsilon"), .float(1e-5), node.name)
        }
        XCTAssertEqual(MANetModel.batchNormModules(of: model).count,
                       model.graph.nodes.filter { $0.opType == "BatchNormalization" }.count)
        XCTAssertTrue(MANetModel.batchNormModules(of: model).contains("layer4_1_p3.1.cbam.SpatialGate.spatial.bn"))
    }

    func testInitialisationFollowsPyTorchDefaults() throws {
        let model = try MANetModel.build(width: 16, inputSize: 64, seed: 3)
        func values(_ name: String) -> [Float] { model.graph.initializers.first { $0.name == name }!.floats! }
        // kaiming_normal_(fan_out, relu): std sqrt(2 / (out * k * k)).
        let w = values("layer4_2.0.conv1.weight")  // [128, 64, 3, 3]
        let mean = w.reduce(0, +) / Float(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / Float(128 * 9)).squareRoot(), accuracy: 0.02 * (2.0 / Float(128 * 9)).squareRoot())
        XCTAssertEqual(mean, 0, accuracy: 0.002)
        // nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
        let fc = values("fc_1.weight")  // [7, 128]
        let bound = 1 / Float(128).squareRoot()
        XCTAssertTrue(fc.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(fc.map(abs).max()!, 0.9 * bound)
        XCTAssertTrue(values("fc_1.bias").allSatisfy { abs($0) <= bound })
        XCTAssertEqual(values("layer1.0.bn1.weight"), [Float](repeating: 1, count: 16))
        XCTAssertEqual(values("layer1.0.bn1.bias"), [Float](repeating: 0, count: 16))
        XCTAssertEqual(values("layer1.0.bn1.running_var"), [Float](repeating: 1, count: 16))
        // Seeded: same seed, same weights; another seed, other weights.
        XCTAssertEqual(try MANetModel.build(width: 16, inputSize: 64, seed: 3), model)
        XCTAssertNotEqual(try MANetModel.build(width: 16, inputSize: 64, seed: 4).graph.initializers, model.graph.initializers)
    }

    func testUnsupportedOptionsAreClearErrors() {
        for size in [0, 32, 100, 225] {
            XCTAssertThrowsError(try MANetModel.build(inputSize: size)) { error in
                XCTAssertEqual(error as? MANetConfigurationError, .inputSize(size))
                XCTAssertTrue("\(error)".contains("multiple of 32 that is at least 64"), "\(error)")
            }
        }
        XCTAssertThrowsError(try MANetModel.build(width: 2)) { XCTAssertEqual($0 as? MANetConfigurationError, .width(2)) }
        XCTAssertThrowsError(try MANetModel.build(numClasses: 1)) { XCTAssertEqual($0 as? MANetConfigurationError, .numClasses(1)) }
        XCTAssertNoThrow(try MANetModel.build(width: 4, inputSize: 64))
        XCTAssertNoThrow(try MANetModel.build(width: 4, inputSize: 160))
    }

    func testGeneratorStateRoundTrips() {
        var a = Xoshiro256(seed: 42)
        _ = (0..<10).map { _ in a.next() }
        var b = Xoshiro256(stateWords: a.stateWords)!
        XCTAssertEqual((0..<5).map { _ in a.next() }, (0..<5).map { _ in b.next() })
        XCTAssertNil(Xoshiro256(stateWords: [0, 0, 0, 0]), "the all-zero state is degenerate")
        XCTAssertNil(Xoshiro256(stateWords: [1, 2, 3]))
        var c = Xoshiro256(seed: 1)
        let samples = (0..<20000).map { _ in c.normal() }
        let mean = samples.reduce(0, +) / 20000
        let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20000
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }
}
