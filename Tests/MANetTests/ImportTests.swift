// `manet import` in the library: every fixture source gives PyTorch's outputs; bad sources list every problem.

import Foundation
@testable import MANet
import ManetSupport
import ONNXFormat
import ONNXIR
import Runtime
import TestSupport
import XCTest

final class ImportTests: XCTestCase {
    /// Imports `source` and checks it against the PyTorch reference outputs of `referenceFolder`.
    @discardableResult
    func assertImportMatches(_ source: String, referenceFolder: String = "manet_w8_torchscript_op13_bn",
                             line: UInt = #line) throws -> ImportResult {
        try assertImportMatches(path: Fixtures.path(source), label: source, referenceFolder: referenceFolder, line: line)
    }

    /// The same for a source outside `fixtures/`.
    @discardableResult
    func assertImportMatches(path: String, label: String, referenceFolder: String = "manet_w8_torchscript_op13_bn",
                             line: UInt = #line) throws -> ImportResult {
        let result = try ModelImporter.importModel(path: path)
        let c = result.checkpoint
        XCTAssertEqual(c.width, 8, line: line)
        XCTAssertEqual(c.numClasses, 7, line: line)
        XCTAssertEqual(c.inputSize, 224, line: line)
        let ref = try fixtureReference(referenceFolder)
        assertMatchesReference(try trainerLogits(c, input: ref.input), ref, label: label, line: line)
        return result
    }

    func testSafetensorsStateDictImportsByKey() throws {
        let result = try assertImportMatches("manet_w8.safetensors")
        XCTAssertEqual(result.checkpoint.stateDict.count, 692)
        XCTAssertTrue(result.notes.isEmpty, "\(result.notes)")
        // The counters come through as the int64 scalars they are.
        let counter = try XCTUnwrap(result.checkpoint.tensor("bn1.num_batches_tracked"))
        XCTAssertEqual(counter.elementType, .int64)
        XCTAssertEqual(counter.dims, [])
        let original = try Safetensors.read(path: Fixtures.path("manet_w8.safetensors"))
        XCTAssertEqual(counter.int64s, original.first { $0.name == "bn1.num_batches_tracked" }?.int64s)
    }

    func testDataParallelPrefixIsStripped() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let prefixed = folder.file("manet_w8_module_prefix.safetensors")
        try Fixtures.writeModulePrefixedSafetensors(to: prefixed)
        let names = try Safetensors.read(path: prefixed).map(\.name)
        XCTAssertEqual(names.count, 692)
        XCTAssertTrue(names.allSatisfy { $0.hasPrefix("module.") }, "\(names.prefix(3))")
        let result = try assertImportMatches(path: prefixed, label: "manet_w8_module_prefix.safetensors")
        XCTAssertTrue(result.notes.contains { $0.contains("module.") }, "\(result.notes)")
        let plain = try ModelImporter.importModel(path: Fixtures.path("manet_w8.safetensors"))
        XCTAssertEqual(result.checkpoint.stateDict, plain.checkpoint.stateDict)
    }

    func testONNXWithBatchNormMapsByInitializerName() throws {
        let result = try assertImportMatches("manet_w8_torchscript_op13_bn.onnx")
        XCTAssertTrue(result.notes.isEmpty, "\(result.notes)")
        // Same bits as the state_dict the export was made from (ONNX carries no counters: 0).
        let plain = try ModelImporter.importModel(path: Fixtures.path("manet_w8.safetensors"))
        for t in plain.checkpoint.stateDict where !t.name.hasSuffix("num_batches_tracked") {
            XCTAssertEqual(result.checkpoint.tensor(t.name), t, t.name)
        }
        XCTAssertEqual(result.checkpoint.tensor("bn1.num_batches_tracked")?.int64s, [0])
    }

    func testTorchScriptFoldedExportImportsWithIdentityBatchNorm() throws {
        let result = try assertImportMatches("manet_w8_torchscript_op13.onnx", referenceFolder: "manet_w8_torchscript_op13")
        XCTAssertTrue(result.notes.contains { $0.contains("folded") && $0.contains("104 BatchNorm") }, "\(result.notes)")
        let c = result.checkpoint
        XCTAssertEqual(c.tensor("layer1.0.bn1.weight")?.floats, [Float](repeating: 1, count: 8))
        XCTAssertEqual(c.tensor("layer1.0.bn1.running_mean")?.floats, [Float](repeating: 0, count: 8))
        let runningVar = try XCTUnwrap(c.tensor("layer1.0.bn1.running_var")?.floats)
        // The identity holds exactly: (1 - eps) + eps rounds to 1 in float32.
        XCTAssertTrue(runningVar.allSatisfy { ($0 + 1e-5 as Float).squareRoot() == 1 })
    }

    func testDynamoFoldedExportWithExternalDataImports() throws {
        let result = try assertImportMatches("manet_w8_dynamo/model.onnx", referenceFolder: "manet_w8_dynamo")
        XCTAssertTrue(result.notes.contains { $0.contains("folded") }, "\(result.notes)")
    }

    /// `manet import` writes the checkpoint while it reads the source, one tensor at a time: the
    /// file holds exactly the bytes of the checkpoint imported whole and encoded in one piece
    /// (safetensors, zip and legacy torch.save, heads re-initialised or not).
    func testStreamedImportWritesTheWholeCheckpointsBytes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let cases: [(String, ImportOptions)] = [
            ("manet_w8.safetensors", ImportOptions()),
            ("manet_w8.safetensors", ImportOptions(numClasses: 5, seed: 3)),
            ("manet_w8_torchscript_op13_bn.onnx", ImportOptions()),
            ("pth/authors_w4.pth.tar", ImportOptions()),
            ("pth/pretrain_w4_12666_legacy.pth.tar", ImportOptions(numClasses: 7, seed: 9)),
        ]
        for (i, (source, options)) in cases.enumerated() {
            let path = folder.file("streamed-\(i).pb")
            let summary = try ModelImporter.importModel(path: Fixtures.path(source), options: options, writingTo: path)
            let whole = try ModelImporter.importModel(path: Fixtures.path(source), options: options).checkpoint
            XCTAssertEqual(try FileBytes.read(path), try whole.encoded(), source)
            XCTAssertEqual(try TrainingCheckpoint.read(path: path), whole, source)
            XCTAssertEqual(summary.stateDictCount, whole.stateDict.count, source)
            XCTAssertEqual(summary.floatCount, whole.stateDict.filter { $0.elementType == .float }.reduce(0) { $0 + $1.elementCount! }, source)
            XCTAssertEqual([summary.width, summary.numClasses], [whole.width, whole.numClasses], source)
        }
    }

    /// `TrainingCheckpoint.write` streams too: a checkpoint with momentum buffers, history and
    /// class names is written as the bytes `encoded()` gives in one piece.
    func testCheckpointWriteIsTheEncodedBytes() throws {
        var checkpoint = try PyTorchTrainingState.resumeCheckpoint(path: Fixtures.path("pth/authors_w4.pth.tar")).checkpoint
        XCTAssertFalse(checkpoint.momentumBuffers.isEmpty)
        checkpoint.history = [EpochRecord(epoch: 0, learningRate: 0.01, trainLoss: 1.5, trainAccuracy: 40, testLoss: 1.25,
                                          testAccuracy: 42.5, seconds: 3)]
        checkpoint.classNames = (0..<7).map { "class \($0)" }
        checkpoint.stepInEpoch = 2
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("c.pb")
        try checkpoint.write(to: path)
        XCTAssertEqual(try FileBytes.read(path), try checkpoint.encoded())
        XCTAssertEqual(try TrainingCheckpoint.read(path: path), checkpoint)
    }

    /// A value found bad while the checkpoint is being written (after every key was checked)
    /// stops the import and leaves the output as it was.
    func testNonFiniteValueFoundWhileStreamingLeavesTheOutput() throws {
        var tensors = try Safetensors.read(path: Fixtures.path("manet_w8.safetensors"))
        let i = try XCTUnwrap(tensors.firstIndex { $0.name == "layer4_2.1.conv2_2_1.weight" })
        var values = try XCTUnwrap(tensors[i].floats)
        values[5] = .nan
        tensors[i] = TensorData(name: tensors[i].name, dims: tensors[i].dims, floats: values)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let source = folder.file("nan.safetensors"), output = folder.file("out.pb")
        try SafetensorsWriter.write(tensors, to: source)
        try AtomicFile.write([1, 2, 3], to: output)
        XCTAssertThrowsError(try ModelImporter.importModel(path: source, writingTo: output)) { error in
            XCTAssertTrue("\(error)".contains("layer4_2.1.conv2_2_1.weight") && "\(error)".contains("not finite"), "\(error)")
        }
        XCTAssertEqual(try FileBytes.read(output), [1, 2, 3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["nan.safetensors", "out.pb"])
    }

    func testEveryMissingUnexpectedAndMisshapedKeyIsListed() throws {
        var tensors = try Safetensors.read(path: Fixtures.path("manet_w8.safetensors"))
        tensors.removeAll { $0.name == "layer1.0.bn1.running_mean" || $0.name == "layer4_2.1.conv2_2_1.weight" }
        tensors.append(TensorData(name: "classifier.weight", dims: [2], floats: [1, 2]))
        tensors.append(TensorData(name: "extra.num_batches_tracked", dims: [], int64s: [3]))
        let i = try XCTUnwrap(tensors.firstIndex { $0.name == "fc_2.bias" })
        tensors[i] = TensorData(name: "fc_2.bias", dims: [6], floats: [Float](repeating: 0, count: 6))
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("broken.safetensors")
        try SafetensorsWriter.write(tensors, to: path)
        XCTAssertThrowsError(try ModelImporter.importModel(path: path)) { error in
            guard case let ImportError.keyMismatch(_, missing, unexpected, misshaped) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(missing, ["layer1.0.bn1.running_mean", "layer4_2.1.conv2_2_1.weight"])
            XCTAssertEqual(Set(unexpected), ["classifier.weight", "extra.num_batches_tracked"])
            XCTAssertEqual(misshaped, [ShapeMismatch(key: "fc_2.bias", found: [6], expected: [7])])
            let text = "\(error)"
            for fragment in ["2 missing key(s)", "2 unexpected key(s)", "1 key(s) with the wrong shape", "fc_2.bias: [6]"] {
                XCTAssertTrue(text.contains(fragment), text)
            }
        }
    }

    func testGivenWidthThatDisagreesListsMisshapedKeys() throws {
        XCTAssertThrowsError(try ModelImporter.importModel(path: Fixtures.path("manet_w8.safetensors"),
                                                           options: ImportOptions(width: 16))) { error in
            guard case let ImportError.keyMismatch(_, missing, unexpected, misshaped) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(missing.isEmpty && unexpected.isEmpty)
            XCTAssertEqual(misshaped.first, ShapeMismatch(key: "conv1.weight", found: [8, 3, 7, 7], expected: [16, 3, 7, 7]))
        }
    }

    func testOtherClassCountReinitialisesTheHeads() throws {
        let source = try ModelImporter.importModel(path: Fixtures.path("manet_w8.safetensors"))
        let result = try ModelImporter.importModel(path: Fixtures.path("manet_w8.safetensors"),
                                                   options: ImportOptions(numClasses: 8, seed: 5))
        XCTAssertEqual(result.sourceNumClasses, 7)
        XCTAssertEqual(result.checkpoint.numClasses, 8)
        XCTAssertTrue(result.notes.contains { $0.contains("re-initialised for 8 classes") }, "\(result.notes)")
        let bound = 1 / Float(64).squareRoot()
        for name in ["fc_1.weight", "fc_1.bias", "fc_2.weight", "fc_2.bias"] {
            let t = try XCTUnwrap(result.checkpoint.tensor(name))
            XCTAssertEqual(t.dims.first, 8, name)
            let values = try XCTUnwrap(t.floats)
            XCTAssertTrue(values.allSatisfy { abs($0) <= bound }, name)
            XCTAssertGreaterThan(Set(values).count, values.count / 2, "\(name) is not random")
        }
        for t in source.checkpoint.stateDict where !t.name.hasPrefix("fc_") {
            XCTAssertEqual(result.checkpoint.tensor(t.name), t, t.name)
        }
        // The result runs.
        let input = Tensor(shape: [1, 3, 224, 224], floats: [Float](repeating: 0.5, count: 3 * 224 * 224))
        XCTAssertEqual(try trainerLogits(result.checkpoint, input: input).local.shape, [1, 8])
    }

    func testImportedModelTrainsOneStep() throws {
        let result = try ModelImporter.importModel(path: Fixtures.path("manet_w8_torchscript_op13.onnx"),
                                                   options: ImportOptions(inputSize: 64))
        let c = result.checkpoint
        var options = TrainingOptions()
        options.width = c.width
        options.numClasses = c.numClasses
        options.inputSize = c.inputSize
        options.threads = 2
        let trainer = try Trainer(options: options, classNames: c.classNames)
        try trainer.load(c, resume: false)
        var random = Xoshiro256(seed: 3)
        let images = Tensor(shape: [4, 3, 64, 64], floats: (0..<(4 * 3 * 64 * 64)).map { _ in Float(random.nextUnitDouble()) })
        let step = try trainer.step(images: images, labels: [0, 3, 6, 2])
        XCTAssertTrue(step.loss.isFinite && step.loss > 0)
        let after = try trainer.makeCheckpoint()
        XCTAssertNotEqual(after.tensor("fc_1.weight"), c.tensor("fc_1.weight"), "SGD changed nothing")
        XCTAssertEqual(after.tensor("bn1.num_batches_tracked")?.int64s, [1])
    }

    func testAnotherArchitectureNamesWhatIsMissing() throws {
        // An ONNX model that is not MA-Net (the format fixtures' typed-field model).
        XCTAssertThrowsError(try ModelImporter.importModel(path: Fixtures.path("format/typed_fields.onnx"))) { error in
            guard case ImportError.notMANet = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("missing conv1.weight"), "\(error)")
        }
    }

    func testMalformedSafetensorsHeaderIsAnError() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("bad.safetensors")
        // Header length 2^40, far past the end of the file; the header starts with `{`.
        var bytes: [UInt8] = [0, 0, 0, 0, 0, 1, 0, 0]
        bytes += Array("{\"a\":{}}".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelImporter.importModel(path: path)) { error in
            XCTAssertTrue("\(error)".contains("runs past the end"), "\(error)")
        }
    }
}
