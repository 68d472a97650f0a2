// `manet train` as a user meets it (issue 20, items 1-3): a run never overwrites another run,
// a refused run writes nothing, progress is visible on a terminal (a pseudo-terminal here) while
// the log lines stay the authors', Ctrl-C is answered within a second, and the run ends with a
// summary naming the best epoch and the files.

import Foundation
import TestSupport
import XCTest

final class TrainRunsCLITests: XCTestCase {
    nonisolated(unsafe) static var shared: TinyTrainingRun?
    var run: TinyTrainingRun { Self.shared! }
    var folder: TemporaryFolder!

    override func setUpWithError() throws {
        folder = try TemporaryFolder("manet-train-runs")
        if Self.shared == nil { Self.shared = try TinyTrainingRun(epochs: 2) }
    }

    override func tearDown() { folder.remove() }

    override class func tearDown() {
        shared?.root.remove()
        shared = nil
    }

    func contents(_ path: String) -> Data? { try? Data(contentsOf: URL(fileURLWithPath: path)) }

    /// `manet args...` run with `cwd` as the working directory.
    func manet(in cwd: String, _ args: [String]) throws -> ProcessResult {
        try runProcess("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", cwd, manetBinary] + args)
    }

    func testASecondRunInTheSameFolderIsRefusedAndNothingChanges() throws {
        let dir = folder.file("run")
        let first = try runManet(run.arguments(dir: dir, epochs: 1))
        XCTAssertEqual(first.status, 0, first.stderr)
        let checkpoint = contents(dir + "/checkpoint.pb"), best = contents(dir + "/model_best.pb"), log = contents(dir + "/log.txt")

        let second = try runManet(run.arguments(dir: dir, epochs: 1) + ["--seed", "6"])
        XCTAssertEqual(second.status, 2, second.stdout + second.stderr)
        let lines = second.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "manet: error: \(dir) holds another run (\(dir)/checkpoint.pb, \(dir)/model_best.pb, \(dir)/log.txt); refusing to overwrite it")
        XCTAssertTrue(lines.count == 2 && lines[1].hasPrefix("manet: hint: "), second.stderr)
        XCTAssertTrue(second.stderr.contains("`--resume \(dir)/checkpoint.pb` continues it"), second.stderr)
        XCTAssertTrue(second.stderr.contains("`--overwrite` replaces it"), second.stderr)
        XCTAssertEqual(contents(dir + "/checkpoint.pb"), checkpoint)
        XCTAssertEqual(contents(dir + "/model_best.pb"), best)
        XCTAssertEqual(contents(dir + "/log.txt"), log)

        // A --log holding another run's lines is refused too, whatever the folder.
        let other = try runManet(run.arguments(dir: folder.file("other"), epochs: 1).dropLast(2) + ["--log", dir + "/log.txt"])
        XCTAssertEqual(other.status, 2, other.stderr)
        XCTAssertTrue(other.stderr.contains("holds another run (\(dir)/log.txt)"), other.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("other")), "a refused run creates no folder")

        // --overwrite replaces the run: one epoch 0 in the log, not two.
        let replaced = try runManet(run.arguments(dir: dir, epochs: 1) + ["--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        let text = String(decoding: contents(dir + "/log.txt") ?? Data(), as: UTF8.self)
        XCTAssertEqual(text.components(separatedBy: "Current learning rate").count - 1, 1, text)
        XCTAssertEqual(text.components(separatedBy: "Epoch: [0][0/6]").count - 1, 1, text)
    }

    func testWithoutCheckpointDirEachRunGetsItsOwnFolder() throws {
        let args = Array(run.arguments(dir: "unused", epochs: 1).dropLast(4))  // no --checkpoint-dir, no --log
        XCTAssertFalse(args.contains("--checkpoint-dir"))
        for n in 1...2 {
            let r = try manet(in: folder.path, args)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("manet: checkpoints  runs/train-\(n)/checkpoint.pb (latest), runs/train-\(n)/model_best.pb (best)"), r.stdout)
            XCTAssertNotNil(contents(folder.file("runs/train-\(n)/checkpoint.pb")))
        }
        XCTAssertNotEqual(contents(folder.file("runs/train-1/log.txt")), nil)
        // --resume without --checkpoint-dir continues in the checkpoint's own folder.
        let resumed = try manet(in: folder.path, Array(run.arguments(dir: "unused", epochs: 2).dropLast(4)) + ["--resume", "runs/train-1/checkpoint.pb"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let log = String(decoding: contents(folder.file("runs/train-1/log.txt")) ?? Data(), as: UTF8.self)
        XCTAssertTrue(log.contains("Epoch: [1][0/6]"), log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("runs/train-3")))
    }

    func testARefusedResumeLeavesNoFile() throws {
        let dir = folder.file("run")
        XCTAssertEqual(try runManet(run.arguments(dir: dir, epochs: 1)).status, 0)
        let cases: [([String], String)] = [
            (["--width", "8"], "width 4"),                  // another width
            (["--epochs", "1"], "already completed 1"),    // nothing left to do
        ]
        for (extra, needle) in cases {
            let target = folder.file("resumed-\(extra[0])")
            var args = run.arguments(dir: target, epochs: 2) + ["--resume", dir + "/checkpoint.pb"]
            for k in stride(from: 0, to: extra.count, by: 2) {
                if let at = args.firstIndex(of: extra[k]) { args[at + 1] = extra[k + 1] }
            }
            let r = try runManet(args)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains(needle), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: target), "refused \(extra): \(target) was created")
        }
        // An ONNX file given to --resume: named, with the command that helps, and no runs/ folder.
        let onnx = try manet(in: folder.path, Array(run.arguments(dir: "unused", epochs: 1).dropLast(4))
                             + ["--resume", Fixtures.path("manet_w8_torchscript_op13.onnx")])
        XCTAssertEqual(onnx.status, 2)
        XCTAssertTrue(onnx.stderr.contains("this is an ONNX model, not a manet checkpoint"), onnx.stderr)
        XCTAssertTrue(onnx.stderr.contains("manet: hint: `manet import "), onnx.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("runs")))
    }

    /// The summary names the best epoch as the log counts it, the wall time and the files.
    func testTheRunEndsWithASummary() throws {
        let dir = folder.file("run")
        let r = try runManet(run.arguments(dir: dir))
        XCTAssertEqual(r.status, 0, r.stderr)
        let best = try XCTUnwrap(r.stdout.range(of: #"manet: done: best accuracy [0-9.]+% at epoch [01] \(epochs 0-1\), wall time \d+:\d\d"#,
                                                options: .regularExpression), r.stdout)
        // The same best epoch as `manet logs` reports ("best X (epoch N)").
        let logs = try runManet(["logs", dir + "/log.txt"])
        let at = try XCTUnwrap(logs.stdout.range(of: #"\(epoch \d+\)"#, options: .regularExpression), logs.stdout)
        let bestEpoch = logs.stdout[at].dropFirst(7).dropLast()
        XCTAssertTrue(r.stdout[best].contains("at epoch \(bestEpoch) "), "\(r.stdout[best]) vs logs: \(logs.stdout)")
        for needle in ["manet: log          \(dir)/log.txt", "manet: curves       \(dir)/log.svg",
                       "manet: checkpoints  \(dir)/checkpoint.pb (latest), \(dir)/model_best.pb (best)"] {
            XCTAssertTrue(r.stdout.contains(needle), "no '\(needle)' in\n\(r.stdout)")
        }
        // Not a terminal: stdout holds the authors' lines as printed, the long steps go to stderr.
        XCTAssertFalse(r.stdout.contains("\r"))
        XCTAssertTrue(r.stderr.contains("manet: building MA-Net (width 4"), r.stderr)
        XCTAssertTrue(r.stderr.contains("evaluating 14 test images"), r.stderr)
    }

    /// On a (pseudo-)terminal: a live line with the epoch, step, images/s, elapsed, ETA, loss and
    /// accuracy, erased before each log line; the log file gets exactly the lines of a plain run.
    func testATerminalGetsALiveLineAndTheLogStaysTheAuthors() throws {
        let plainDir = folder.file("plain"), liveDir = folder.file("live")
        XCTAssertEqual(try runManet(run.arguments(dir: plainDir, epochs: 1) + ["--plain"]).status, 0)
        let command = ([manetBinary] + run.arguments(dir: liveDir, epochs: 1)).map { "'" + $0 + "'" }.joined(separator: " ")
        let r = try runProcess("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"])
        XCTAssertEqual(r.status, 0, r.stdout)
        let screen = r.stdout
        XCTAssertNotNil(screen.range(of: #"epoch 0 \(1 of 1\) train step +\d/6  [-0-9.]+ img/s  elapsed \d+:\d\d  ETA [-0-9:]+  loss \d\.\d{4}  acc \d+\.\d\d%"#,
                                     options: .regularExpression), screen)
        XCTAssertNotNil(screen.range(of: #"epoch 0 \(1 of 1\) test step 2/2 "#, options: .regularExpression), screen)
        XCTAssertTrue(screen.contains("building MA-Net (width 4, 7 classes, 64 px) ..."), screen)
        XCTAssertTrue(screen.contains("writing model_best.pb and checkpoint.pb ..."), screen)
        XCTAssertTrue(screen.contains("\r\u{1B}[2K"), "the live line is redrawn in place")
        // The log lines on the terminal are whole lines (the live line erased first).
        XCTAssertTrue(screen.contains("\r\u{1B}[2KEpoch: [0][0/6]\tLoss "), screen)
        let comparable = { (path: String) in TinyTrainingRun.comparableLines(path) }
        XCTAssertEqual(comparable(liveDir + "/log.txt"), comparable(plainDir + "/log.txt"))
        XCTAssertFalse(String(decoding: contents(liveDir + "/log.txt") ?? Data(), as: UTF8.self).contains("\u{1B}"))
    }

    /// SIGINT is answered on stderr within a second, while the step is still running; the run
    /// then stops after the step as before (exit 130, a checkpoint, the resume command). Width 32
    /// at 224 px makes the step much longer than the answer may take.
    func testCtrlCIsAcknowledgedAtOnce() throws {
        let dir = folder.file("run")
        let child = try ManetChild(run.arguments(dir: dir, epochs: 1, width: 32, inputSize: 224), outputPrefix: folder.file("sigint"))
        // The first progress line: the first step has begun (the handler is installed before it).
        let deadline = Date().addingTimeInterval(120)
        while child.process.isRunning, Date() < deadline, !child.stderr.contains("taking step 1 of 6") { usleep(5_000) }
        child.signal(SIGINT)
        let sent = Date()
        var stepLoggedAtAnswer = true
        while child.process.isRunning, Date().timeIntervalSince(sent) < 1 {
            if child.stderr.contains("stopping after this step") {
                stepLoggedAtAnswer = child.stdout.contains("Epoch: [0][0/6]")
                break
            }
            usleep(5_000)
        }
        let answered = Date().timeIntervalSince(sent)
        XCTAssertTrue(child.stderr.contains("manet: stopping after this step, Ctrl-C again to quit now"), child.stderr)
        XCTAssertLessThan(answered, 1.0)
        XCTAssertFalse(stepLoggedAtAnswer, "the answer came only after the step")
        let (status, _) = child.wait()
        XCTAssertEqual(status, 130, child.stderr)
        // The step went on after the answer and was completed and logged.
        XCTAssertTrue(child.stdout.contains("Epoch: [0][0/6]"), child.stdout)
        XCTAssertTrue(child.stdout.contains("interrupted in epoch 0 after step 1"), child.stdout)
        XCTAssertTrue(child.stdout.contains("resume with: manet train "), child.stdout)
    }
}
