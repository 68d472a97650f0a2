// End to end through the `manet` binary: torch.save files (.pth / .pth.tar) imported, trained from, refused.

import Foundation
import MANet
import TestSupport
import XCTest

final class PyTorchCheckpointCLITests: XCTestCase {
    var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder("manet-pth-cli") }
    override func tearDown() { folder.remove() }

    static func fixture(_ name: String) -> String { Fixtures.path("pth/" + name) }

    /// Runs `manet` with `directory` as its working folder.
    @discardableResult
    func manet(_ args: [String], in directory: String? = nil, expect status: Int32 = 0, line: UInt = #line) throws -> ProcessResult {
        let r = try runProcess("/usr/bin/env", ["-C", directory ?? folder.path, manetBinary] + args)
        XCTAssertEqual(r.status, status, "manet \(args.joined(separator: " ")):\n\(r.stdout)\n\(r.stderr)", line: line)
        return r
    }

    func testAuthorsCheckpointImportsWithItsExtrasIgnored() throws {
        let r = try manet(["import", Self.fixture("authors_w4.pth.tar"), "-o", folder.file("a.pb")])
        XCTAssertTrue(r.stdout.contains("MA-Net width 4, 7 classes"), r.stdout)
        XCTAssertTrue(r.stdout.contains("state_dict under 'state_dict'"), r.stdout)
        XCTAssertTrue(r.stdout.contains("storages tagged cuda:0"), r.stdout)
        XCTAssertTrue(r.stdout.contains("__main__.RecorderMeter"), r.stdout)
        XCTAssertTrue(r.stdout.contains("stripped DataParallel's `module.` prefix"), r.stdout)
    }

    func testPretrainingFileReinitialisesBothHeads() throws {
        let same = try manet(["import", Self.fixture("pretrain_w4_12666_legacy.pth.tar"), "-o", folder.file("p.pb")])
        XCTAssertTrue(same.stdout.contains("12666 classes"), same.stdout)
        XCTAssertTrue(same.stdout.contains("legacy (pre-1.6)"), same.stdout)
        let seven = try manet(["import", Self.fixture("pretrain_w4_12666_legacy.pth.tar"), "--num-classes", "7", "-o", folder.file("p7.pb")])
        XCTAssertTrue(seven.stdout.contains("7 classes"), seven.stdout)
        XCTAssertTrue(seven.stdout.contains("the source has 12666 classes; fc_1 and fc_2 were re-initialised for 7 classes"), seven.stdout)
    }

    func testTrainInitFromThePretrainingFile() throws {
        let data = folder.file("data")
        try manet(["synth", "--out", data, "--train-per-class", "1", "--test-per-class", "1", "--size", "64"])
        let dir = folder.file("run")
        let r = try manet(["train", "--data", data, "--init", Self.fixture("pretrain_w4_12666_legacy.pth.tar"), "--width", "4",
                           "--num-classes", "7", "--input-size", "64", "--epochs", "1", "--batch-size", "7", "--threads", "2",
                           "--checkpoint-dir", dir])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoint.pb"), r.stdout)
        XCTAssertTrue(r.stdout.contains("fc_1 and fc_2 were re-initialised"), r.stdout)
    }

    /// Each malicious file is refused with what it holds named, and the command it carries (which
    /// Python's own unpickler does run: the control below) never runs.
    func testMaliciousPicklesRunNothing() throws {
        let marker = "manet_pickle_ran"
        let files = ["evil_reduce_os_system.pth", "evil_builtins_eval.pth", "evil_inst.pth", "evil_obj.pth",
                     "evil_persistent_id.pth", "evil_legacy_reduce.pth"]
        for name in files {
            let cwd = folder.file("cwd-" + name)
            try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
            let r = try manet(["import", Self.fixture(name), "-o", "x.pb"], in: cwd, expect: 2)
            XCTAssertTrue(r.stderr.contains(name), r.stderr)
            XCTAssertTrue(r.stderr.contains("none was run") || r.stderr.contains("persistent id"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: cwd + "/" + marker), "\(name) ran its command")
            XCTAssertFalse(FileManager.default.fileExists(atPath: cwd + "/x.pb"))
        }
        // The control: Python's pickle, given the same bytes, runs the command.
        guard let python = TestEnvironment.value("MANET_PYTHON") else { return }
        let script = """
            import pickle, sys, zipfile
            path = sys.argv[1]
            try:
                pickle.loads(zipfile.ZipFile(path).read("archive/data.pkl"))
            except zipfile.BadZipFile:
                with open(path, "rb") as f:
                    for _ in range(4):
                        pickle.Unpickler(f).load()
            except Exception:
                pass
            """
        for name in files {
            let cwd = folder.file("python-" + name)
            try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
            _ = try runProcess("/usr/bin/env", ["-C", cwd, python, "-c", script, Self.fixture(name)])
            XCTAssertTrue(FileManager.default.fileExists(atPath: cwd + "/" + marker), "\(name) is not a live control")
        }
    }

    func testBrokenFilesExitTwoNamingTheEntry() throws {
        let cases = [("bad_short_storage.pth", "entry 'archive/data/0' holds 12 bytes"),
                     ("bad_unknown_storage.pth", "unknown storage type torch.QUInt8Storage"),
                     ("bad_dotdot.pth", "zip entry 'archive/../data/0' has a path outside the archive's folder")]
        for (name, message) in cases {
            let r = try manet(["import", Self.fixture(name), "-o", folder.file("x.pb")], expect: 2)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
        let truncated = folder.file("truncated.pth.tar")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.fixture("pretrain_w4_12666_legacy.pth.tar")))
        try bytes.prefix(bytes.count - 1000).write(to: URL(fileURLWithPath: truncated))
        let r = try manet(["import", truncated, "-o", folder.file("x.pb")], expect: 2)
        XCTAssertTrue(r.stderr.contains("truncated"), r.stderr)
        // No state_dict: what the file holds is listed.
        let none = try manet(["import", Self.fixture("dtypes_views.pth"), "-o", folder.file("x.pb")], expect: 2)
        XCTAssertTrue(none.stderr.contains("missing conv1.weight"), none.stderr)
    }

    func testMaxMemoryIsHonoured() throws {
        let r = try manet(["import", Self.fixture("authors_w4.pth.tar"), "--max-memory", "1M", "-o", folder.file("x.pb")], expect: 2)
        XCTAssertTrue(r.stderr.contains("more than the memory limit"), r.stderr)
        try manet(["import", Self.fixture("authors_w4.pth.tar"), "--max-memory", "8M", "-o", folder.file("x.pb")])
    }

    /// `train --resume` of the authors' checkpoint continues at its epoch with its momentum, in a
    /// new run folder; the result exports back to the authors' layout, which imports again.
    func testResumeTheAuthorsRunThenExportItAsPth() throws {
        let data = folder.file("data")
        try manet(["synth", "--out", data, "--train-per-class", "1", "--test-per-class", "1", "--size", "64"])
        let dir = folder.file("resumed")
        let r = try manet(["train", "--data", data, "--resume", Self.fixture("authors_w4.pth.tar"), "--width", "4",
                           "--input-size", "64", "--epochs", "3", "--batch-size", "7", "--threads", "2", "--plain",
                           "--step-size", "2", "--gamma", "0.5", "--beta", "0.5", "--no-augment", "--lr", "0.05",
                           "--checkpoint-dir", dir])
        XCTAssertTrue(r.stdout.contains("resumes after epoch 2 (best accuracy 42.5) with 380 SGD momentum buffers"), r.stdout)
        let checkpoint = dir + "/checkpoint.pb"
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), r.stdout)
        // What `train --help` says: the schedule from the command line, the lr from the file's optimizer.
        let stored = try TrainingCheckpoint.read(path: checkpoint)
        XCTAssertEqual(stored.recipe.batchSize, 7)
        XCTAssertEqual(stored.recipe.stepSize, 2)
        XCTAssertEqual(stored.recipe.gamma, 0.5)
        XCTAssertEqual(stored.beta, 0.5)
        XCTAssertFalse(stored.recipe.augment)
        XCTAssertTrue(stored.recipe.shuffle)
        XCTAssertEqual(stored.inputSize, 64)
        XCTAssertEqual(stored.recipe.learningRate, 0.01, "the file's initial_lr, not --lr")
        let out = folder.file("out.pth.tar")
        let e = try manet(["export", checkpoint, "--format", "pth", "-o", out])
        XCTAssertTrue(e.stdout.contains("epoch 3") && e.stdout.contains("380 momentum buffers"), e.stdout)
        let again = try manet(["import", out, "-o", folder.file("again.pb")])
        XCTAssertTrue(again.stdout.contains("MA-Net width 4, 7 classes"), again.stdout)
        XCTAssertTrue(again.stdout.contains("stripped DataParallel's `module.` prefix"), again.stdout)
        let bare = try manet(["export", checkpoint, "--format", "pth", "--no-module-prefix", "-o", folder.file("bare.pth")])
        XCTAssertFalse(bare.stdout.contains("`module.` keys"), bare.stdout)
        let plain = try manet(["import", folder.file("bare.pth"), "-o", folder.file("bare.pb")])
        XCTAssertFalse(plain.stdout.contains("stripped"), plain.stdout)
        try manet(["export", checkpoint, "--no-module-prefix", "-o", folder.file("x.onnx")], expect: 64)
    }
}
