// Parity of the Swift MA-Net and trainer with PyTorch (fixtures/training_w8, made by tools/fixtures/make_fixtures.py;
// a full-width reference from tools/parity/training_parity_full.py when MANET_TRAINING_PARITY_DIR is set).

import Foundation
import ManetSupport
import XCTest
import ONNXIR
import ONNXFormat
import Runtime
import TestSupport
@testable import MANet

final class TrainingParityTests: XCTestCase {
    static let weightsPath = Fixtures.path("manet_w8.safetensors")
    static let trainingDir = Fixtures.path("training_w8")

    func fixtureWeights() throws -> [String: TensorData] {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: Self.weightsPath), "fixture \(Self.weightsPath) missing")
        return Dictionary(uniqueKeysWithValues: try Safetensors.read(path: Self.weightsPath).map { ($0.name, $0) })
    }

    static func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
        var diff = 0.0, ref = 0.0
        for (x, y) in zip(a, b) { diff += Double(x - y) * Double(x - y); ref += Double(y) * Double(y) }
        return ref == 0 ? diff.squareRoot() : (diff / ref).squareRoot()
    }

    func testBuilderNamesAndShapesEqualThePyTorchStateDict() throws {
        let weights = try fixtureWeights()
        let built = try MANetModel.build(numClasses: 7, width: 8, inputSize: 64)
        let builtShapes = Dictionary(uniqueKeysWithValues: built.graph.initializers.map { ($0.name, $0.dims) })
        let counters = weights.keys.filter { $0.hasSuffix(".num_batches_tracked") }
        let fixtureShapes = weights.filter { !$0.key.hasSuffix(".num_batches_tracked") }.mapValues(\.dims)
        XCTAssertEqual(Set(builtShapes.keys).subtracting(fixtureShapes.keys).sorted(), [], "names only the builder has")
        XCTAssertEqual(Set(fixtureShapes.keys).subtracting(builtShapes.keys).sorted(), [], "names only PyTorch has")
        XCTAssertEqual(builtShapes, fixtureShapes)
        // Every BatchNormalization carries a num_batches_tracked in PyTorch; the trainer keeps one per module.
        XCTAssertEqual(Set(counters), Set(MANetModel.batchNormModules(of: built).map { $0 + ".num_batches_tracked" }))
    }

    func testForwardAtFixtureWeightsMatchesPyTorch() throws {
        let weights = try fixtureWeights()
        let dir = Fixtures.path("manet_w8_torchscript_op13_bn/test_data_set_0")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: dir), "fixture \(dir) missing")
        let input = try Tensor(try ONNXFile.loadTensor(path: dir + "/input_0.pb"))
        let executor = try Executor(model: try parityModel(width: 8, inputSize: input.shape[2], weights: weights),
                                    context: ExecutionContext(training: false, deterministic: true))
        let out = try executor.run(inputs: ["input": input])
        for (k, name) in ["logits_local", "logits_global"].enumerated() {
            let reference = try Tensor(try ONNXFile.loadTensor(path: dir + "/output_\(k).pb"))
            let actual = try XCTUnwrap(out[name])
            XCTAssertEqual(actual.shape, reference.shape)
            let maxRef = reference.floats.map(abs).max() ?? 0
            let maxDiff = zip(actual.floats, reference.floats).map { abs($0 - $1) }.max() ?? 0
            print("parity forward \(name): max|diff| \(maxDiff) (max|ref| \(maxRef))")
            XCTAssertLessThanOrEqual(maxDiff, 1e-5 * max(1, maxRef), name)
        }
    }

    struct Meta: Decodable {
        struct ModelInfo: Decodable { var width: Int; var num_classes: Int; var input: [Int] }
        struct InitialWeights: Decodable { var path: String }
        var model: ModelInfo
        var initial_weights: InitialWeights
        var batches: [ParityBatch]
        var losses: [Double]
        var beta: Double
        var optimizer: ParityOptimizer
    }

    func testFiveSGDStepsMatchPyTorch() throws {
        let weights = try fixtureWeights()
        let metaPath = Self.trainingDir + "/meta.json"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: metaPath), "fixture \(metaPath) missing")
        let meta = try JSONDecoder().decode(Meta.self, from: try Data(contentsOf: URL(fileURLWithPath: metaPath)))
        try checkSGDSteps(directory: Self.trainingDir, meta: meta, weights: weights, width: 8, inputSize: 64)
    }

    /// The same checks and limits on a reference written by tools/parity/training_parity_full.py (full width,
    /// too big to commit) into the folder named by MANET_TRAINING_PARITY_DIR; skipped when it is unset.
    func testFiveSGDStepsMatchPyTorchInConfiguredDirectory() throws {
        let variable = "MANET_TRAINING_PARITY_DIR"
        let directory = ProcessInfo.processInfo.environment[variable] ?? ""
        try XCTSkipIf(directory.isEmpty, "\(variable) is unset: run tools/parity/training_parity_full.py DIR and set \(variable)=DIR "
                      + "to check a full-width reference (the width-8 fixture is checked by testFiveSGDStepsMatchPyTorch)")
        let metaPath = directory + "/meta.json"
        guard FileManager.default.fileExists(atPath: metaPath) else {
            return XCTFail("\(variable)=\(directory): no meta.json there (write it with tools/parity/training_parity_full.py)")
        }
        let meta = try JSONDecoder().decode(Meta.self, from: try Data(contentsOf: URL(fileURLWithPath: metaPath)))
        guard meta.model.num_classes == 7, meta.model.input.count == 4, meta.model.input[2] == meta.model.input[3] else {
            return XCTFail("\(metaPath): expected 7 classes and a square [batch, 3, size, size] input, got "
                           + "\(meta.model.num_classes) classes and input \(meta.model.input)")
        }
        let weightsPath = directory + "/" + meta.initial_weights.path
        let weights = Dictionary(uniqueKeysWithValues: try Safetensors.read(path: weightsPath).map { ($0.name, $0) })
        print("parity directory \(directory): width \(meta.model.width), input \(meta.model.input)")
        try checkSGDSteps(directory: directory, meta: meta, weights: weights, width: meta.model.width,
                          inputSize: meta.model.input[3])
    }

    /// Runs the reference's batches through the Swift trainer from the reference's initial weights and
    /// checks the step-1 gradients (rel L2 <= 1e-3), the losses (<= 1e-4 rel) and the BN running
    /// statistics after the last step (rel L2 <= 1e-4) against it.
    func checkSGDSteps(directory: String, meta: Meta, weights: [String: TensorData], width: Int, inputSize: Int) throws {
        let trainer = try parityTrainer(width: width, inputSize: inputSize, beta: meta.beta, optimizer: meta.optimizer, weights: weights)
        var stepOneGradients: [String: Tensor] = [:]
        trainer.onGradients = { if stepOneGradients.isEmpty { stepOneGradients = $0 } }

        var losses: [Double] = []
        for batch in meta.batches {
            losses.append(try trainer.step(images: try batch.images(in: directory), labels: try batch.labels(in: directory)).loss)
        }

        // Step-1 gradient of every parameter.
        let referenceGradients = try Safetensors.read(path: directory + "/grads_step1.safetensors")
        XCTAssertEqual(Set(referenceGradients.map(\.name)), Set(trainer.roles.trainable), "PyTorch's named_parameters")
        var worst = (name: "", error: 0.0)
        for reference in referenceGradients {
            let actual = try XCTUnwrap(stepOneGradients[reference.name], reference.name)
            let error = Self.relativeL2(actual.floats, try XCTUnwrap(reference.floats))
            if error > worst.error { worst = (reference.name, error) }
            XCTAssertLessThanOrEqual(error, 1e-3, "gradient of \(reference.name)")
        }
        print("parity gradients: \(referenceGradients.count) parameters, max relative L2 error \(worst.error) (\(worst.name))")

        // Losses of the five steps.
        XCTAssertEqual(losses.count, meta.losses.count)
        let lossErrors = zip(losses, meta.losses).map { abs($0 - $1) / abs($1) }
        print("parity losses: swift \(losses) pytorch \(meta.losses) max relative diff \(lossErrors.max()!)")
        for (k, e) in lossErrors.enumerated() { XCTAssertLessThanOrEqual(e, 1e-4, "loss of step \(k + 1)") }

        // BatchNormalization running statistics after five steps.
        let checkpoint = try trainer.makeCheckpoint()
        var worstStat = (name: "", error: 0.0)
        for reference in try Safetensors.read(path: directory + "/bn_stats_step5.safetensors") {
            let actual = try XCTUnwrap(checkpoint.tensor(reference.name), reference.name)
            if reference.elementType == .int64 {
                XCTAssertEqual(actual.int64s, reference.int64s, reference.name)
                continue
            }
            let error = Self.relativeL2(try XCTUnwrap(actual.floats), try XCTUnwrap(reference.floats))
            if error > worstStat.error { worstStat = (reference.name, error) }
            XCTAssertLessThanOrEqual(error, 1e-4, reference.name)
        }
        print("parity BN running stats after 5 steps: max relative L2 error \(worstStat.error) (\(worstStat.name))")
    }
}
