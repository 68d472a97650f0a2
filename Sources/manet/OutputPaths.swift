// Checks on the files and folders a command is about to write, before it writes anything:
// a command writes exactly what the user named (and its documented companions beside it).

import Foundation

enum OutputPath {
    /// Refuses to write `path` (`what` names the option, for the message) when it names a folder
    /// (`dir/`, `.`, `..`, an existing directory or a link to one), an existing file that is not
    /// a regular file (a FIFO, a device, a socket), or lies in a folder that does not exist.
    /// A link to a regular file is allowed: the atomic rename replaces the link, not its target.
    static func checkFile(_ path: String, what: String) throws {
        func refuse(_ reason: String) -> Error { OutputPathError(message: "\(what) \(path): \(reason)") }
        guard !path.isEmpty else { throw refuse("empty path") }
        let last = (path as NSString).lastPathComponent
        if path.hasSuffix("/") || last == "." || last == ".." { throw refuse("names a folder, not a file") }
        var info = stat()
        if lstat(path, &info) == 0 {
            var kind = info.st_mode & S_IFMT
            if kind == S_IFLNK {
                var target = stat()
                if stat(path, &target) == 0 { kind = target.st_mode & S_IFMT } else { kind = S_IFREG }  // dangling: replaced
            }
            if kind == S_IFDIR { throw refuse("is a folder; refusing to overwrite it") }
            if kind != S_IFREG { throw refuse("exists and is not a regular file; refusing to overwrite it") }
        }
        let folder = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if !folder.isEmpty, !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw refuse("its folder \(folder) does not exist")
        }
    }

    /// Refuses a folder path that exists as something other than a folder (or a link to one).
    static func checkFolder(_ path: String, what: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw OutputPathError(message: "\(what) \(path): exists and is not a folder")
        }
    }
}

struct OutputPathError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
