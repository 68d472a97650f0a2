// Where test data lives: the package's fixtures folder and the folders `make test` passes in.

import Foundation

/// The package's committed fixtures (`fixtures/` at the package root).
public enum Fixtures {
    /// The package root, found from this file's path (Tests/TestSupport/Paths.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let root: URL = packageRoot.appendingPathComponent("fixtures")

    /// `fixtures/<relative>`.
    public static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }

    /// Every file under `fixtures/` whose name ends in `suffix` (e.g. `.onnx`), sorted.
    public static func files(withSuffix suffix: String) -> [String] {
        // Resolve a symlinked fixtures folder first: the enumerator does not descend into a link.
        let real = root.resolvingSymlinksInPath().path
        guard let walker = FileManager.default.enumerator(atPath: real) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(suffix) }.sorted().map(path)
    }
}

/// Environment variables that `make test` sets.
public enum TestEnvironment {
    /// The value of `name`, or an error telling the reader to run the suite through `make test`.
    public static func require(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw MissingEnvironment(name: name)
        }
        return value
    }

    public static func value(_ name: String) -> String? {
        let value = ProcessInfo.processInfo.environment[name]
        return value?.isEmpty == false ? value : nil
    }

    public struct MissingEnvironment: Error, CustomStringConvertible {
        public var name: String
        public init(name: String) { self.name = name }
        public var description: String {
            "\(name) is not set: run the tests with `make test`, which sets it (see the Makefile)"
        }
    }
}

/// A fresh temporary folder, removed by `remove()` or, at the latest, when the last reference to
/// it goes (a test that forgets `remove()` or stops at a failure leaves nothing behind).
public final class TemporaryFolder {
    public let url: URL
    public var path: String { url.path }

    public init(_ label: String = "manet-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func remove() { try? FileManager.default.removeItem(at: url) }

    deinit { remove() }
}
