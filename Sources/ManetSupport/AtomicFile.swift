// Writing a file so that a reader, or a crash, sees the old file or the complete new one.

import Glibc
import _CSystem

/// Atomic file replacement: the bytes go to `<path>.tmp-<pid>` in the same folder, which is
/// fsynced and closed (both checked) and renamed over `path`; then the folder is fsynced so the
/// rename itself survives a power loss. On any failure the temporary file is removed and `path`
/// is as it was. The temporary name carries the process id so that a later run can tell a
/// killed writer's leftover from a live one's (see `staleFiles(in:prefixes:)`).
public enum AtomicFile {
    /// The temporary file's name for `path` in this process.
    public static func temporaryPath(for path: String) -> String { temporaryPrefix(for: path) + "\(getpid())" }

    /// Writes `bytes` to `path` atomically. `beforeRename` runs when the temporary file is
    /// complete and durable, just before the rename: tests stop or kill a process there, or
    /// throw to play a crash (the write then fails like any other: `path` is as it was).
    public static func write(_ bytes: [UInt8], to path: String, beforeRename: (() throws -> Void)? = nil) throws {
        try write(to: path, beforeRename: beforeRename) { fd in
            try writeAll(bytes, to: fd, path: path)
        }
    }

    /// Writes `path` atomically with `body`, which writes the contents to the open descriptor it
    /// is given (e.g. with `writeAll(_:to:path:)`), in as many pieces as it likes.
    public static func write(to path: String, beforeRename: (() throws -> Void)? = nil,
                             _ body: (Int32) throws -> Void) throws {
        let temporary = temporaryPath(for: path)
        // O_NOFOLLOW: a symlink planted at the temporary name is refused, not written through.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw FileError(file: path, reason: "cannot create \(temporary): \(errnoText())") }
        var isOpen = true
        do {
            try body(fd)
            // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
            guard fsync(fd) == 0 else { throw FileError(file: path, reason: "cannot flush \(temporary): \(errnoText())") }
            isOpen = false
            guard close(fd) == 0 else { throw FileError(file: path, reason: "cannot close \(temporary): \(errnoText())") }
            try beforeRename?()
            guard rename(temporary, path) == 0 else {
                throw FileError(file: path, reason: "cannot rename \(temporary) to \(path): \(errnoText())")
            }
        } catch {
            if isOpen { _ = close(fd) }
            _ = unlink(temporary)
            throw error
        }
        // The rename is durable only once the folder's entry is on disk. A folder that cannot be
        // synced is reported: the new name may not survive a power loss (the old file or the
        // new one is there, never a torn file).
        try syncFolder(parentFolder(of: path), for: path)
    }

    // MARK: Many files, few syncs

    /// The first half of an atomic write whose syncs are shared with other files (`commitBatch`):
    /// `bytes` go to `path`'s temporary name, complete and closed but not yet synced, and that
    /// name is returned. `path` itself is untouched until the batch is committed.
    public static func writeTemporary(_ bytes: [UInt8], for path: String) throws -> String {
        let temporary = temporaryPath(for: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw FileError(file: path, reason: "cannot create \(temporary): \(errnoText())") }
        do {
            try writeAll(bytes, to: fd, path: path)
        } catch {
            _ = close(fd)
            _ = unlink(temporary)
            throw error
        }
        guard close(fd) == 0 else {
            let reason = "cannot close \(temporary): \(errnoText())"
            _ = unlink(temporary)
            throw FileError(file: path, reason: reason)
        }
        return temporary
    }

    /// Finishes `writeTemporary` for a batch of files with the guarantees of `write`, syncing
    /// once per batch instead of once per file: the filesystem holding the temporary files is
    /// synced (syncfs: all their data on disk before any rename), then each is renamed onto its
    /// path, then each folder holding one of the paths is fsynced. A name therefore never shows a partial file, even after a power
    /// loss, and when this returns every file is durable. If a sync fails, every temporary file
    /// is removed and no path has changed; if a rename fails, the files renamed before it stay
    /// (complete) and the other temporary files are removed.
    public static func commitBatch(_ files: [(temporary: String, path: String)]) throws {
        var renamed = 0
        do {
            // One syncfs per filesystem: an fsync per file costs a disk-cache flush each.
            var devices = Set<UInt64>()
            for (_, path) in files {
                let folder = parentFolder(of: path)
                let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard dir >= 0 else { throw FileError(file: path, reason: "cannot open its folder \(folder) to sync it: \(errnoText())") }
                defer { _ = close(dir) }
                var info = stat()
                guard fstat(dir, &info) == 0 else { throw FileError(file: path, reason: "cannot stat its folder \(folder): \(errnoText())") }
                guard devices.insert(UInt64(info.st_dev)).inserted else { continue }
                guard manet_syncfs(dir) == 0 else {
                    throw FileError(file: path, reason: "cannot flush the filesystem of \(folder): \(errnoText())")
                }
            }
            for (temporary, path) in files {
                guard rename(temporary, path) == 0 else {
                    throw FileError(file: path, reason: "cannot rename \(temporary) to \(path): \(errnoText())")
                }
                renamed += 1
            }
        } catch {
            discardBatch(Array(files[renamed...]))
            throw error
        }
        var synced = Set<String>()
        for (_, path) in files where synced.insert(parentFolder(of: path)).inserted {
            try syncFolder(parentFolder(of: path), for: path)
        }
    }

    /// Removes the temporary files of a batch that will not be committed.
    public static func discardBatch(_ files: [(temporary: String, path: String)]) {
        for (temporary, _) in files { _ = unlink(temporary) }
    }

    /// fsyncs `folder`, so that the entries made in it (renamed files, created folders) survive a
    /// power loss; a failure names `path` (what was written there) and the folder.
    public static func syncFolder(_ folder: String, for path: String) throws {
        let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw FileError(file: path, reason: "written, but cannot open its folder \(folder) to sync it: \(errnoText())") }
        defer { _ = close(dir) }
        if fsync(dir) != 0 && errno != EINVAL {
            throw FileError(file: path, reason: "written, but cannot sync its folder \(folder): \(errnoText())")
        }
    }

    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR; errors name `path`.
    public static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            try writeAll(raw, to: fd, path: path)
        }
    }

    /// Writes all of `raw` to `fd`, retrying short writes and EINTR; errors name `path`.
    public static func writeAll(_ raw: UnsafeRawBufferPointer, to fd: Int32, path: String) throws {
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FileError(file: path, reason: "cannot write: \(errnoText())") }
            done += n
        }
    }

    /// Files in `folder` named `<prefix><pid>` for one of `prefixes` whose process is no longer
    /// running (or is this one, which is not writing while it looks): with the prefix
    /// `<name>.tmp-`, what a write of `<name>` killed before its rename leaves behind.
    public static func staleFiles(in folder: String, prefixes: [String]) -> [String] {
        var found: [String] = []
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            for prefix in prefixes where name.hasPrefix(prefix) {
                guard let pid = Int32(name.dropFirst(prefix.count)) else { continue }
                if pid != getpid() && kill(pid, 0) == 0 { continue }  // a live writer's file
                found.append(folder + "/" + name)
            }
        }
        return found.sorted()
    }

    /// The prefix of `name`'s temporary files (`<name>.tmp-`), for `staleFiles(in:prefixes:)`.
    public static func temporaryPrefix(for name: String) -> String { name + ".tmp-" }

    static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// `strerror(errno)` as a Swift string.
func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// Reading a whole file.
public enum FileBytes {
    /// The file's bytes; errors say what failed (`cannot open PATH: REASON`).
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(file: path, reason: "cannot open \(path): \(errnoText())") }
        defer { _ = close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw FileError(file: path, reason: "cannot read \(path): \(errnoText())") }
            if n == 0 { return bytes }
            bytes += buffer[0..<n]
        }
    }
}
