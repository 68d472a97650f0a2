// Reading a file where a manet checkpoint is expected: an ONNX model or a safetensors state_dict
// there is named as what it is, with the command that turns it into a checkpoint.

import Foundation
import MANet
import ONNXFormat

enum CheckpointInput {
    /// Reads the manet checkpoint at `path` (`what` names the argument in messages). Another model
    /// format is refused with a hint naming `manet import` (and `alternative`, when the command
    /// has an option that takes that format directly).
    static func read(_ path: String, option what: String, alternative: String? = nil) throws -> TrainingCheckpoint {
        do {
            return try TrainingCheckpoint.read(path: path)
        } catch {
            guard let kind = otherModelKind(path) else { throw error }
            var hint = "`manet import \(shellQuoted(path)) -o ckpt.pb` makes a checkpoint of it"
            if let alternative { hint += "; " + alternative }
            throw CLIError("\(what.isEmpty ? path : what + " " + path): this is \(kind), not a manet checkpoint", hint: hint)
        }
    }

    /// "an ONNX model" / "a safetensors state_dict" / "a torch.save file" when `path` is one,
    /// nil otherwise.
    static func otherModelKind(_ path: String) -> String? {
        switch try? ModelImporter.format(ofFile: path) {
        case .safetensors?: return "a safetensors state_dict"
        case .pth?: return "a torch.save file"
        default: break
        }
        if path.lowercased().hasSuffix(".onnx") { return "an ONNX model" }
        // No telling extension: an ONNX file parses as a ModelProto with a graph.
        if let model = try? ONNXFile.load(path: path, maxMemory: 1 << 20), !model.graph.nodes.isEmpty { return "an ONNX model" }
        return nil
    }
}

/// `s` quoted for a POSIX shell when it needs to be.
func shellQuoted(_ s: String) -> String {
    let plain = s.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
    return plain && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
