// Makes reference data with onnxruntime: seeded random inputs, `tools/parity/ort_run.py`, outputs as .pb.

import Foundation
import ONNXFormat
import ONNXIR

/// SplitMix64: a tiny seeded generator, so generated inputs are the same run to run.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 24 bits, exactly representable as a Float.
    mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

public enum OnnxruntimeReference {
    /// Random inputs for every fed graph input: symbolic or unknown dims take `batch`. Floats
    /// are uniform in [0, 1) (MA-Net's input range), integers in [0, 10), booleans 0/1.
    public static func randomInputs(for inputs: [ValueInfo], batch: Int, seed: UInt64, modelPath: String) throws -> [TensorData] {
        var rng = SplitMix64(state: seed)
        return try inputs.map { input in
            guard case .tensor(let elementType?, let declared?)? = input.type else {
                throw VerifyError(file: modelPath, reason: "graph input '\(input.name)' has no tensor type and shape to generate data from")
            }
            let dims = declared.map { d -> Int in
                if case .fixed(let n) = d { return n }
                return batch
            }
            guard let count = ShapeMath.elementCount(dims), count <= 1 << 28 else {
                throw VerifyError(file: modelPath, reason: "graph input '\(input.name)' of shape \(dims) is too large to generate")
            }
            switch elementType {
            case .float:
                return TensorData(name: input.name, dims: dims, floats: (0..<count).map { _ in rng.unit() })
            case .double:
                var bytes: [UInt8] = []
                bytes.reserveCapacity(count * 8)
                for _ in 0..<count { withUnsafeBytes(of: Double(rng.unit()).bitPattern.littleEndian) { bytes += $0 } }
                return TensorData(name: input.name, elementType: .double, dims: dims, bytes: bytes)
            case .int64:
                return TensorData(name: input.name, dims: dims, int64s: (0..<count).map { _ in Int64(rng.next() % 10) })
            case .int32:
                var bytes: [UInt8] = []
                for _ in 0..<count { withUnsafeBytes(of: Int32(rng.next() % 10).littleEndian) { bytes += $0 } }
                return TensorData(name: input.name, elementType: .int32, dims: dims, bytes: bytes)
            case .bool, .uint8:
                let modulus: UInt64 = elementType == .bool ? 2 : 10
                return TensorData(name: input.name, elementType: elementType, dims: dims,
                                  bytes: (0..<count).map { _ in UInt8(rng.next() % modulus) })
            default:
                throw VerifyError(file: modelPath, reason: "cannot generate random \(elementType) data for graph input '\(input.name)'")
            }
        }
    }

    /// The python to run onnxruntime with: `$MANET_PYTHON`, else `tools/.venv/bin/python` of
    /// the current folder or of the package the `manet` binary was built in.
    public static func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["MANET_PYTHON"], !p.isEmpty { return p }
        if let root = packageRoot(containing: "tools/.venv/bin/python") { return root + "/tools/.venv/bin/python" }
        throw VerifyError(file: "tools/.venv/bin/python", reason: "no python with onnxruntime: set MANET_PYTHON or run `make deps`")
    }

    /// `tools/parity/ort_run.py`, found like the python.
    public static func script() throws -> String {
        if let p = ProcessInfo.processInfo.environment["MANET_ORT_SCRIPT"], !p.isEmpty { return p }
        if let root = packageRoot(containing: "tools/parity/ort_run.py") { return root + "/tools/parity/ort_run.py" }
        throw VerifyError(file: "tools/parity/ort_run.py", reason: "not found from the current folder or the manet binary's package")
    }

    /// The current folder, or the nearest ancestor of the executable's folder, that holds `relative`.
    static func packageRoot(containing relative: String) -> String? {
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

    /// Runs onnxruntime on the inputs in `inputFolder` and writes `output_K.pb` into `outputFolder`;
    /// with `values`, also every intermediate value, from a copy of the model in which each one
    /// is a graph output, as `<ReferenceData.fileStem(name)>.pb` named after the value.
    public static func run(model: String, inputFolder: String, outputFolder: String, values: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python())
        process.arguments = [try script(), model, inputFolder, outputFolder] + (values ? ["--values"] : [])
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw VerifyError(file: process.executableURL!.path, reason: "cannot start: \(error.localizedDescription)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let last = text.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
            throw VerifyError(file: model, reason: "onnxruntime failed: \(last)")
        }
    }

    /// Generated (or given) inputs plus onnxruntime's outputs, as one reference set in `folder`.
    public static func makeSet(model: String, inputs: [TensorData], folder: String, values: Bool = false) throws -> ReferenceSet {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (k, t) in inputs.enumerated() {
            let file = folder + "/input_\(k).pb"
            do {
                try ONNXFile.saveTensor(t, to: file)
            } catch let e as ONNXFormatError {
                throw VerifyError(file: e.file, reason: e.reason)
            }
        }
        try run(model: model, inputFolder: folder, outputFolder: folder, values: values)
        guard let set = try ReferenceData.load(folder).first else {
            throw VerifyError(file: folder, reason: "onnxruntime wrote no outputs")
        }
        return set
    }
}
