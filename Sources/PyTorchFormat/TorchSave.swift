// Writes torch.save's zip format: a protocol-2 pickle naming only what torch.load(weights_only=True) allows, and one uncompressed entry per storage.

import Foundation
import ONNXIR
import ZIPFoundation

/// A value to save: the containers and scalars a checkpoint holds, and tensors.
public indirect enum TorchSaveValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([TorchSaveValue])
    case tuple([TorchSaveValue])
    /// A plain dict with keys of any savable kind (an optimizer's state is keyed by int).
    case dict([(TorchSaveValue, TorchSaveValue)])
    /// `collections.OrderedDict` (a state_dict).
    case orderedDict([(String, TorchSaveValue)])
    /// A contiguous CPU tensor with its own storage.
    case tensor(TensorData)
}

public enum TorchSave {
    /// The folder name inside the archive (torch uses the file's stem; any name loads).
    public static let archiveName = "archive"

    /// The pickle and the storages (by key, in order) of `value`.
    public static func pickle(_ value: TorchSaveValue) throws -> (pickle: [UInt8], storages: [(key: String, bytes: [UInt8])]) {
        var writer = PickleWriter()
        try writer.write(value)
        writer.out.append(UInt8(ascii: "."))  // STOP
        return (writer.out, writer.storages)
    }

    /// Writes `value` as `torch.save` does (format version 3, little-endian, STORED entries),
    /// atomically: a temporary file in the same folder, then a rename.
    public static func write(_ value: TorchSaveValue, to path: String) throws {
        let (pickle, storages) = try pickle(value)
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: temporary)
        do {
            let archive = try Archive(url: temporary, accessMode: .create)
            func add(_ name: String, _ bytes: [UInt8]) throws {
                try archive.addEntry(with: archiveName + "/" + name, type: .file, uncompressedSize: Int64(bytes.count),
                                     modificationDate: Date(timeIntervalSince1970: 315_532_800),
                                     compressionMethod: .none) { position, size in
                    Data(bytes[Int(position)..<(Int(position) + size)])
                }
            }
            try add("data.pkl", pickle)
            try add("byteorder", Array("little".utf8))
            for s in storages { try add("data/" + s.key, s.bytes) }
            try add("version", Array("3\n".utf8))
            try add(".data/version", Array("3\n".utf8))
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw PyTorchFormatError(file: path, reason: "cannot write (\(error))")
        }
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(at: temporary, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw PyTorchFormatError(file: path, reason: "cannot write (\(error))")
        }
    }
}

/// Protocol-2 opcodes for the values above, no memo (torch.load needs none).
struct PickleWriter {
    var out: [UInt8] = [0x80, 0x02]  // PROTO 2
    var storages: [(key: String, bytes: [UInt8])] = []

    mutating func op(_ c: Character) { out.append(c.asciiValue!) }

    mutating func global(_ module: String, _ name: String) {
        op("c")
        out += Array((module + "\n" + name + "\n").utf8)
    }

    mutating func string(_ s: String) {
        let b = Array(s.utf8)
        op("X")
        out += le(UInt64(b.count), 4)
        out += b
    }

    mutating func int(_ i: Int) {
        if i >= 0, i < 256 {
            op("K"); out.append(UInt8(i))
        } else if i >= 0, i < 65536 {
            op("M"); out += le(UInt64(i), 2)
        } else if i >= Int(Int32.min), i <= Int(Int32.max) {
            op("J"); out += le(UInt64(UInt32(bitPattern: Int32(i))), 4)
        } else {
            out.append(0x8a); out.append(8)  // LONG1 of 8 bytes
            out += le(UInt64(bitPattern: Int64(i)), 8)
        }
    }

    func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    mutating func tuple(_ items: [TorchSaveValue]) throws {
        op("(")
        for item in items { try write(item) }
        op("t")
    }

    mutating func write(_ value: TorchSaveValue) throws {
        switch value {
        case .none: op("N")
        case .bool(let b): out.append(b ? 0x88 : 0x89)
        case .int(let i): int(i)
        case .float(let d):
            op("G"); out += le(d.bitPattern, 8).reversed()  // big-endian
        case .string(let s): string(s)
        case .tuple(let items): try tuple(items)
        case .list(let items):
            op("]")
            if !items.isEmpty {
                op("(")
                for item in items { try write(item) }
                op("e")
            }
        case .dict(let entries):
            op("}")
            if !entries.isEmpty {
                op("(")
                for (k, v) in entries { try write(k); try write(v) }
                op("u")
            }
        case .orderedDict(let entries):
            global("collections", "OrderedDict")
            op(")"); op("R")
            if !entries.isEmpty {
                op("(")
                for (k, v) in entries { string(k); try write(v) }
                op("u")
            }
        case .tensor(let t):
            guard let dtype = TorchDType(t.elementType) else {
                throw PyTorchFormatError(file: "<writing>", reason: "tensor '\(t.name)' has type \(t.elementType), which a torch storage cannot hold")
            }
            guard let count = t.elementCount, count * dtype.elementSize == t.bytes.count else {
                throw PyTorchFormatError(file: "<writing>", reason: "tensor '\(t.name)': \(t.bytes.count) bytes do not hold \(t.dims)")
            }
            let key = String(storages.count)
            storages.append((key, t.bytes))
            global("torch._utils", "_rebuild_tensor_v2")
            op("(")
            // persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel)
            op("("); string("storage"); global("torch", dtype.rawValue); string(key); string("cpu"); int(count); op("t")
            op("Q")
            int(0)
            try tuple(t.dims.map { .int($0) })
            try tuple(TorchTensor.contiguousStrides(t.dims).map { .int($0) })
            out.append(0x89)  // requires_grad False
            global("collections", "OrderedDict"); op(")"); op("R")  // backward hooks
            op("t")
            op("R")
        }
    }
}
