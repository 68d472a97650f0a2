// The error of a file a user gave or asked for: which file, and why.

/// A problem with one file (a model, a tensor, an image, a folder): the file and the reason,
/// printed as `file: reason`. The command line reports it with exit code 2.
public struct FileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path as the user gave it (or the name of the bytes, for in-memory data).
    public var file: String
    /// Why the file was refused or could not be read or written.
    public var reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}
