// Scans an image-folder dataset split (root/train/<class>/*.jpg) into sorted (path, label) samples, as torchvision's ImageFolder does.

import Foundation

/// Which half of a dataset root to read.
public enum DatasetSplit: String, Sendable, CaseIterable {
    case train
    case test
}

/// One split of an image-folder dataset: `root/<split>/<class>/.../<file>`.
///
/// - Classes are the sub-folders of the split, sorted by code point (Python's `sorted`), and
///   labelled 0, 1, ... in that order, like torchvision's `ImageFolder`. When the folders are
///   exactly `0`..`6` they are RAF-DB's, and `classNames` are RAF-DB's expression names
///   (0 Neutral, 1 Happiness, 2 Sadness, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger); otherwise the
///   class names are the folder names.
/// - Files are found recursively (as `os.walk` in `make_dataset`), ordered by (folder path,
///   file name); only `.jpg`, `.jpeg` and `.png`, in any letter case, count.
/// - Symbolic links are followed only when they resolve inside the dataset root; a link that
///   leaves it is an error, so a dataset cannot silently read files from elsewhere on the disk.
public struct ImageFolderDataset: Sendable {
    public struct Sample: Sendable, Equatable {
        public var path: URL
        public var label: Int
    }

    /// RAF-DB's basic-expression names, indexed by the folder numbers the authors use.
    public static let rafDBClassNames = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger"]
    /// The file extensions read, lower-cased.
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    public let root: URL
    public let split: DatasetSplit
    /// The class folder names, in label order.
    public let classFolders: [String]
    /// Human-readable class names, in label order (see the type's comment).
    public let classNames: [String]
    /// Every image, in ImageFolder order: by class, then by path.
    public let samples: [Sample]

    public var count: Int { samples.count }

    /// Scans `root/<split>`. Throws `DataError` for a missing split folder, no class folders, an
    /// empty class folder, an unreadable folder or a link leaving the root, naming the path.
    public init(root: URL, split: DatasetSplit) throws {
        let fileManager = FileManager.default
        let resolvedRoot = root.standardizedFileURL.resolvingSymlinksInPath()
        let splitURL = root.appendingPathComponent(split.rawValue, isDirectory: true)
        guard Self.isDirectory(splitURL) else { throw DataError.missingSplit(path: splitURL.path) }
        try Self.checkInsideRoot(splitURL, root: resolvedRoot)

        let entries: [String]
        do {
            entries = try fileManager.contentsOfDirectory(atPath: splitURL.path)
        } catch {
            throw DataError.unreadable(path: splitURL.path, reason: (error as NSError).localizedDescription)
        }
        var folders: [String] = []
        for name in entries.sorted(by: Self.codePointLess) {
            let url = splitURL.appendingPathComponent(name, isDirectory: true)
            guard Self.isDirectory(url) else { continue }
            try Self.checkInsideRoot(url, root: resolvedRoot)
            folders.append(name)
        }
        guard !folders.isEmpty else { throw DataError.noClassFolders(path: splitURL.path) }

        var samples: [Sample] = []
        for (label, folder) in folders.enumerated() {
            let classURL = splitURL.appendingPathComponent(folder, isDirectory: true)
            let files = try Self.imageFiles(under: classURL, root: resolvedRoot)
            guard !files.isEmpty else { throw DataError.emptyClassFolder(path: classURL.path) }
            samples += files.map { Sample(path: $0, label: label) }
        }
        self.root = root
        self.split = split
        self.classFolders = folders
        self.classNames = folders == (0..<7).map(String.init) ? Self.rafDBClassNames : folders
        self.samples = samples
    }

    /// Both splits of `root`, checked to have the same class folders.
    public static func load(root: URL) throws -> (train: ImageFolderDataset, test: ImageFolderDataset) {
        let train = try ImageFolderDataset(root: root, split: .train)
        let test = try ImageFolderDataset(root: root, split: .test)
        guard train.classFolders == test.classFolders else {
            throw DataError.classMismatch(train: train.classFolders, test: test.classFolders)
        }
        return (train, test)
    }

    /// Number of samples per label.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classFolders.count)
        for sample in samples { counts[sample.label] += 1 }
        return counts
    }

    // MARK: - Scanning

    /// Image files below `folder`, sorted as `sorted(os.walk(folder))` then `sorted(files)`:
    /// by the full folder path first, then by file name.
    private static func imageFiles(under folder: URL, root: URL) throws -> [URL] {
        var found: [(directory: String, name: String, url: URL)] = []
        var pending = [folder]
        var visited = Set<String>()
        while let directory = pending.popLast() {
            // A link cycle inside the root would otherwise loop forever.
            let canonical = directory.resolvingSymlinksInPath().path
            guard visited.insert(canonical).inserted else { continue }
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            } catch {
                throw DataError.unreadable(path: directory.path, reason: (error as NSError).localizedDescription)
            }
            for name in names {
                let url = directory.appendingPathComponent(name)
                try checkInsideRoot(url, root: root)
                if isDirectory(url) {
                    pending.append(url)
                } else if imageExtensions.contains(url.pathExtension.lowercased()) {
                    found.append((directory.path, name, url))
                }
            }
        }
        found.sort { a, b in
            a.directory == b.directory ? codePointLess(a.name, b.name) : codePointLess(a.directory, b.directory)
        }
        return found.map(\.url)
    }

    /// Python orders strings by code point; Swift's `<` orders by normalised grapheme, which
    /// can differ for accented names, so compare scalars.
    static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    private static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Throws when `url` is a symbolic link (or sits below one) that resolves outside `root`.
    private static func checkInsideRoot(_ url: URL, root: URL) throws {
        let resolved = url.resolvingSymlinksInPath().path
        let rootPath = root.path.hasSuffix("/") ? root.path : root.path + "/"
        if resolved != root.path && !resolved.hasPrefix(rootPath) {
            throw DataError.symlinkOutsideRoot(path: url.path, target: resolved)
        }
    }
}
