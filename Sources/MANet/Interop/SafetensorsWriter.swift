// Writes tensors in the safetensors format, the reader's counterpart: header length, JSON header, packed data.

import Foundation
import ManetSupport
import ONNXIR

/// Writes a safetensors file that `safetensors.torch.load_file` reads: tensors packed in the given
/// order, the header a JSON object of `{"dtype", "shape", "data_offsets"}` entries plus a
/// `__metadata__` of strings, padded with spaces to a multiple of 8 bytes so the data area starts
/// aligned (the reference writer does the same).
public enum SafetensorsWriter {
    static let dtypeNames: [ElementType: String] = Dictionary(uniqueKeysWithValues: Safetensors.dtypes.map { ($1, $0) })

    public static func serialize(_ tensors: [TensorData], metadata: [String: String] = [:]) throws -> [UInt8] {
        var seen = Set<String>()
        var entries: [String] = []
        var offset = 0
        for t in tensors {
            guard seen.insert(t.name).inserted else {
                throw SafetensorsError.invalid(file: "<writing>", reason: "two tensors are named '\(t.name)'")
            }
            guard let dtype = dtypeNames[t.elementType] else {
                throw SafetensorsError.invalid(file: "<writing>", reason: "tensor '\(t.name)' has type \(t.elementType), which safetensors cannot hold")
            }
            guard ShapeMath.byteCount(t.dims, t.elementType) == t.bytes.count else {
                throw SafetensorsError.invalid(file: "<writing>", reason: "tensor '\(t.name)': \(t.bytes.count) bytes do not hold \(t.dims)")
            }
            let shape = t.dims.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(t.name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            entries.insert("\"__metadata__\":{\(fields.joined(separator: ","))}", at: 0)
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        let length = UInt64(header.count)
        for i in 0..<8 { out.append(UInt8((length >> (8 * UInt64(i))) & 0xff)) }
        out += header
        for t in tensors { out += t.bytes }
        return out
    }

    /// Writes atomically (`AtomicFile`: a temporary file in the same folder, fsync, rename).
    public static func write(_ tensors: [TensorData], metadata: [String: String] = [:], to path: String) throws {
        let bytes = try serialize(tensors, metadata: metadata)
        do {
            try AtomicFile.write(bytes, to: path)
        } catch let e as FileError {
            throw SafetensorsError.invalid(file: path, reason: e.reason)
        }
    }

    /// A JSON string literal (keys are state_dict names, but any text must stay valid JSON).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
