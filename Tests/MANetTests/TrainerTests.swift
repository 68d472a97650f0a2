// The trainer end to end at small width: logs, checkpoints, exact resume, and the bad-input stops.

import Foundation
import ManetSupport
import XCTest
import ONNXIR
import Runtime
import TestSupport
@testable import MANet

final class TrainerTests: XCTestCase {
    /// A tiny image-folder dataset: 3 classes told apart by colour, noisy, 64x64 PNGs.
    func makeDataset(in folder: TemporaryFolder, trainPerClass: Int = 4, testPerClass: Int = 2) throws -> String {
        var rng = Xoshiro256(seed: 99)
        let root = folder.file("data")
        for (split, count) in [("train", trainPerClass), ("test", testPerClass)] {
            for c in 0..<3 {
                let dir = "\(root)/\(split)/\(c)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for i in 0..<count {
                    var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
                    for p in 0..<(64 * 64) {
                        for ch in 0..<3 {
                            let base = ch == c ? 180.0 : 60.0
                            pixels[p * 3 + ch] = UInt8(max(0, min(255, base + rng.normal() * 40)))
                        }
                    }
                    let png = try ImageCodec.encodePNG(RGBImage(width: 64, height: 64, pixels: pixels))
                    try png.write(to: URL(fileURLWithPath: "\(dir)/img\(i).png"))
                }
            }
        }
        return root
    }

    func options(checkpointDir: String?, log: String?, epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.width = 4
        o.numClasses = 3
        o.inputSize = 64
        o.seed = 5
        o.recipe.epochs = epochs
        o.recipe.batchSize = 4
        o.recipe.stepSize = 1  // exercise the schedule across the resume boundary
        o.recipe.gamma = 0.5
        o.printFrequency = 1
        o.threads = 2
        o.checkpointDirectory = checkpointDir
        o.logPath = log
        return o
    }

    func loaders(_ root: String, _ trainer: Trainer, _ o: TrainingOptions) throws -> (BatchLoader, BatchLoader) {
        let (train, test) = try ImageFolderDataset.load(root: URL(fileURLWithPath: root))
        return (try BatchLoader(dataset: train, options: BatchLoaderOptions(batchSize: 4, inputSize: 64, shuffle: true, augment: true, seed: trainer.dataSeed)),
                try BatchLoader(dataset: test, options: BatchLoaderOptions(batchSize: 4, inputSize: 64, shuffle: false, augment: false, seed: 0)))
    }

    func testResumeRepeatsTheUninterruptedRunStepForStep() throws {
        let folder = try TemporaryFolder("manet-resume")
        defer { folder.remove() }
        let root = try makeDataset(in: folder)
        let names = ["0", "1", "2"]

        // Uninterrupted: 3 epochs.
        let full = try Trainer(options: options(checkpointDir: nil, log: nil, epochs: 3), classNames: names)
        var fullLosses: [String] = []
        full.onStep = { e, i, loss in fullLosses.append("\(e).\(i) \(loss)") }
        let (a, b) = try loaders(root, full, full.options)
        try full.run(train: a, test: b, log: try LogWriter(path: nil))

        // Interrupted after epoch 1 (of 0, 1, 2), then resumed from checkpoint.pb.
        let ckdir = folder.file("ck")
        try FileManager.default.createDirectory(atPath: ckdir, withIntermediateDirectories: true)
        let logPath = folder.file("ck/log.txt")
        let first = try Trainer(options: options(checkpointDir: ckdir, log: logPath, epochs: 2), classNames: names)
        var resumedLosses: [String] = []
        first.onStep = { e, i, loss in resumedLosses.append("\(e).\(i) \(loss)") }
        let (c, d) = try loaders(root, first, first.options)
        try first.run(train: c, test: d, log: try LogWriter(path: logPath))

        let checkpoint = try TrainingCheckpoint.read(path: ckdir + "/checkpoint.pb")
        XCTAssertEqual(checkpoint.epochsCompleted, 2)
        XCTAssertEqual(checkpoint.learningRate, 0.01 * 0.5 * 0.5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: ckdir + "/model_best.pb"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("ck/log.svg")), "curves beside the log")
        let model = try MANetModel.build(numClasses: 3, width: 4, inputSize: 64)
        let second = try Trainer(model: model, options: options(checkpointDir: ckdir, log: logPath, epochs: 3), classNames: names,
                                 generator: Xoshiro256(stateWords: checkpoint.generatorState)!, dataSeed: checkpoint.dataSeed)
        try second.load(checkpoint, resume: true)
        second.onStep = { e, i, loss in resumedLosses.append("\(e).\(i) \(loss)") }
        let (e, f) = try loaders(root, second, second.options)
        try second.run(train: e, test: f, log: try LogWriter(path: logPath))

        XCTAssertEqual(fullLosses.count, 9)
        XCTAssertEqual(resumedLosses, fullLosses, "every step's loss, bit for bit")
        XCTAssertEqual(second.history.map(\.testAccuracy), full.history.map(\.testAccuracy))
        XCTAssertEqual(try second.makeCheckpoint().stateDict, try full.makeCheckpoint().stateDict)

        // The log holds the authors' lines for all three epochs, appended across the resume.
        let log = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.filter { $0.hasPrefix("Current learning rate: ") },
                       ["Current learning rate: 0.01", "Current learning rate: 0.005", "Current learning rate: 0.0025"])
        XCTAssertEqual(log.filter { $0.hasPrefix("Epoch: [2][") }.count, 3)
        XCTAssertEqual(log.filter { $0.hasPrefix("Epoch: [0][0/3]\tLoss ") }.count, 1)
        XCTAssertEqual(log.filter { $0.hasPrefix(" * Accuracy ") }.count, 3)
        let counters = try XCTUnwrap(try second.makeCheckpoint().tensor("layer1.0.bn1.num_batches_tracked"))
        XCTAssertEqual(counters.int64s, [9])
        XCTAssertEqual(counters.elementType, .int64)
    }

    func testNonFiniteLossStopsBeforeAnyUpdate() throws {
        let trainer = try Trainer(options: options(checkpointDir: nil, log: nil, epochs: 1), classNames: ["0", "1", "2"])
        let before = trainer.executor.initializer("fc_1.weight")
        let images = Tensor(shape: [2, 3, 64, 64], floats: [Float](repeating: .nan, count: 2 * 3 * 64 * 64))
        XCTAssertThrowsError(try trainer.step(images: images, labels: [0, 1], epoch: 3, stepInEpoch: 7)) { error in
            guard case .nonFiniteLoss(let epoch, let step, let global, _)? = error as? TrainingError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual([epoch, step, global], [3, 7, 1])
            XCTAssertTrue("\(error)".contains("epoch 3, step 7"), "\(error)")
        }
        XCTAssertEqual(trainer.executor.initializer("fc_1.weight"), before)
        // A state holding NaN is never written as a checkpoint (here: the NaN forward already
        // poisoned BatchNormalization's running statistics, so no checkpoint can come from it).
        let fresh = try Trainer(options: options(checkpointDir: nil, log: nil, epochs: 1), classNames: ["0", "1", "2"])
        try fresh.executor.setInitializer("fc_2.bias", Tensor(shape: [3], floats: [0, .nan, 0]))
        XCTAssertThrowsError(try fresh.makeCheckpoint()) { XCTAssertTrue("\($0)".contains("fc_2.bias holds NaN"), "\($0)") }
        XCTAssertThrowsError(try trainer.makeCheckpoint()) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
    }

    func testCheckpointRoundTripAndRefusals() throws {
        let folder = try TemporaryFolder("manet-ck")
        defer { folder.remove() }
        let trainer = try Trainer(options: options(checkpointDir: nil, log: nil, epochs: 1), classNames: ["a", "b", "c"])
        XCTAssertTrue(trainer.model.graph.initializers.allSatisfy { $0.bytes.isEmpty }, "the weights live once, in the executor")
        let images = Tensor(shape: [2, 3, 64, 64], floats: (0..<(2 * 3 * 64 * 64)).map { Float($0 % 97) / 97 })
        try trainer.step(images: images, labels: [0, 2])
        let checkpoint = try trainer.makeCheckpoint()
        XCTAssertEqual(checkpoint.stateDict.filter { !$0.name.hasSuffix("num_batches_tracked") }.map(\.name),
                       trainer.model.graph.initializers.map(\.name))
        XCTAssertEqual(checkpoint.momentumBuffers.count, trainer.roles.trainable.count)
        XCTAssertEqual(try TrainingCheckpoint.decode(try checkpoint.encoded()), checkpoint)
        let path = folder.file("c.pb")
        try checkpoint.write(to: path)
        XCTAssertEqual(try TrainingCheckpoint.read(path: path), checkpoint)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["c.pb"], "no temporary left behind")

        XCTAssertThrowsError(try TrainingCheckpoint.decode([0xFF, 0xFF, 0xFF])) { XCTAssertTrue("\($0)".contains("invalid checkpoint")) }
        XCTAssertThrowsError(try TrainingCheckpoint.read(path: folder.file("missing.pb"))) { XCTAssertTrue("\($0)".contains("missing.pb")) }
        XCTAssertThrowsError(try checkpoint.write(to: "/proc/manet-cannot-write/c.pb")) { XCTAssertTrue("\($0)".contains("cannot create")) }
        var bad = checkpoint
        bad.stateDict[0].bytes.removeLast()
        XCTAssertThrowsError(try bad.encoded()) { XCTAssertTrue("\($0)".contains("bytes")) }

        // Another width or class count is refused with both sides named.
        var other = options(checkpointDir: nil, log: nil, epochs: 1)
        other.width = 8
        let wider = try Trainer(options: other, classNames: ["a", "b", "c"])
        XCTAssertThrowsError(try wider.load(checkpoint, resume: true)) { error in
            XCTAssertTrue("\(error)".contains("width 4 with 3 classes"), "\(error)")
        }
    }

    func testTrainingLogRefusesUnwritablePaths() {
        XCTAssertThrowsError(try LogWriter(path: "/proc/manet-no/log.txt")) { XCTAssertTrue("\($0)".contains("/proc/manet-no/log.txt")) }
    }
}
