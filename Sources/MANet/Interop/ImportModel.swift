// The entry point of `manet import` and `manet train --init`: any MA-Net source file -> a trainable checkpoint.

import Foundation
import ONNXFormat
import ONNXIR

/// Turns a MA-Net from a manet checkpoint, an ONNX file (either PyTorch exporter, BatchNorm kept
/// or folded) or a safetensors `state_dict` into a `TrainingCheckpoint`.
public enum ModelImporter {
    public enum SourceFormat: String, Sendable {
        case checkpoint, onnx, safetensors, pth
    }

    /// Decides the format from the bytes first (safetensors' header, then the extension for the
    /// two protobuf formats, which cannot be told apart reliably by content).
    public static func format(ofFile path: String) throws -> SourceFormat {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ImportError.unreadable(file: path, reason: "cannot open the file")
        }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 9))
        // safetensors: a little-endian u64 header length, then the JSON header's `{`.
        if head.count == 9, head[8] == UInt8(ascii: "{") { return .safetensors }
        // torch.save: a zip archive (PyTorch >= 1.6) or a pickle stream (PROTO opcode) before it.
        if head.starts(with: [0x50, 0x4b, 0x03, 0x04]) || head.starts(with: [0x80, 0x02]) { return .pth }
        let lower = path.lowercased()
        if lower.hasSuffix(".pth") || lower.hasSuffix(".pth.tar") || lower.hasSuffix(".pt") { return .pth }
        if lower.hasSuffix(".safetensors") { return .safetensors }
        if lower.hasSuffix(".onnx") { return .onnx }
        if lower.hasSuffix(".pb") || lower.hasSuffix(".ckpt") { return .checkpoint }
        throw ImportError.unreadable(file: path, reason:
            "cannot tell the format: name it .onnx (ONNX model), .safetensors (PyTorch state_dict), .pth / .pth.tar (torch.save) or .pb (manet checkpoint)")
    }

    public static func importModel(path: String, options: ImportOptions = ImportOptions()) throws -> ImportResult {
        try plan(path: path, options: options).materialized()
    }

    /// `importModel` straight into the checkpoint file `output` (written atomically, the same
    /// bytes as `importModel(...).checkpoint.write(to:)`): safetensors and torch.save sources are
    /// read one tensor at a time as the checkpoint is written, so the weights are never whole in
    /// memory. A bad value found while writing (not finite) leaves `output` as it was.
    public static func importModel(path: String, options: ImportOptions = ImportOptions(), writingTo output: String) throws -> ImportSummary {
        try plan(path: path, options: options).write(to: output)
    }

    static func plan(path: String, options: ImportOptions) throws -> ImportPlan {
        var notes: [String] = []
        var source: SourceStateDict
        switch try format(ofFile: path) {
        case .pth:
            let read = try PyTorchCheckpointReader.read(path: path, maxBytes: options.maxBytes)
            source = read.0
            notes += read.1
        case .safetensors:
            let file = try SafetensorsFile(path: path)
            source = SourceStateDict(file: path, entries: file.entries.map { entry in
                (entry.name, SourceTensor(elementType: entry.elementType, dims: entry.dims) { try file.tensor(entry) })
            }, carriesBatchCounters: true)
        case .checkpoint:
            let checkpoint = try TrainingCheckpoint.read(path: path)
            source = SourceStateDict(file: path, tensors: checkpoint.stateDict.map { ($0.name, $0) }, carriesBatchCounters: true)
            source.inputSize = checkpoint.inputSize > 0 ? checkpoint.inputSize : nil
            source.classNames = checkpoint.classNames
            source.beta = checkpoint.beta
        case .onnx:
            let model = try ONNXFile.load(path: path)
            // Key names do not depend on width or class count: a small build lists them.
            let reference = try MANetModel.build(numClasses: 2, width: 4, inputSize: 64, seed: 0)
            var expected = Set(reference.graph.initializers.map(\.name))
            for module in MANetModel.batchNormModules(of: reference) { expected.insert(module + ".num_batches_tracked") }
            source = try ONNXStateDictReader.read(model, file: path, expected: expected,
                                                  convFollowers: ONNXStateDictReader.convFollowers(of: reference))
        }
        if source.normalisingPrefix() {
            notes.append("stripped DataParallel's `module.` prefix from every key")
        }
        var plan = try StateDictMatcher.plan(source, options: options)
        plan.notes = notes + plan.notes
        return plan
    }
}
