// Makes reference data with onnxruntime: seeded random inputs, `tools/parity/ort_run.py`, outputs as .pb.

import Foundation
import ManetSupport
import ONNXFormat
import ONNXIR

public enum OnnxruntimeReference {
    /// Random inputs for every fed graph input: symbolic or unknown dims take `batch`. Floats
    /// are uniform in [0, 1) (MA-Net's input range), integers in [0, 10), booleans 0/1.
    public static func randomInputs(for inputs: [ValueInfo], batch: Int, seed: UInt64, modelPath: String) throws -> [TensorData] {
        var rng = SplitMix64(seed: seed)
        return try inputs.map { input in
            guard case .tensor(let elementType?, let declared?)? = input.type else {
                throw FileError(file: modelPath, reason: "graph input '\(input.name)' has no tensor type and shape to generate data from")
            }
            let dims = declared.map { d -> Int in
                if case .fixed(let n) = d { return n }
                return batch
            }
            guard let count = ShapeMath.elementCount(dims), count <= 1 << 28 else {
                throw FileError(file: modelPath, reason: "graph input '\(input.name)' of shape \(dims) is too large to generate")
            }
            switch elementType {
            case .float:
                return TensorData(name: input.name, dims: dims, floats: (0..<count).map { _ in rng.unitFloat() })
            case .double:
                var bytes: [UInt8] = []
                bytes.reserveCapacity(count * 8)
                for _ in 0..<count { withUnsafeBytes(of: Double(rng.unitFloat()).bitPattern.littleEndian) { bytes += $0 } }
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
                throw FileError(file: modelPath, reason: "cannot generate random \(elementType) data for graph input '\(input.name)'")
            }
        }
    }

    /// How to run onnxruntime: a python that has it and `tools/parity/ort_run.py`. The command
    /// line chooses both (see `manet verify --help`); nothing here reads the environment.
    public struct Runner: Sendable {
        public var python: String
        public var script: String
        public init(python: String, script: String) {
            self.python = python
            self.script = script
        }

    }

    /// Runs onnxruntime on the inputs in `inputFolder` and writes `output_K.pb` into `outputFolder`;
    /// with `values`, also every intermediate value, from a copy of the model in which each one
    /// is a graph output, as `<ReferenceData.fileStem(name)>.pb` named after the value.
    public static func run(model: String, inputFolder: String, outputFolder: String, runner: Runner, values: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: runner.python)
        process.arguments = [runner.script, model, inputFolder, outputFolder] + (values ? ["--values"] : [])
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw FileError(file: process.executableURL!.path, reason: "cannot start: \(error.localizedDescription)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let last = text.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
            throw FileError(file: model, reason: "onnxruntime failed: \(last)")
        }
    }

    /// Generated (or given) inputs plus onnxruntime's outputs, as one reference set in `folder`.
    public static func makeSet(model: String, inputs: [TensorData], folder: String, runner: Runner, values: Bool = false) throws -> ReferenceSet {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (k, t) in inputs.enumerated() {
            let file = folder + "/input_\(k).pb"
            do {
                try ONNXFile.saveTensor(t, to: file)
            } catch let e as ONNXFormatError {
                throw FileError(file: e.file, reason: e.reason)
            }
        }
        try run(model: model, inputFolder: folder, outputFolder: folder, runner: runner, values: values)
        guard let set = try ReferenceData.load(folder).first else {
            throw FileError(file: folder, reason: "onnxruntime wrote no outputs")
        }
        return set
    }
}
