// Runs the built `manet` binary and captures its exit status and output, for end-to-end tests.

import Foundation

/// The `manet` binary under test: `$MANET_BINARY` (set by `make test`), else the release build.
public var manetBinary: String {
    TestEnvironment.value("MANET_BINARY") ?? Fixtures.packageRoot.appendingPathComponent(".build/release/manet").path
}

/// The test-only `CrashTestTrainer` program (Tests/CrashTestTrainer), built beside `manet`.
public var crashTestTrainerBinary: String {
    URL(fileURLWithPath: manetBinary).deletingLastPathComponent().appendingPathComponent("CrashTestTrainer").path
}

/// The result of one run of a command.
public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `manet args...` to completion.
public func runManet(_ args: [String]) throws -> ProcessResult {
    try runProcess(manetBinary, args)
}

/// Runs an executable to completion, reading both pipes concurrently so neither can fill and block.
public func runProcess(_ executable: String, _ args: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = args
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let errBox = DataBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.set(err.fileHandleForReading.readDataToEndOfFile())
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let errData = errBox.get()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Data handed from the stderr reader thread to the caller.
private final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}
