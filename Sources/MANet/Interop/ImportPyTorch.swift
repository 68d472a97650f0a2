// Finds MA-Net's state_dict (and the authors' training state) in a torch.save file read by PyTorchFormat.

import Foundation
import ONNXIR
import PyTorchFormat

/// A `.pth` / `.pth.tar` as the authors' scripts write it: a bare state_dict, or a dict holding
/// one under `state_dict`, `model`, `model_state_dict` or `net`, beside anything else (epoch,
/// optimizer, a script's own objects, which stay opaque and are never run).
enum PyTorchCheckpointReader {
    static let containerKeys = ["state_dict", "model", "model_state_dict", "net"]

    /// The state_dict dict of `file` and the key it sits under (nil at the top level).
    static func stateDict(of file: TorchFile) throws -> (dict: PickleDict, under: String?) {
        func holdsTensors(_ d: PickleDict) -> Bool {
            !d.entries.isEmpty && d.entries.contains { $0.value.tensor != nil }
                && d.entries.allSatisfy { $0.key.string != nil }
        }
        if let root = file.root.dict {
            if holdsTensors(root), !containerKeys.contains(where: { root[$0]?.dict != nil }) { return (root, nil) }
            for key in containerKeys {
                if let d = root[key]?.dict, holdsTensors(d) { return (d, key) }
            }
        }
        var holds: String
        if let root = file.root.dict {
            let keys = root.entries.map { $0.key.string.map { "'\($0)'" } ?? $0.key.summary }
            holds = "a dict with keys " + (keys.isEmpty ? "(none)" : keys.prefix(20).joined(separator: ", "))
            for key in containerKeys { if let v = root[key] { holds += "; '\(key)' is \(v.summary)" } }
        } else {
            holds = file.root.summary
        }
        let globals = file.globalsNamed.isEmpty ? "none" : file.globalsNamed.prefix(20).joined(separator: ", ")
        throw ImportError.notMANet(file: file.file, reason:
            "no state_dict found (looked at the top level and under \(containerKeys.joined(separator: ", "))): "
            + "the file holds \(holds); globals it names (none was run): \(globals)")
    }

    /// The state_dict's tensors by key, in file order, each read (views copied out exactly) when
    /// it is loaded.
    static func tensors(of dict: PickleDict, in file: TorchFile) -> [(String, SourceTensor)] {
        var out: [(String, SourceTensor)] = []
        for (key, value) in dict.entries {
            guard let name = key.string, let tensor = value.tensor else { continue }
            out.append((name, SourceTensor(elementType: tensor.storage.dtype.elementType, dims: tensor.shape) {
                do {
                    return convert(try file.tensorData(tensor, name: name))
                } catch let error as PyTorchFormatError {
                    throw ImportError.unreadable(file: file.file, reason: error.reason)
                }
            }))
        }
        return out
    }

    /// Half, bfloat16 and double parameters become float32, MA-Net's type; integers (the BN
    /// counters) stay as they are.
    static func convert(_ t: TensorData) -> TensorData {
        let count = t.bytes.count
        var floats: [Float]
        switch t.elementType {
        case .float16:
            floats = t.bytes.withUnsafeBytes { raw in
                (0..<(count / 2)).map { Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
            }
        case .bfloat16:
            floats = t.bytes.withUnsafeBytes { raw in
                (0..<(count / 2)).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
            }
        case .double:
            floats = t.bytes.withUnsafeBytes { raw in
                (0..<(count / 8)).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
            }
        default:
            return t
        }
        return TensorData(name: t.name, dims: t.dims, floats: floats)
    }

    static func limits(maxBytes: Int?) -> PyTorchReadLimits { PyTorchReadLimits(maxBytes: maxBytes) }

    static func open(path: String, maxBytes: Int?) throws -> TorchFile {
        do {
            return try TorchFile(path: path, limits: limits(maxBytes: maxBytes))
        } catch let error as PyTorchFormatError {
            throw ImportError.unreadable(file: path, reason: "not a readable torch.save file: \(error.reason)")
        }
    }

    /// The source state_dict of a `.pth` for `StateDictMatcher`, and a note on where it was found.
    static func read(path: String, maxBytes: Int?) throws -> (SourceStateDict, [String], TorchFile, PickleDict) {
        let file = try open(path: path, maxBytes: maxBytes)
        let (dict, under) = try stateDict(of: file)
        let tensors = Self.tensors(of: dict, in: file)
        var notes = ["read the \(file.format == .zip ? "zip" : "legacy (pre-1.6)") torch.save format; state_dict "
                     + (under.map { "under '\($0)'" } ?? "at the top level")]
        let locations = Set(dict.entries.compactMap { $0.value.tensor?.storage.location }).subtracting(["cpu"])
        if !locations.isEmpty { notes.append("storages tagged \(locations.sorted().joined(separator: ", ")) were read into memory (no device needed)") }
        let opaque = file.globalsNamed.filter { !PyTorchCheckpointReader.knownGlobals.contains($0) }
        if !opaque.isEmpty {
            notes.append("the file names other objects, kept opaque and never run: " + opaque.prefix(10).joined(separator: ", ")
                         + (opaque.count > 10 ? ", ..." : ""))
        }
        return (SourceStateDict(file: path, entries: tensors, carriesBatchCounters: true), notes, file, dict)
    }

    static let knownGlobals: Set<String> = Set(
        ["torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
         "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2", "collections.OrderedDict",
         "torch.UntypedStorage"] + TorchDType.allCases.map { "torch." + $0.rawValue })
}
