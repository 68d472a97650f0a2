// The bodies of the libFuzzer harnesses (`Fuzz/`) and of the crash-corpus replay test
// (`Tests/FuzzRegressionTests`): one function per untrusted-input loader. Each takes arbitrary
// bytes and calls the real loader; a thrown error is the correct outcome for bad bytes, so it is
// swallowed. A crash, trap, hang or leak is a defect in the loader.

import Foundation
import ManetSupport
import ONNXIR
import ONNXFormat
import Runtime
import MANet
import Parity
import PyTorchFormat

public enum FuzzTarget: String, CaseIterable, Sendable {
    case onnx, checkpoint, safetensors, npy, tensor, image, pth

    /// Runs the harness for this target on `bytes`.
    public func run(_ bytes: [UInt8]) {
        switch self {
        case .onnx: FuzzTargets.onnx(bytes)
        case .checkpoint: FuzzTargets.checkpoint(bytes)
        case .safetensors: FuzzTargets.safetensors(bytes)
        case .npy: FuzzTargets.npy(bytes)
        case .tensor: FuzzTargets.tensor(bytes)
        case .image: FuzzTargets.image(bytes)
        case .pth: FuzzTargets.pth(bytes)
        }
    }
}

public enum FuzzTargets {
    /// Image side bound for the image harness: the decoder's own limit (16384) lets a 20-byte
    /// header ask for 768 MiB, which is allowed but makes fuzzing crawl; the check is the same code.
    public static let maxImageDimension = 2048

    /// A private scratch folder per process: external data for models, files for path-only loaders.
    /// It holds `data.bin`, 4 KiB of a fixed pattern, so external-data references have something
    /// real to read.
    /// Removed at exit.
    static let scratch: String = {
        let dir = scratchPath()
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = writeFile(dir + "/data.bin", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        atexit { try? FileManager.default.removeItem(atPath: FuzzTargets.scratchPath()) }
        return dir
    }()

    static func scratchPath() -> String { NSTemporaryDirectory() + "manet-fuzz-\(getpid())" }

    /// Plain open/write/close: no temporary file and no fsync (FileManager's atomic write costs
    /// an fsync per input, which made the tensor target 25 times slower).
    static func writeFile(_ path: String, _ bytes: [UInt8]) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    /// ONNX loading end to end: parse (C layer) and IR conversion, the checker's verdict, ONNX
    /// shape inference, executor preparation (the runtime plan and initializer conversion), then
    /// the runtime's own per-operator shape inference over the graph. Nothing is run.
    public static func onnx(_ bytes: [UInt8]) {
        guard let model = try? ONNXFile.load(bytes: bytes, baseDirectory: scratch) else { return }
        _ = ONNXFile.verdict(model)
        _ = try? ONNXFile.inferShapes(model)
        guard (try? Executor(model: model)) != nil else { return }
        runtimeShapeInference(model)
    }

    /// Propagates `ValueShape`s through the graph in node order with the registered operators,
    /// starting from the declared graph inputs and the initializers (as constants).
    static func runtimeShapeInference(_ model: Model) {
        var known: [String: ValueShape] = [:]
        for data in model.graph.initializers {
            if let t = try? Tensor(data) { known[data.name] = ValueShape(t) }
        }
        for input in model.graph.inputs where known[input.name] == nil {
            guard case .tensor(let type, let shape)? = input.type else { continue }
            let dtype: DType = type == .int64 ? .int64 : .float32
            let dims: [Int?]? = shape.map { $0.map { if case .fixed(let n) = $0 { return n } else { return nil } } }
            known[input.name] = ValueShape(dtype: dtype, dims: dims)
        }
        for node in model.graph.nodes {
            let opset = model.opsetVersion(for: node.domain) ?? 0
            guard let op = try? OperatorRegistry.standard.makeOperator(for: node, opset: opset) else { continue }
            var inputs: [ValueShape?] = []
            var complete = true
            for name in node.inputs {
                if name.isEmpty { inputs.append(nil); continue }
                guard let s = known[name] else { complete = false; break }
                inputs.append(s)
            }
            guard complete, let outputs = try? op.inferShapes(inputs) else { continue }
            for (name, shape) in zip(node.outputs, outputs) where !name.isEmpty { known[name] = shape }
        }
    }

    /// Training-checkpoint decoding (C layer `checkpoint.cpp` + `TrainingCheckpoint`).
    public static func checkpoint(_ bytes: [UInt8]) {
        _ = try? TrainingCheckpoint.decode(bytes)
    }

    /// safetensors reading.
    public static func safetensors(_ bytes: [UInt8]) {
        _ = try? Safetensors.parse(bytes)
    }

    /// torch.save reading (zip archive or legacy stream, the pickle machine), then every tensor
    /// reachable from the root materialised, storages capped at 64 MiB in all.
    /// A zip archive goes through a file, as `manet import` reads it; the legacy stream is read
    /// from memory. ZIPFoundation leaks on both zip routes (the path's C string for every file,
    /// the in-memory archive's buffer for bytes that start like a zip but are none); those leaks
    /// are suppressed by name in `tools/build/lsan.supp`, so any other leak still fails the run.
    public static func pth(_ bytes: [UInt8]) {
        let limits = PyTorchReadLimits(maxBytes: 64 << 20)
        let path = scratch + "/model.pth"
        let loaded: TorchFile?
        if bytes.starts(with: [0x50, 0x4b]) {
            loaded = writeFile(path, bytes) ? try? TorchFile(path: path, limits: limits) : nil
        } else {
            loaded = try? TorchFile(bytes: bytes, limits: limits)
        }
        guard let file = loaded else { return }
        var pending: [(PickleValue, Int)] = [(file.root, 0)]
        var visited = 0
        while let (value, depth) = pending.popLast(), visited < 10_000 {
            visited += 1
            guard depth < 64 else { continue }
            switch value {
            case .tensor(let t): _ = try? file.tensorData(t, name: "t")
            case .dict(let d): pending += d.entries.map { ($0.value, depth + 1) }
            case .list(let l): pending += l.items.map { ($0, depth + 1) }
            case .tuple(let t): pending += t.map { ($0, depth + 1) }
            case .object(let o): pending += [(o.arguments, depth + 1)] + (o.state.map { [($0, depth + 1)] } ?? [])
            default: break
            }
        }
    }

    /// NumPy `.npy` reading.
    public static func npy(_ bytes: [UInt8]) {
        _ = try? NPY.decode(bytes)
    }

    /// TensorProto `.pb` reading: `ONNXFile.loadTensor` takes a path (external data resolves
    /// against the file's folder), so the bytes go to a file in the scratch folder first.
    public static func tensor(_ bytes: [UInt8]) {
        let path = scratch + "/tensor.pb"
        guard writeFile(path, bytes) else { return }
        _ = try? ONNXFile.loadTensor(path: path)
    }

    /// JPEG and PNG decoding (the C codec and its Swift wrapper).
    public static func image(_ bytes: [UInt8]) {
        _ = try? ImageCodec.decode(data: Data(bytes), name: "<fuzz>", maxDimension: maxImageDimension)
    }
}
