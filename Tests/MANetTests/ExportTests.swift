// `manet export` in the library: every variant passes the checker, and onnxruntime gives the trainer's outputs.

import Foundation
@testable import MANet
import ManetSupport
import ONNXFormat
import ONNXIR
import Runtime
import TestSupport
import XCTest

final class ExportTests: XCTestCase {
    /// The width-8 fixture weights (non-trivial BatchNorm statistics) at input 64: small and fast.
    static let checkpoint: TrainingCheckpoint = {
        var c = try! ModelImporter.importModel(path: Fixtures.path("manet_w8.safetensors"),
                                               options: ImportOptions(inputSize: 64)).checkpoint
        c.classNames = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger"]
        return c
    }()

    static let input: Tensor = {
        var random = Xoshiro256(seed: 21)
        return Tensor(shape: [3, 3, 64, 64], floats: (0..<(3 * 3 * 64 * 64)).map { _ in Float(random.nextUnitDouble()) })
    }()

    /// Runs `model` in onnxruntime (tools/parity/ort_run.py) on `input`; outputs by name.
    func onnxruntime(_ modelPath: String, input: Tensor, folder: TemporaryFolder) throws -> [String: Tensor] {
        let python = try TestEnvironment.require("MANET_PYTHON")
        let inDir = folder.file("in"), outDir = folder.file("out")
        try? FileManager.default.removeItem(atPath: outDir)
        try FileManager.default.createDirectory(atPath: inDir, withIntermediateDirectories: true)
        try ONNXFile.saveTensor(input.tensorData(name: "input"), to: inDir + "/input_0.pb")
        let run = try runProcess(python, [Fixtures.packageRoot.appendingPathComponent("tools/parity/ort_run.py").path, modelPath, inDir, outDir])
        XCTAssertEqual(run.status, 0, run.stderr)
        var outputs: [String: Tensor] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: outDir) where name.hasPrefix("output_") {
            let t = try ONNXFile.loadTensor(path: outDir + "/" + name)
            outputs[t.name] = try Tensor(t)
        }
        return outputs
    }

    /// Exports with `options`, checks the file, and compares onnxruntime with the trainer within
    /// rtol 1e-4, atol 1e-5. Returns the loaded model for further checks.
    @discardableResult
    func assertExportMatchesTrainer(_ options: ExportOptions, label: String, line: UInt = #line) throws -> Model {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("model.onnx")
        _ = try MANetExporter.export(Self.checkpoint, to: path, options: options)
        let loaded = try ONNXFile.loadWithDetails(path: path)
        XCTAssertEqual(loaded.externalDataFiles, options.externalData ? ["model.onnx.data"] : [], line: line)
        XCTAssertEqual(FileManager.default.fileExists(atPath: path + ".data"), options.externalData, line: line)
        let model = loaded.model
        XCTAssertEqual(model.opsetVersion(for: ""), Int64(options.opset), line: line)
        XCTAssertEqual(ONNXFile.verdict(model), .valid, line: line)

        let trainer = try trainerLogits(Self.checkpoint, input: Self.input)
        let ort = try onnxruntime(path, input: Self.input, folder: folder)
        var expected: [(String, Tensor)] = [("logits_local", trainer.local), ("logits_global", trainer.global)]
        if options.fused {
            // The trainer's prediction rule (MANetLoss): beta * local + (1 - beta) * global in float.
            let b = Float(Self.checkpoint.beta), rest = Float(1 - Self.checkpoint.beta)
            let fused = zip(trainer.local.floats, trainer.global.floats).map { b * $0 + rest * $1 }
            let classes = trainer.local.shape[1]
            var probabilities: [Float] = []
            for row in 0..<trainer.local.shape[0] {
                let r = fused[(row * classes)..<((row + 1) * classes)].map(Double.init)
                let m = r.max()!, e = r.map { Foundation.exp($0 - m) }, s = e.reduce(0, +)
                probabilities += e.map { Float($0 / s) }
            }
            expected += [("logits", Tensor(shape: trainer.local.shape, floats: fused)),
                         ("probabilities", Tensor(shape: trainer.local.shape, floats: probabilities))]
        }
        XCTAssertEqual(Set(ort.keys), Set(expected.map(\.0)), label, line: line)
        for (name, want) in expected {
            guard let got = ort[name] else { continue }
            XCTAssertEqual(got.shape, want.shape, "\(label) \(name)", line: line)
            assertClose(got.floats, want.floats, rtol: 1e-4, atol: 1e-5, "\(label) \(name)", line: line)
            print("export \(label): \(name) onnxruntime vs trainer max|diff| \(maxAbsDiff(got.floats, want.floats))")
        }
        return model
    }

    func testDefaultExportMatchesTrainerInOnnxruntime() throws {
        let model = try assertExportMatchesTrainer(ExportOptions(), label: "default")
        XCTAssertEqual(model.graph.nodes.filter { $0.opType == "BatchNormalization" }.count, 104)
        XCTAssertEqual(model.graph.outputs.map(\.name), ["logits_local", "logits_global"])
        XCTAssertEqual(model.graph.inputs.first?.type,
                       .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(3), .fixed(64), .fixed(64)]))
        let metadata = Dictionary(uniqueKeysWithValues: model.metadata.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["class_names"], "Neutral,Happiness,Sadness,Surprise,Fear,Disgust,Anger")
        XCTAssertEqual(metadata["beta"], "0.6")
        XCTAssertEqual(metadata["input_size"], "64")
        XCTAssertEqual(metadata["input_range"], "0..1")
        XCTAssertEqual(model.producerName, "manet")
        XCTAssertEqual(model.producerVersion, MANetExporter.toolkitVersion)
        // Parameters are the checkpoint's, bit for bit, under their state_dict names.
        for t in model.graph.initializers {
            XCTAssertEqual(t.bytes, Self.checkpoint.tensor(t.name)?.bytes, t.name)
        }
    }

    func testFusedExportAddsLogitsAndProbabilities() throws {
        let model = try assertExportMatchesTrainer(ExportOptions(fused: true), label: "fused")
        XCTAssertEqual(model.graph.outputs.map(\.name), ["logits_local", "logits_global", "logits", "probabilities"])
    }

    func testFoldedBatchNormExportMatchesTrainer() throws {
        let model = try assertExportMatchesTrainer(ExportOptions(foldBatchNorm: true), label: "fold-bn")
        XCTAssertEqual(model.graph.nodes.filter { $0.opType == "BatchNormalization" }.count, 0)
        XCTAssertEqual(model.graph.nodes.filter { $0.opType == "Conv" && $0.inputs.count == 3 }.count, 104)
        XCTAssertFalse(model.graph.initializers.contains { $0.name.hasSuffix("running_mean") })
        XCTAssertNotNil(model.graph.initializers.first { $0.name == "conv1.bias" })
    }

    func testExternalDataExportMatchesTrainer() throws {
        try assertExportMatchesTrainer(ExportOptions(externalData: true), label: "external-data")
    }

    func testOpset13ExportMatchesTrainer() throws {
        try assertExportMatchesTrainer(ExportOptions(opset: 13), label: "opset13")
    }

    func testOpset17ExportMatchesTrainer() throws {
        try assertExportMatchesTrainer(ExportOptions(opset: 17), label: "opset17")
    }

    func testAllOptionsTogetherAtOpset13() throws {
        try assertExportMatchesTrainer(ExportOptions(opset: 13, fused: true, foldBatchNorm: true, externalData: true),
                                       label: "opset13+fused+fold-bn+external-data")
    }

    func testOtherOpsetsAreRefused() {
        for opset in [12, 18, 20] {
            XCTAssertThrowsError(try MANetExporter.model(from: Self.checkpoint, options: ExportOptions(opset: opset))) { error in
                XCTAssertEqual(error as? ExportError, .unsupportedOpset(opset))
                XCTAssertTrue("\(error)".contains("choose 13 to 17"), "\(error)")
            }
        }
    }

    func testFoldingChangesOnlyRoundingInTheInterpreter() throws {
        // The pass alone, checked with the interpreter: folded and unfolded graphs agree.
        let model = try MANetExporter.model(from: Self.checkpoint)
        let folded = BatchNormFolding.fold(model)
        XCTAssertEqual(folded.folded.count, 104)
        let a = try Executor(model: model).run(inputs: ["input": Self.input])
        let b = try Executor(model: folded.model).run(inputs: ["input": Self.input])
        for name in ["logits_local", "logits_global"] {
            assertClose(b[name]!.floats, a[name]!.floats, rtol: 1e-4, atol: 1e-5, name)
        }
    }

    func testCheckpointOfAnotherArchitectureNamesWhatIsMissing() throws {
        var c = Self.checkpoint
        c.stateDict.removeAll { $0.name.hasPrefix("layer3_2.") || $0.name == "fc_1.weight" }
        XCTAssertThrowsError(try MANetExporter.model(from: c, file: "other.pb")) { error in
            guard case let ImportError.keyMismatch(_, missing, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(missing.contains("fc_1.weight"))
            XCTAssertTrue(missing.contains("layer3_2.1.bn2_2_4.running_var"))
            XCTAssertTrue("\(error)".contains("missing key(s)"), "\(error)")
        }
    }

    func testSafetensorsExportRoundTripsThroughTheImporter() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("state.safetensors")
        try MANetExporter.exportSafetensors(Self.checkpoint, to: path)
        let written = try Safetensors.read(path: path)
        let original = try Safetensors.read(path: Fixtures.path("manet_w8.safetensors"))
        // Same keys, shapes, dtypes and bits as the state_dict PyTorch saved.
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: written.map { ($0.name, $0) }),
                       Dictionary(uniqueKeysWithValues: original.map { ($0.name, $0) }))
    }
}
