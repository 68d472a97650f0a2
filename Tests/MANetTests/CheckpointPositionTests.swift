// Mid-epoch checkpoints: the epoch position and log length round-trip, a stop requested after a
// step resumes with the same next batch and losses, the log is cut back, stale temporaries go.

import Foundation
import ManetSupport
import XCTest
import ONNXIR
import Runtime
import TestSupport
@testable import MANet

final class CheckpointPositionTests: XCTestCase {
    var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-position") }
    override func tearDown() { folder.remove() }

    func testPositionAndLogLengthRoundTrip() throws {
        let trainer = try Trainer(options: options(epochs: 1), classNames: ["a", "b", "c"])
        var checkpoint = try trainer.makeCheckpoint()
        checkpoint.stepInEpoch = 3
        checkpoint.epochLoss = AverageMeter(value: 1.25, sum: 7.5, count: 12)
        checkpoint.epochAccuracy = AccuracyMeter(value: 25, sum: 300, count: 12)
        checkpoint.logLength = 1234
        let path = folder.file("c.pb")
        try checkpoint.write(to: path)
        let back = try TrainingCheckpoint.read(path: path)
        XCTAssertEqual(back, checkpoint)
        XCTAssertEqual(back.stepInEpoch, 3)
        XCTAssertEqual(back.epochLoss.average, 7.5 / 12)
        XCTAssertEqual(back.logLength, 1234)
    }

    func testStopAfterAStepResumesWithTheSameLosses() throws {
        let data = try makeDataset()
        let log = folder.file("log.txt"), dir = folder.file("ckpt")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)

        let reference = try uninterruptedLosses(data)
        XCTAssertEqual(reference.count, 6)

        // Stop after the 5th step overall (epoch 1, step 1 of 3) ...
        var losses: [String] = []
        var o = options(epochs: 2)
        o.checkpointDirectory = dir
        o.logPath = log
        let first = try Trainer(options: o, classNames: ["a", "b", "c"])
        first.onStep = { e, i, loss in losses.append("\(e).\(i) \(loss)") }
        first.stopRequested = { losses.count >= 5 }
        let (c, d) = try loaders(data, first)
        XCTAssertThrowsError(try first.run(train: c, test: d, log: try LogWriter(path: log))) { error in
            XCTAssertEqual(error as? TrainingError, .interrupted(epoch: 1, stepsDone: 2, batches: 3, checkpoint: dir + "/checkpoint.pb"))
        }
        let stopped = try TrainingCheckpoint.read(path: dir + "/checkpoint.pb")
        XCTAssertEqual(stopped.epochsCompleted, 1)
        XCTAssertEqual(stopped.stepInEpoch, 2)
        XCTAssertEqual(stopped.epochLoss.count, 8)
        let logText = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertEqual(stopped.logLength, UInt64(logText.utf8.count))

        // ... and resume: the same remaining steps, and the log matches an uninterrupted file.
        try Data("a line of the killed process\n".utf8).append(toFile: log)
        let second = try Trainer(resuming: stopped, options: o, classNames: ["a", "b", "c"])
        second.onStep = { e, i, loss in losses.append("\(e).\(i) \(loss)") }
        let writer = try LogWriter(path: log)
        XCTAssertTrue(try writer.truncate(to: stopped.logLength))
        let (e, f) = try loaders(data, second)
        try second.run(train: e, test: f, log: writer)
        XCTAssertEqual(losses, reference)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { Double($0) == nil }
        XCTAssertEqual(lines.filter { $0.hasPrefix("Epoch: [1]") }.count, 3)
        XCTAssertEqual(lines.filter { $0.hasPrefix("Current learning rate") }.count, 2)
        XCTAssertFalse(lines.contains("a line of the killed process"))
    }

    /// A crash between a checkpoint's complete temporary file and its rename, played by a
    /// throwing `beforeCheckpointRename` on checkpoint.pb at the end of epoch 1: the run stops with that error,
    /// checkpoint.pb is epoch 0's byte for byte and loads, no other file in the folder can be
    /// taken for a checkpoint, and resuming from it repeats the uninterrupted run's losses.
    func testACrashBetweenWriteAndRenameKeepsThePreviousCheckpoint() throws {
        struct Crash: Error {}
        let data = try makeDataset()
        let dir = folder.file("ckpt"), latest = folder.file("ckpt/checkpoint.pb")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let reference = try uninterruptedLosses(data)

        var o = options(epochs: 2)
        o.checkpointDirectory = dir
        var losses: [String] = []
        var previous: Data?
        var written: TrainingCheckpoint?
        let first = try Trainer(options: o, classNames: ["a", "b", "c"])
        first.onStep = { e, i, loss in
            losses.append("\(e).\(i) \(loss)")
            if e == 1 && i == 0 { previous = try? Data(contentsOf: URL(fileURLWithPath: latest)) }  // epoch 0's
        }
        first.beforeCheckpointRename = { [unowned first] path in
            guard first.epochsCompleted == 2, path == latest else { return }
            // The write of checkpoint.pb at the end of epoch 1: its temporary file is complete.
            let temporaries = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("checkpoint.pb.tmp-") }
            XCTAssertEqual(temporaries.count, 1, "\(temporaries)")
            written = try temporaries.first.map { try TrainingCheckpoint.read(path: dir + "/" + $0) }
            throw Crash()
        }
        let (c, d) = try loaders(data, first)
        XCTAssertThrowsError(try first.run(train: c, test: d, log: try LogWriter(path: nil))) { XCTAssertTrue($0 is Crash, "\($0)") }
        XCTAssertEqual(written?.epochsCompleted, 2, "the crash came after a complete write")
        XCTAssertNotNil(previous)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: latest)), previous, "checkpoint.pb changed without its rename")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), ["checkpoint.pb", "model_best.pb"])
        let kept = try TrainingCheckpoint.read(path: latest)
        XCTAssertEqual(kept.epochsCompleted, 1)
        XCTAssertEqual(kept.stepInEpoch, 0)

        // Resume from what the crash kept: epoch 1 again, with the same losses.
        let second = try Trainer(resuming: kept, options: o, classNames: ["a", "b", "c"])
        var resumed: [String] = []
        second.onStep = { e, i, loss in resumed.append("\(e).\(i) \(loss)") }
        let (e, f) = try loaders(data, second)
        try second.run(train: e, test: f, log: try LogWriter(path: nil))
        XCTAssertEqual(reference.count, 6)
        XCTAssertEqual(losses, reference)
        XCTAssertEqual(Array(losses.prefix(3)) + resumed, reference)
        XCTAssertEqual(try TrainingCheckpoint.read(path: latest).epochsCompleted, 2)
    }

    func testStaleTemporariesAreRemovedAndLiveOnesKept() throws {
        let dead = folder.file("checkpoint.pb.tmp-999999999")
        let live = folder.file("model_best.pb.tmp-1")  // pid 1 is alive
        let other = folder.file("notes.tmp-5")
        // The empty write probe of a run killed while checking the folder, and a live run's.
        let deadProbe = folder.file(".manet-write-test-999999998")
        let liveProbe = folder.file(".manet-write-test-1")
        for path in [dead, live, other, deadProbe, liveProbe] { _ = FileManager.default.createFile(atPath: path, contents: Data([1])) }
        XCTAssertEqual(Set(TrainingCheckpoint.removeStaleTemporaries(in: folder.path)), [dead, deadProbe])
        for kept in [live, other, liveProbe] { XCTAssertTrue(FileManager.default.fileExists(atPath: kept), kept) }
    }

    // MARK: - Helpers

    /// "epoch.step loss" of every step of an uninterrupted 2-epoch run without checkpoints.
    func uninterruptedLosses(_ data: String) throws -> [String] {
        var losses: [String] = []
        let full = try Trainer(options: options(epochs: 2), classNames: ["a", "b", "c"])
        full.onStep = { e, i, loss in losses.append("\(e).\(i) \(loss)") }
        let (train, test) = try loaders(data, full)
        try full.run(train: train, test: test, log: try LogWriter(path: nil))
        return losses
    }

    func options(epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.width = 4
        o.numClasses = 3
        o.inputSize = 64
        o.seed = 9
        o.recipe.epochs = epochs
        o.recipe.batchSize = 4
        o.printFrequency = 1
        o.threads = 1
        return o
    }

    /// 3 classes x 4 train / 2 test noisy 64x64 PNGs (3 batches of 4 per epoch).
    func makeDataset() throws -> String {
        var rng = Xoshiro256(seed: 3)
        let root = folder.file("data")
        for (split, count) in [("train", 4), ("test", 2)] {
            for c in 0..<3 {
                let dir = "\(root)/\(split)/\(c)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for i in 0..<count {
                    let pixels = (0..<(64 * 64 * 3)).map { p in UInt8(max(0, min(255, (p % 3 == c ? 170.0 : 70.0) + rng.normal() * 30))) }
                    try ImageCodec.encodePNG(RGBImage(width: 64, height: 64, pixels: pixels)).write(to: URL(fileURLWithPath: "\(dir)/\(i).png"))
                }
            }
        }
        return root
    }

    func loaders(_ root: String, _ trainer: Trainer) throws -> (BatchLoader, BatchLoader) {
        let (train, test) = try ImageFolderDataset.load(root: URL(fileURLWithPath: root))
        return (try BatchLoader(dataset: train, options: BatchLoaderOptions(batchSize: 4, inputSize: 64, shuffle: true, augment: true, seed: trainer.dataSeed)),
                try BatchLoader(dataset: test, options: BatchLoaderOptions(batchSize: 4, inputSize: 64, shuffle: false, augment: false, seed: 0)))
    }
}

private extension Data {
    func append(toFile path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: self)
    }
}
