// The authors' .pth.tar both ways (fixtures/pth, made by tools/fixtures/pth_fixtures.py with real PyTorch):
// resuming their run continues PyTorch's SGD exactly, and the export is their layout again.

import Foundation
import XCTest
import ManetSupport
import ONNXIR
import PyTorchFormat
import Runtime
import TestSupport
@testable import MANet

final class PyTorchCheckpointTests: XCTestCase {
    static let authors = Fixtures.path("pth/authors_w4.pth.tar")
    static let reference = Fixtures.path("pth/resume_reference.pth")

    func list(_ value: PickleValue?) -> [PickleValue] {
        if case .list(let l)? = value { return l.items }
        return []
    }

    /// Runs PyTorch's steps 3-5 in the Swift trainer from the checkpoint PyTorch saved after step 2.
    func resumedRun(momentum: Bool) throws -> (losses: [Double], after: TrainingCheckpoint) {
        let imported = try PyTorchTrainingState.resumeCheckpoint(path: Self.authors, options: ImportOptions(inputSize: 64))
        var checkpoint = imported.checkpoint
        if !momentum { checkpoint.momentumBuffers = [] }
        var options = TrainingOptions()
        options.width = checkpoint.width
        options.numClasses = checkpoint.numClasses
        options.inputSize = 64
        options.beta = 0.6
        options.recipe = checkpoint.recipe
        let model = try MANetModel.build(numClasses: 7, width: 4, inputSize: 64)
        let trainer = try Trainer(model: model, options: options, classNames: (0..<7).map(String.init),
                                  generator: Xoshiro256(seed: 1), dataSeed: 0)
        try trainer.load(checkpoint, resume: true)
        let file = try TorchFile(path: Self.reference)
        let root = try XCTUnwrap(file.root.dict)
        let inputs = list(root["inputs"]), targets = list(root["targets"])
        XCTAssertEqual(inputs.count, 3)
        var losses: [Double] = []
        for (x, y) in zip(inputs, targets) {
            let images = try Tensor(try file.tensorData(try XCTUnwrap(x.tensor), name: "input"))
            let labels = try XCTUnwrap(try file.tensorData(try XCTUnwrap(y.tensor), name: "target").int64s).map { Int($0) }
            losses.append(try trainer.step(images: images, labels: labels, epoch: checkpoint.epochsCompleted).loss)
        }
        return (losses, try trainer.makeCheckpoint())
    }

    /// The authors' checkpoint after 2 PyTorch SGD steps, resumed here for 3 more, equals PyTorch's
    /// 5-step run: the losses of steps 3-5 and the weights and BN statistics after step 5. Without
    /// the momentum buffers the same run misses by far more than the tolerance.
    func testResumingTheAuthorsCheckpointContinuesPyTorchsRun() throws {
        let file = try TorchFile(path: Self.reference)
        let root = try XCTUnwrap(file.root.dict)
        let expectedLosses = try XCTUnwrap(try file.tensorData(try XCTUnwrap(root["losses"]?.tensor), name: "losses").bytes
            .withUnsafeBytes { raw in (0..<3).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) } } as [Double]?)
        let after = try XCTUnwrap(root["after"]?.dict)

        func errors(_ run: (losses: [Double], after: TrainingCheckpoint)) throws -> (loss: Double, tensor: Double) {
            let loss = zip(run.losses, expectedLosses).map { abs($0 - $1) / abs($1) }.max()!
            var worst = 0.0
            for (key, value) in after.entries {
                let name = try XCTUnwrap(key.string)
                let expected = try XCTUnwrap(try file.tensorData(try XCTUnwrap(value.tensor), name: name).floats)
                let actual = try XCTUnwrap(run.after.tensor(name)?.floats, name)
                worst = max(worst, TrainingParityTests.relativeL2(actual, expected))
            }
            return (loss, worst)
        }
        let resumed = try errors(try resumedRun(momentum: true))
        print("pth resume: losses rel diff \(resumed.loss), state after step 5 rel L2 \(resumed.tensor)")
        XCTAssertLessThanOrEqual(resumed.loss, 1e-4)
        XCTAssertLessThanOrEqual(resumed.tensor, 1e-4)
        let fresh = try errors(try resumedRun(momentum: false))
        print("pth resume without momentum: losses rel diff \(fresh.loss), state rel L2 \(fresh.tensor)")
        XCTAssertGreaterThan(fresh.tensor, 10 * max(resumed.tensor, 1e-6))
    }

    func testResumeReadsEpochBestAccuracyAndEveryMomentumBuffer() throws {
        let imported = try PyTorchTrainingState.resumeCheckpoint(path: Self.authors)
        let c = imported.checkpoint
        XCTAssertEqual(c.epochsCompleted, 2)
        XCTAssertEqual(c.bestAccuracy, 42.5)
        XCTAssertEqual(c.recipe.learningRate, 0.01)
        XCTAssertEqual(c.recipe.momentum, 0.9)
        XCTAssertEqual(c.recipe.weightDecay, 1e-4)
        let trainable = c.stateDict.map(\.name).filter { !PyTorchTrainingState.isBuffer($0) }
        XCTAssertEqual(Set(c.momentumBuffers.map(\.name)), Set(trainable))
        XCTAssertEqual(c.momentumBuffers.count, trainable.count)
        // A re-initialised head starts without momentum.
        let seven = try PyTorchTrainingState.resumeCheckpoint(path: Self.authors, options: ImportOptions(numClasses: 5))
        XCTAssertFalse(seven.checkpoint.momentumBuffers.contains { $0.name.hasPrefix("fc_") })
    }

    /// Export writes the authors' layout: the state_dict in PyTorch's own key order (the file
    /// torch.save wrote), `module.` keys, and each momentum buffer under the id PyTorch gave it.
    func testExportIsTheAuthorsLayoutAgain() throws {
        let original = try TorchFile(path: Self.authors)
        let imported = try PyTorchTrainingState.resumeCheckpoint(path: Self.authors)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for prefix in [true, false] {
            let path = folder.file("out.pth.tar")
            try PyTorchTrainingState.write(imported.checkpoint, file: "test", to: path, modulePrefix: prefix)
            let written = try TorchFile(path: path)
            let a = try XCTUnwrap(original.root.dict), b = try XCTUnwrap(written.root.dict)
            XCTAssertEqual(b.stringKeys, ["epoch", "state_dict", "best_acc", "optimizer"])
            XCTAssertEqual(b["epoch"]?.int, 2)
            let keysA = try XCTUnwrap(a["state_dict"]?.dict).stringKeys
            let keysB = try XCTUnwrap(b["state_dict"]?.dict).stringKeys
            XCTAssertEqual(keysB, prefix ? keysA : keysA.map { String($0.dropFirst(7)) })
            for (key, value) in try XCTUnwrap(a["state_dict"]?.dict).entries {
                let name = try XCTUnwrap(key.string)
                let other = try XCTUnwrap(b["state_dict"]?.dict?[prefix ? name : String(name.dropFirst(7))]?.tensor)
                XCTAssertEqual(try written.tensorData(other, name: name).bytes, try original.tensorData(try XCTUnwrap(value.tensor), name: name).bytes, name)
            }
            let stateA = try XCTUnwrap(a["optimizer"]?.dict?["state"]?.dict)
            let stateB = try XCTUnwrap(b["optimizer"]?.dict?["state"]?.dict)
            XCTAssertEqual(stateA.entries.map { $0.key.int }, stateB.entries.map { $0.key.int })
            for ((_, va), (_, vb)) in zip(stateA.entries, stateB.entries) {
                let ta = try XCTUnwrap(va.dict?["momentum_buffer"]?.tensor), tb = try XCTUnwrap(vb.dict?["momentum_buffer"]?.tensor)
                XCTAssertEqual(try written.tensorData(tb, name: "b").bytes, try original.tensorData(ta, name: "a").bytes)
            }
            let group = try XCTUnwrap(list(b["optimizer"]?.dict?["param_groups"]).first?.dict)
            XCTAssertEqual(list(group["params"]).count, stateA.entries.count)
        }
    }
}
