// `manet train` / `export` / `synth` bad paths through the binary: unwritable log and checkpoint
// paths, --resume files of another width or class count, output paths that are folders or
// special files, external data beside the model, dataset symlinks leaving the root.

import Foundation
import TestSupport
import XCTest

final class TrainCLITests: XCTestCase {
    nonisolated(unsafe) static var shared: TinyTrainingRun?
    /// A 1-epoch width-4 checkpoint of the tiny run (7 classes).
    nonisolated(unsafe) static var checkpoint = ""

    var run: TinyTrainingRun { Self.shared! }
    var folder: TemporaryFolder!

    override func setUpWithError() throws {
        folder = try TemporaryFolder("manet-train-cli")
        if Self.shared != nil { return }
        let run = try TinyTrainingRun(epochs: 1)
        let dir = run.root.file("trained")
        let r = try runManet(run.arguments(dir: dir))
        XCTAssertEqual(r.status, 0, r.stderr)
        Self.checkpoint = dir + "/checkpoint.pb"
        Self.shared = run
    }

    override func tearDown() { folder.remove() }

    override class func tearDown() {
        shared?.root.remove()
        shared = nil
    }

    /// Runs manet expecting exit status 2 and an error on stderr that contains every `needle`.
    func expectError(_ args: [String], _ needles: [String], line: UInt = #line) throws {
        let r = try runManet(args)
        XCTAssertEqual(r.status, 2, "manet \(args.joined(separator: " ")):\n\(r.stdout)\n\(r.stderr)", line: line)
        for needle in needles {
            XCTAssertTrue(r.stderr.contains(needle), "stderr lacks '\(needle)':\n\(r.stderr)", line: line)
        }
    }

    func trainArguments(_ extra: [String], dir: String? = nil) -> [String] {
        var args = run.arguments(dir: dir ?? folder.file("run"))
        // An option already present gets the new value; others are appended.
        var i = 0
        while i < extra.count {
            if let at = args.firstIndex(of: extra[i]), at + 1 < args.count, i + 1 < extra.count {
                args[at + 1] = extra[i + 1]
            } else {
                args += [extra[i], extra[i + 1]]
            }
            i += 2
        }
        return args
    }

    // MARK: - Issue 4: unwritable paths, mismatched --resume

    func testUnwritableLogPathIsAnError() throws {
        try expectError(trainArguments(["--log", "/proc/manet-no/log.txt"]), ["/proc/manet-no/log.txt", "cannot open the log file"])
        let logFolder = folder.file("log-is-a-folder")
        try FileManager.default.createDirectory(atPath: logFolder, withIntermediateDirectories: true)
        try expectError(trainArguments(["--log", logFolder]), [logFolder, "Is a directory"])
    }

    func testUnwritableCheckpointFolderIsAnError() throws {
        try expectError(trainArguments(["--checkpoint-dir", "/proc/manet-no/ckpt", "--log", folder.file("l.txt")]),
                        ["/proc/manet-no/ckpt", "cannot create the checkpoint folder"])
        let file = folder.file("plain-file")
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        try expectError(trainArguments(["--checkpoint-dir", file, "--log", folder.file("l.txt")]), [file, "is not a folder"])
        // checkpoint.pb itself a folder: refused before training starts.
        let dir = folder.file("ckpt")
        try FileManager.default.createDirectory(atPath: dir + "/checkpoint.pb", withIntermediateDirectories: true)
        try expectError(trainArguments(["--checkpoint-dir", dir]), [dir + "/checkpoint.pb", "is a folder"])
    }

    func testResumeOfAnotherWidthIsAnError() throws {
        try expectError(trainArguments(["--resume", Self.checkpoint, "--width", "8", "--epochs", "2"]),
                        [Self.checkpoint, "width 4", "width 8"])
    }

    func testResumeOfAnotherClassCountIsAnError() throws {
        // The same images without class 6: a 6-class dataset.
        let six = folder.file("six")
        for split in ["train", "test"] {
            try FileManager.default.createDirectory(atPath: six + "/" + split, withIntermediateDirectories: true)
            for c in 0..<6 {
                try FileManager.default.copyItem(atPath: "\(run.data)/\(split)/\(c)", toPath: "\(six)/\(split)/\(c)")
            }
        }
        var args = trainArguments(["--resume", Self.checkpoint, "--num-classes", "6", "--epochs", "2"])
        args[args.firstIndex(of: "--data")! + 1] = six
        try expectError(args, [Self.checkpoint, "7 classes", "6 classes"])
    }

    // MARK: - Issue 7.5: untrusted paths

    func testExportRefusesFoldersAndSpecialFiles() throws {
        let outFolder = folder.file("out-folder")
        try FileManager.default.createDirectory(atPath: outFolder, withIntermediateDirectories: true)
        try expectError(["export", Self.checkpoint, "-o", outFolder], [outFolder, "is a folder"])
        try expectError(["export", Self.checkpoint, "-o", outFolder + "/.."], ["names a folder"])
        try expectError(["export", Self.checkpoint, "-o", folder.file("missing/m.onnx")], ["does not exist"])
        let fifo = folder.file("fifo.onnx")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try expectError(["export", Self.checkpoint, "-o", fifo], [fifo, "not a regular file"])
        // The external-data companion is checked too, before anything is written.
        let model = folder.file("m.onnx")
        try FileManager.default.createDirectory(atPath: model + ".data", withIntermediateDirectories: true)
        try expectError(["export", Self.checkpoint, "-o", model, "--external-data"], [model + ".data", "is a folder"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: model))
        // `manet import -o` likewise.
        try expectError(["import", Self.checkpoint, "-o", outFolder], [outFolder, "is a folder"])
        try expectError(["import", Self.checkpoint, "-o", fifo], [fifo, "not a regular file"])
    }

    func testExternalDataIsWrittenBesideTheModelWithARelativeLocation() throws {
        let sub = folder.file("sub")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        let model = sub + "/m.onnx"
        let r = try runManet(["export", Self.checkpoint, "-o", model, "--external-data"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sub).sorted(), ["m.onnx", "m.onnx.data"])
        // Every stored location is the bare companion name (read with `strings`-like scanning of
        // the protobuf: the location key is followed by its value).
        let bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(text.contains("m.onnx.data"))
        XCTAssertFalse(text.contains(sub), "no absolute location")
        XCTAssertFalse(text.contains("../"), "no parent-relative location")
        // And the model loads back through the reader that confines locations to its folder.
        let inspect = try runManet(["inspect", model])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
    }

    func testSynthRefusesAFileAsItsOutputFolder() throws {
        let file = folder.file("not-a-folder")
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        try expectError(["synth", "--out", file, "--train-per-class", "1", "--test-per-class", "1", "--size", "32"],
                        [file, "not a folder"])
    }

    func testDatasetSymlinksLeavingTheRootAreRefused() throws {
        // A class folder that is a link to a folder outside the dataset.
        let data = folder.file("data")
        let outside = folder.file("outside")
        try FileManager.default.copyItem(atPath: run.data, toPath: data)
        try FileManager.default.copyItem(atPath: run.data + "/train/3", toPath: outside)
        try FileManager.default.removeItem(atPath: data + "/train/3")
        try FileManager.default.createSymbolicLink(atPath: data + "/train/3", withDestinationPath: outside)
        var args = trainArguments([])
        args[args.firstIndex(of: "--data")! + 1] = data
        try expectError(args, [data + "/train/3"])

        // An image that is a link to a file outside the dataset.
        try FileManager.default.removeItem(atPath: data + "/train/3")
        try FileManager.default.copyItem(atPath: outside, toPath: data + "/train/3")
        let image = try FileManager.default.contentsOfDirectory(atPath: outside).sorted()[0]
        try FileManager.default.createSymbolicLink(atPath: data + "/train/3/zz-link-" + image, withDestinationPath: outside + "/" + image)
        try expectError(args, [data + "/train/3/zz-link-" + image])
        try expectError(args + ["--skip-bad-images"], [data + "/train/3/zz-link-" + image])
    }
}
