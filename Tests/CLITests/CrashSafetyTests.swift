// Crash-safe training through the `manet` binary: SIGKILL at seeded moments (some inside checkpoint
// writes, by the test-only CrashTestTrainer) and SIGINT, each followed by --resume, must log the
// same per-step losses as an uninterrupted run; a file-size limit is an error that leaves the
// previous checkpoint intact.

import Foundation
import MANet
import ManetSupport
import TestSupport
import XCTest

/// A tiny seeded run shared by the tests: 7 classes x 6 train / 2 test images of 64 px, width 4
/// (unless a test needs slower steps), batch 8 (6 steps per epoch, the last one of 2 images),
/// every step logged.
final class TinyTrainingRun {
    let root: TemporaryFolder
    let data: String
    let epochs: Int

    init(epochs: Int = 3) throws {
        root = try TemporaryFolder("manet-crash-safety")
        data = root.file("data")
        self.epochs = epochs
        let synth = try runManet(["synth", "--out", data, "--train-per-class", "6", "--test-per-class", "2",
                                  "--size", "64", "--seed", "11", "--threads", "1"])
        guard synth.status == 0 else { throw OutputPathTestError("manet synth failed: \(synth.stderr)") }
    }

    /// `manet train` arguments writing to `dir` (checkpoints and `dir/log.txt`).
    func arguments(dir: String, epochs: Int? = nil, resume: Bool = false, width: Int = 4, inputSize: Int = 64) -> [String] {
        var args = ["train", "--data", data, "--width", String(width), "--input-size", String(inputSize), "--epochs", String(epochs ?? self.epochs),
                    "--batch-size", "8", "--print-freq", "1", "--threads", "1", "--seed", "5",
                    "--checkpoint-dir", dir, "--log", dir + "/log.txt"]
        if resume { args += ["--resume", dir + "/checkpoint.pb"] }
        return args
    }

    /// `CrashTestTrainer` arguments for the same run (width 4) in `dir`.
    func crashTrainerArguments(dir: String) -> [String] {
        [data, dir, String(epochs), "4", "64", "8", "5"]
    }

    /// The log's lines without the epoch-time lines (a bare number of seconds).
    static func comparableLines(_ path: String) -> [String] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { Double($0) == nil }
    }
}

struct OutputPathTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A `manet` child process with its output in files, that the test can signal.
final class ManetChild {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(_ args: [String], environment extra: [String: String] = [:], outputPrefix: String,
         executable: String = manetBinary) throws {
        stdoutPath = outputPrefix + ".out"
        stderrPath = outputPrefix + ".err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for exit; returns (status, killed by a signal).
    @discardableResult
    func wait() -> (status: Int32, signalled: Bool) {
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }
}

final class CrashSafetyTests: XCTestCase {
    nonisolated(unsafe) static var shared: TinyTrainingRun?
    nonisolated(unsafe) static var referenceLines: [String] = []
    nonisolated(unsafe) static var referenceSeconds = 0.0

    var run: TinyTrainingRun { Self.shared! }

    /// The dataset and the uninterrupted reference run, made once for the class.
    override func setUpWithError() throws {
        if Self.shared != nil { return }
        let run = try TinyTrainingRun()
        let dir = run.root.file("reference")
        let start = Date()
        let r = try runManet(run.arguments(dir: dir))
        Self.referenceSeconds = Date().timeIntervalSince(start)
        XCTAssertEqual(r.status, 0, r.stderr)
        Self.referenceLines = TinyTrainingRun.comparableLines(dir + "/log.txt")
        // 3 epochs x (lr, 6 steps, 2 test lines, accuracy, best) and the final empty line.
        XCTAssertEqual(Self.referenceLines.filter { $0.hasPrefix("Epoch: [") }.count, 18)
        Self.shared = run
    }

    override class func tearDown() {
        shared?.root.remove()
        shared = nil
    }

    private func files(in dir: String, prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// SIGKILL at seeded moments, each followed by a resume from the latest checkpoint (or a
    /// fresh start, log removed, while there is none). Every fourth kill lands between a
    /// checkpoint's complete temporary file and its rename: CrashTestTrainer, the same training
    /// through the library, kills itself there (its `beforeCheckpointRename`); the checkpoint
    /// must be byte for byte the previous one and the complete temporary file must not be taken
    /// for it. Every chain of runs that reaches the end must log exactly what the uninterrupted
    /// run logged.
    func testKilledAtRandomMomentsResumesToTheSameLosses() throws {
        let dir = run.root.file("killed")
        let latest = dir + "/checkpoint.pb", log = dir + "/log.txt"
        var schedule = SplitMix64(seed: 20_261_127)  // the test's own seeded choice of kill moments
        var kills = 0, aimedKills = 0, removedTemporaries = 0, checkpointSeen = false, attempt = 0, chains = 0
        let perEpoch = Self.referenceSeconds / Double(run.epochs)
        func temporaries() -> [String] { files(in: dir, prefix: "checkpoint.pb.tmp-") + files(in: dir, prefix: "model_best.pb.tmp-") }
        func removed(_ child: ManetChild) -> Int { child.stdout.components(separatedBy: "left by a checkpoint write that was killed").count - 1 }
        /// A chain reached the end: its log must be the reference's; start a new chain.
        func finishChain(_ why: String) throws {
            XCTAssertEqual(TinyTrainingRun.comparableLines(log), Self.referenceLines, "chain \(chains) (\(why))")
            chains += 1
            try FileManager.default.removeItem(atPath: dir)
            checkpointSeen = false
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        while kills < 10 && attempt < 40 {
            attempt += 1
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let resume = FileManager.default.fileExists(atPath: latest)
            if !resume { try? FileManager.default.removeItem(atPath: log) }  // no checkpoint: start over
            let logText = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let epochsLogged = logText.components(separatedBy: "Current best accuracy").count - 1
            let aimed = kills % 4 == 3
            if aimed {
                // CrashTestTrainer resumes (or starts) the same run and kills itself in its first
                // checkpoint write, after the temporary file is complete and before the rename.
                let previous = try? Data(contentsOf: URL(fileURLWithPath: latest))
                let previousEpochs = try previous.map { try TrainingCheckpoint.decode([UInt8]($0)).epochsCompleted } ?? 0
                let child = try ManetChild(run.crashTrainerArguments(dir: dir), outputPrefix: run.root.file("killed-\(attempt)"),
                                           executable: crashTestTrainerBinary)
                let (status, signalled) = child.wait()
                if !signalled && status == 3 && previousEpochs == run.epochs { try finishChain("complete before this attempt"); continue }
                XCTAssertTrue(signalled, "CrashTestTrainer exited with \(status): \(child.stderr)")
                guard signalled else { break }
                kills += 1
                aimedKills += 1
                XCTAssertEqual(try? Data(contentsOf: URL(fileURLWithPath: latest)), previous,
                               "a kill between the write and the rename changed \(latest)")
                // What the kill left: the complete new checkpoint under its temporary name only.
                let left = temporaries().filter { $0.hasSuffix(".tmp-\(child.pid)") }
                XCTAssertEqual(left.count, 1, "\(temporaries())")
                if let temporary = left.first {
                    let written = try TrainingCheckpoint.read(path: dir + "/" + temporary)
                    XCTAssertEqual(written.epochsCompleted, previousEpochs + 1)
                }
                checkpointSeen = checkpointSeen || previous != nil
                continue
            }
            // Starting over replaces what the killed run left (a model_best.pb written just
            // before the kill): --overwrite says so, as the refusal's hint asks.
            let child = try ManetChild(run.arguments(dir: dir, resume: resume) + (resume ? [] : ["--overwrite"]),
                                       outputPrefix: run.root.file("killed-\(attempt)"))
            let remaining = perEpoch * Double(max(1, run.epochs - epochsLogged)) + 0.3
            usleep(UInt32(schedule.uniform(0.1...0.95) * remaining * 1e6))
            child.signal(SIGKILL)
            let (status, signalled) = child.wait()
            removedTemporaries += removed(child)
            if !signalled {
                // It got to the end before the kill (or had already: a kill after the last checkpoint).
                if status == 2 && child.stderr.contains("already completed") { try finishChain("complete before this resume"); continue }
                XCTAssertEqual(status, 0, "attempt \(attempt): \(child.stderr)")
                try finishChain("finished before the kill")
                continue
            }
            kills += 1
            // Once there is a latest checkpoint, no kill may take it away.
            if checkpointSeen { XCTAssertTrue(FileManager.default.fileExists(atPath: latest), "kill \(kills) removed the checkpoint") }
            checkpointSeen = checkpointSeen || FileManager.default.fileExists(atPath: latest)
        }
        XCTAssertEqual(kills, 10, "the runs kept finishing before they could be killed")
        XCTAssertGreaterThanOrEqual(aimedKills, 2)
        let leftover = temporaries()
        // As in the loop: with no checkpoint yet (the last kill came before the first one was
        // renamed into place) the final run starts over, so the killed run's lines go first.
        let finalResumes = FileManager.default.fileExists(atPath: latest)
        if !finalResumes { try? FileManager.default.removeItem(atPath: log) }
        let final = try runManet(run.arguments(dir: dir, resume: finalResumes) + (finalResumes ? [] : ["--overwrite"]))
        removedTemporaries += final.stdout.components(separatedBy: "left by a checkpoint write that was killed").count - 1
        if final.status == 2 && final.stderr.contains("already completed") {
            try? FileManager.default.removeItem(atPath: latest)  // the chain was complete already
        } else {
            XCTAssertEqual(final.status, 0, final.stderr)
        }
        // The aimed kills left temporary files; the next run removed each of them.
        XCTAssertGreaterThanOrEqual(removedTemporaries, aimedKills)
        XCTAssertTrue(temporaries().isEmpty, "left over: \(leftover)")
        try finishChain("final")
        print("crash safety: \(kills) kills (\(aimedKills) inside checkpoint writes) in \(attempt) runs, \(chains) chain(s) "
              + "compared with the uninterrupted run; \(removedTemporaries) leftover temporary files removed")
    }

    /// Ctrl-C mid-epoch: exit 130 with a mid-epoch checkpoint and a resume hint; the resumed run
    /// continues with the next batch. Then two Ctrl-Cs in one step: immediate exit 130, the
    /// previous checkpoint stays valid. The final log equals an uninterrupted run's. Width 16,
    /// so that a step takes long enough for both signals to land inside it.
    func testSIGINTStopsAfterTheCurrentStepAndResumesExactly() throws {
        let width = 16
        let reference = run.root.file("interrupted-reference")
        let uninterrupted = try runManet(run.arguments(dir: reference, width: width))
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.stderr)
        let referenceLines = TinyTrainingRun.comparableLines(reference + "/log.txt")
        XCTAssertEqual(referenceLines.filter { $0.hasPrefix("Epoch: [") }.count, 18)

        let dir = run.root.file("interrupted")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let log = dir + "/log.txt"
        func waitFor(_ child: ManetChild, _ done: () -> Bool) {
            let deadline = Date().addingTimeInterval(120)
            while child.process.isRunning, Date() < deadline, !done() { usleep(2_000) }
        }
        func logged(_ text: String) -> Bool { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(text) }

        // 1. One SIGINT after the first step of epoch 1 is logged.
        let first = try ManetChild(run.arguments(dir: dir, width: width), outputPrefix: run.root.file("sigint-1"))
        waitFor(first) { logged("Epoch: [1][0/6]") }
        first.signal(SIGINT)
        let (status1, signalled1) = first.wait()
        XCTAssertFalse(signalled1)
        XCTAssertEqual(status1, 130, first.stderr)
        let stopped = first.stdout
        XCTAssertTrue(stopped.contains("interrupted in epoch 1 after step "), stopped)
        XCTAssertTrue(stopped.contains("checkpoint written to \(dir)/checkpoint.pb"), stopped)
        XCTAssertTrue(stopped.contains("resume with: manet train --data "), stopped)
        XCTAssertTrue(stopped.contains("--resume \(dir)/checkpoint.pb"), stopped)
        // The log stops at a step line of epoch 1 (the step it finished).
        let partial = TinyTrainingRun.comparableLines(log).filter { !$0.isEmpty }
        XCTAssertTrue(partial.last?.hasPrefix("Epoch: [1][") ?? false, "\(partial.last ?? "")")

        // 2. Resume; during a step of epoch 2 a SIGINT, and once it is acknowledged, a second
        // one: immediate exit.
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.pb"))
        let second = try ManetChild(run.arguments(dir: dir, resume: true, width: width), outputPrefix: run.root.file("sigint-2"))
        waitFor(second) { logged("Epoch: [2][1/6]") }
        second.signal(SIGINT)
        waitFor(second) { second.stderr.contains("stopping after this step") }
        second.signal(SIGINT)
        let (status2, _) = second.wait()
        XCTAssertEqual(status2, 130, second.stderr)
        XCTAssertTrue(second.stderr.contains("second interrupt, exiting now"), second.stderr)
        XCTAssertFalse(second.stdout.contains("interrupted in epoch"), "the run stopped before the second Ctrl-C: \(second.stdout)")
        let after = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.pb"))
        XCTAssertNotEqual(before, after, "the end of epoch 1 wrote a new checkpoint")

        // 3. Resume to the end: the same lines as the uninterrupted run.
        let last = try runManet(run.arguments(dir: dir, resume: true, width: width))
        XCTAssertEqual(last.status, 0, last.stderr)
        XCTAssertEqual(TinyTrainingRun.comparableLines(log), referenceLines)
    }

    /// A file-size limit (as a full disk): the checkpoint write fails with an error naming the
    /// checkpoint and EFBIG's reason; the previous checkpoint is byte-identical and resumable.
    /// The same limit hitting the log is an error naming the log.
    func testFileSizeLimitIsAnErrorAndKeepsThePreviousCheckpoint() throws {
        let dir = run.root.file("full")
        let oneEpoch = try runManet(run.arguments(dir: dir, epochs: 1))
        XCTAssertEqual(oneEpoch.status, 0, oneEpoch.stderr)
        let checkpoint = dir + "/checkpoint.pb"
        let saved = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let logSize = try Data(contentsOf: URL(fileURLWithPath: dir + "/log.txt")).count
        XCTAssertGreaterThan(saved.count, 8 * logSize + 8192, "the test needs a checkpoint much larger than the log")

        func limited(blocks: Int, _ args: [String]) throws -> ProcessResult {
            // dash's `ulimit -f` counts 512-byte blocks.
            try runProcess("/bin/sh", ["-c", "ulimit -f \(blocks) && exec \"$0\" \"$@\"", manetBinary] + args)
        }
        // Room for the log and the curves, not for a checkpoint.
        let ckptLimited = try limited(blocks: (saved.count / 2) / 512, run.arguments(dir: dir, epochs: 2, resume: true))
        XCTAssertEqual(ckptLimited.status, 2, ckptLimited.stdout + ckptLimited.stderr)
        XCTAssertTrue(ckptLimited.stderr.contains("\(dir)/checkpoint.pb"), ckptLimited.stderr)
        XCTAssertTrue(ckptLimited.stderr.contains("File too large"), ckptLimited.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), saved)
        XCTAssertTrue(files(in: dir, prefix: "checkpoint.pb.tmp-").isEmpty, "a failed write leaves no temporary file")

        // Room for a few more log lines only (the resume first cuts the log back to `logSize`).
        let logLimited = try limited(blocks: logSize / 512 + 1, run.arguments(dir: dir, epochs: 2, resume: true))
        XCTAssertEqual(logLimited.status, 2, logLimited.stdout + logLimited.stderr)
        XCTAssertTrue(logLimited.stderr.contains("\(dir)/log.txt: cannot append to the log file: File too large"), logLimited.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), saved)

        // The kept checkpoint resumes, and the log comes out as an uninterrupted 2-epoch run's.
        let resumed = try runManet(run.arguments(dir: dir, epochs: 2, resume: true))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let third = Self.referenceLines.indices.filter { Self.referenceLines[$0].hasPrefix("Current learning rate") }[2]
        XCTAssertEqual(TinyTrainingRun.comparableLines(dir + "/log.txt"), Array(Self.referenceLines[..<third]) + [""])
    }

    /// The curves cannot be written (their path is a folder): an error naming the .svg, no crash.
    func testUnwritableCurvesAreAnError() throws {
        let dir = run.root.file("svg")
        try FileManager.default.createDirectory(atPath: dir + "/log.svg", withIntermediateDirectories: true)
        let r = try runManet(run.arguments(dir: dir, epochs: 1))
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/log.svg"), r.stderr)
    }
}
