// Why a model file cannot become a MA-Net checkpoint: each case names the file and everything that is wrong.

/// A state_dict tensor whose shape is not the one MA-Net needs at the chosen width and class count.
public struct ShapeMismatch: Equatable, Sendable, CustomStringConvertible {
    public var key: String
    public var found: [Int]
    public var expected: [Int]

    public init(key: String, found: [Int], expected: [Int]) {
        self.key = key
        self.found = found
        self.expected = expected
    }

    public var description: String { "\(key): \(found) in the file, MA-Net needs \(expected)" }
}

public enum ImportError: Error, Equatable, CustomStringConvertible {
    /// The file cannot be read or is of no format the importer knows.
    case unreadable(file: String, reason: String)
    /// The file is readable but is not MA-Net at all (no tensor to read the width from).
    case notMANet(file: String, reason: String)
    /// The file is MA-Net-like but its tensors do not match: every problem, in one error, as
    /// PyTorch's `load_state_dict(strict=True)` reports them.
    case keyMismatch(file: String, missing: [String], unexpected: [String], misshaped: [ShapeMismatch])
    /// A tensor holds a type or values the checkpoint cannot take.
    case invalidTensor(file: String, key: String, reason: String)
    /// A command-line option that contradicts the file or MA-Net's rules.
    case invalidOption(String)

    /// The message with every key listed.
    public var fullDescription: String { describe(keysPerList: nil) }

    /// The message with at most a few keys per list (`... and N more`), the cause first.
    public var description: String { describe(keysPerList: 3) }

    /// True when `description` leaves keys out that `fullDescription` lists.
    public var isSummarised: Bool { describe(keysPerList: 3) != describe(keysPerList: nil) }

    /// `keysPerList` keys of each list (nil: all), then `... and N more`. A stem of another width
    /// (conv1.weight mis-shaped) is said first: it is why every other key is mis-shaped too.
    public func describe(keysPerList limit: Int?) -> String {
        func list<T>(_ items: [T], _ separator: String, _ show: (T) -> String) -> String {
            let shown = limit.map { Array(items.prefix($0)) } ?? items
            let rest = items.count - shown.count
            return shown.map(show).joined(separator: separator) + (rest > 0 ? "\(separator)... and \(rest) more" : "")
        }
        switch self {
        case let .unreadable(file, reason): return "\(file): \(reason)"
        case let .notMANet(file, reason): return "\(file): not an MA-Net model: \(reason)"
        case let .keyMismatch(file, missing, unexpected, misshaped):
            var parts: [String] = []
            if let stem = misshaped.first(where: { $0.key == "conv1.weight" }), let found = stem.found.first,
               let expected = stem.expected.first, found != expected {
                parts.append("the file has width \(found) (conv1.weight \(stem.found)), width \(expected) was asked for "
                             + "(conv1.weight \(stem.expected))")
            }
            if !missing.isEmpty {
                parts.append("\(missing.count) missing key(s): " + list(missing, ", ") { $0 })
            }
            if !unexpected.isEmpty {
                parts.append("\(unexpected.count) unexpected key(s): " + list(unexpected, ", ") { $0 })
            }
            if !misshaped.isEmpty {
                parts.append("\(misshaped.count) key(s) with the wrong shape: " + list(misshaped, "; ") { $0.description })
            }
            return "\(file): the tensors do not match MA-Net:\n  " + parts.joined(separator: "\n  ")
        case let .invalidTensor(file, key, reason): return "\(file): tensor '\(key)': \(reason)"
        case .invalidOption(let s): return s
        }
    }
}
