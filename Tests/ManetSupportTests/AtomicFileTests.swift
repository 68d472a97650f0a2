// Atomic file writing: the new contents or the old, never a partial file or a leftover.

import Foundation
import ManetSupport
import TestSupport
import XCTest

final class AtomicFileTests: XCTestCase {
    func testReplacesTheFileAndLeavesNoTemporary() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        let path = folder.file("out.bin")
        try AtomicFile.write([1, 2, 3], to: path)
        try AtomicFile.write([4, 5], to: path)
        XCTAssertEqual(try FileBytes.read(path), [4, 5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["out.bin"])
    }

    /// `beforeRename` sees the complete temporary file while the target still holds the old bytes.
    func testBeforeRenameRunsBetweenTheCompleteTemporaryAndTheRename() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        let path = folder.file("checkpoint.pb")
        try AtomicFile.write([9], to: path)
        var seen: (target: [UInt8], temporary: [UInt8])?
        try AtomicFile.write([7, 7, 7], to: path) {
            seen = (try! FileBytes.read(path), try! FileBytes.read(AtomicFile.temporaryPath(for: path)))
        }
        XCTAssertEqual(seen?.target, [9])
        XCTAssertEqual(seen?.temporary, [7, 7, 7])
        XCTAssertEqual(try FileBytes.read(path), [7, 7, 7])
    }

    /// A failing body (as a full disk) leaves the old file and no temporary, and names the path.
    func testAFailedWriteKeepsTheOldFile() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        let path = folder.file("model.onnx")
        try AtomicFile.write([1], to: path)
        XCTAssertThrowsError(try AtomicFile.write(to: path) { fd in
            try AtomicFile.writeAll([2, 2], to: fd, path: path)
            throw FileError(file: path, reason: "cannot write: No space left on device")
        }) { error in
            XCTAssertEqual("\(error)", "\(path): cannot write: No space left on device")
        }
        XCTAssertEqual(try FileBytes.read(path), [1])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.onnx"])
        // A folder in the way: the rename fails, the error names the file and the reason.
        let blocked = folder.file("blocked")
        try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: false)
        XCTAssertThrowsError(try AtomicFile.write([1], to: blocked)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(blocked): cannot rename"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: AtomicFile.temporaryPath(for: blocked)))
    }

    /// A batch: nothing under the final names until the commit, then every file whole, no
    /// temporary left, the old contents replaced.
    func testBatchShowsNoFileBeforeItsCommit() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.file("b"), withIntermediateDirectories: false)
        let paths = [folder.file("a.jpg"), folder.file("b/c.jpg"), folder.file("b/d.jpg")]
        try AtomicFile.write([0], to: paths[2])
        var batch: [(temporary: String, path: String)] = []
        for (i, path) in paths.enumerated() {
            batch.append((try AtomicFile.writeTemporary([UInt8](repeating: UInt8(i + 1), count: 1000 * (i + 1)), for: path), path))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths[0]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths[1]))
        XCTAssertEqual(try FileBytes.read(paths[2]), [0])
        XCTAssertEqual(try FileBytes.read(batch[1].temporary).count, 2000)
        try AtomicFile.commitBatch(batch)
        for (i, path) in paths.enumerated() {
            XCTAssertEqual(try FileBytes.read(path), [UInt8](repeating: UInt8(i + 1), count: 1000 * (i + 1)))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.file("b")).sorted(), ["c.jpg", "d.jpg"])
    }

    /// A batch that fails keeps what it had not yet renamed out of sight and leaves no temporary;
    /// one that is discarded changes nothing.
    func testAFailedOrDiscardedBatchLeavesNoTemporary() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        let blocked = folder.file("blocked")
        try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: false)
        let batch = try [folder.file("x"), blocked, folder.file("y")].map { (try AtomicFile.writeTemporary([1, 2], for: $0), $0) }
        XCTAssertThrowsError(try AtomicFile.commitBatch(batch)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(blocked): cannot rename"), "\(error)")
        }
        XCTAssertEqual(try FileBytes.read(folder.file("x")), [1, 2])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["blocked", "x"])
        let discarded = [(try AtomicFile.writeTemporary([3], for: folder.file("z")), folder.file("z"))]
        AtomicFile.discardBatch(discarded)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["blocked", "x"])
    }

    /// Leftovers of dead writers are found, and this process's own (it is not writing while it
    /// looks); another live process's (pid 1) are not.
    func testStaleFilesAreThoseOfDeadProcesses() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        for name in ["a.pb.tmp-999999999", "a.pb.tmp-1", "a.pb.tmp-\(getpid())", "b.pb.tmp-999999999", "a.pb.tmp-x"] {
            _ = FileManager.default.createFile(atPath: folder.file(name), contents: Data())
        }
        XCTAssertEqual(AtomicFile.staleFiles(in: folder.path, prefixes: [AtomicFile.temporaryPrefix(for: "a.pb")]),
                       [folder.file("a.pb.tmp-\(getpid())"), folder.file("a.pb.tmp-999999999")].sorted())
    }

    func testReadOfAMissingFileNamesIt() {
        XCTAssertThrowsError(try FileBytes.read("/nonexistent/x.pb")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/x.pb: cannot open /nonexistent/x.pb: No such file or directory")
        }
    }
}

final class RandomTests: XCTestCase {
    /// SplitMix64's published reference outputs for seed 0 (Vigna's splitmix64.c).
    func testSplitMix64MatchesTheReference() {
        var g = SplitMix64(seed: 0)
        XCTAssertEqual([g.next(), g.next(), g.next()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
    }

    /// xoshiro256** seeded through SplitMix64 and restored from its state words continues the stream.
    func testXoshiroRestoresFromItsState() {
        var a = Xoshiro256(seed: 42)
        _ = a.next()
        var b = Xoshiro256(stateWords: a.stateWords)!
        XCTAssertEqual((0..<4).map { _ in a.next() }, (0..<4).map { _ in b.next() })
        XCTAssertNil(Xoshiro256(stateWords: [0, 0, 0, 0]))
    }
}
