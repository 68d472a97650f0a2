// The errors a dataset, an image file or the batch loader can raise, each naming the path at fault.

import Foundation

/// Everything that can go wrong between a dataset folder and a batch. These are user errors
/// (bad folders, bad files), so they are thrown values, never traps.
public enum DataError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A split folder (`train/` or `test/`) does not exist or is not a folder.
    case missingSplit(path: String)
    /// A split folder holds no class folders.
    case noClassFolders(path: String)
    /// A class folder holds no .jpg/.jpeg/.png file.
    case emptyClassFolder(path: String)
    /// The train and test splits disagree on their classes.
    case classMismatch(train: [String], test: [String])
    /// A symbolic link under the dataset root resolves outside it.
    case symlinkOutsideRoot(path: String, target: String)
    /// A file or folder could not be read at all.
    case unreadable(path: String, reason: String)
    /// A file is not a JPEG or PNG image, or its data is corrupt or truncated.
    case badImage(path: String, reason: String)
    /// An image's dimensions exceed the decoder's bound (refused before allocating).
    case imageTooLarge(path: String, reason: String)
    /// Encoding an image failed (invalid arguments or out of memory).
    case encodeFailed(reason: String)
    /// A transform or loader option is out of range.
    case invalidOption(String)

    public var description: String {
        switch self {
        case .missingSplit(let path):
            return "dataset split folder not found: \(path) (expected train/ and test/ with one folder per class)"
        case .noClassFolders(let path):
            return "no class folders in \(path) (expected one folder per class, e.g. 0..6)"
        case .emptyClassFolder(let path):
            return "class folder \(path) has no .jpg, .jpeg or .png files"
        case .classMismatch(let train, let test):
            return "train classes \(train) differ from test classes \(test)"
        case .symlinkOutsideRoot(let path, let target):
            return "symbolic link \(path) points outside the dataset root (to \(target)); links are followed only inside it"
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .badImage(let path, let reason):
            return "bad image \(path): \(reason)"
        case .imageTooLarge(let path, let reason):
            return "image too large \(path): \(reason)"
        case .encodeFailed(let reason):
            return "image encoding failed: \(reason)"
        case .invalidOption(let message):
            return message
        }
    }

    public var errorDescription: String? { description }
}
