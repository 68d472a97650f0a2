// Why a torch.save file cannot be read: one case, naming the file, the entry or opcode, and the reason.

import ManetSupport

/// The project's one `{file, reason}` error (`ManetSupport.FileError`), under this module's name.
public typealias PyTorchFormatError = FileError

/// What the reader refuses before allocating: limits are values chosen by the caller.
public struct PyTorchReadLimits: Sendable {
    /// Containers nested deeper than this are refused (a state_dict nests 3-6 levels).
    public var maxDepth: Int
    /// Memo entries (PUT / MEMOIZE) beyond this are refused.
    public var maxMemo: Int
    /// Total bytes of the storages a load may materialise; `nil` is no limit.
    public var maxBytes: Int?

    public init(maxDepth: Int = 256, maxMemo: Int = 1_000_000, maxBytes: Int? = nil) {
        self.maxDepth = maxDepth
        self.maxMemo = maxMemo
        self.maxBytes = maxBytes
    }
}
