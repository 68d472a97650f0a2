// The only place the toolkit reads environment variables. Libraries take every choice as a
// value; the command line maps these variables (and its flags) onto those values.

import Foundation
import ManetSupport
import Parity

enum Environment {
    private static var variables: [String: String] { ProcessInfo.processInfo.environment }

    /// A variable's value, nil when unset or empty.
    static func value(_ name: String) -> String? {
        guard let v = variables[name], !v.isEmpty else { return nil }
        return v
    }

    /// How `manet verify --against onnxruntime` runs onnxruntime: `$MANET_PYTHON` (a python with
    /// onnxruntime) and `$MANET_ORT_SCRIPT` (`ort_run.py`) when set, else the tools venv and
    /// `tools/parity/ort_run.py` of the current folder or of the package the binary was built in.
    static func onnxruntimeRunner() throws -> OnnxruntimeReference.Runner {
        let root = packageRoot()
        guard let python = value("MANET_PYTHON") ?? root.map({ $0 + "/tools/.venv/bin/python" }) else {
            throw FileError(file: "tools/.venv/bin/python", reason: "no python with onnxruntime: set MANET_PYTHON or run `make deps`")
        }
        guard let script = value("MANET_ORT_SCRIPT") ?? packageRoot(containing: "tools/parity/ort_run.py").map({ $0 + "/tools/parity/ort_run.py" }) else {
            throw FileError(file: "tools/parity/ort_run.py", reason: "not found from the current folder or the manet binary's package")
        }
        return OnnxruntimeReference.Runner(python: python, script: script)
    }

    private static func packageRoot() -> String? { packageRoot(containing: "tools/.venv/bin/python") }

    /// The current folder, or the nearest ancestor of the executable's folder, that holds `relative`.
    private static func packageRoot(containing relative: String) -> String? {
        let fm = FileManager.default
        var candidates = [fm.currentDirectoryPath]
        if let exe = Bundle.main.executablePath {
            var dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0..<6 {
                candidates.append(dir.path)
                dir = dir.deletingLastPathComponent()
            }
        }
        return candidates.first { fm.fileExists(atPath: $0 + "/" + relative) }
    }
}
