// Finds and reads reference data: ONNX test-data folders of `.pb` TensorProtos, or `.npy` files.
//
// Accepted layouts, as ONNX's backend tests and PyTorch's exporter tests ship them:
//   DIR/test_data_set_N/{input_K,output_K}.pb   (N = 0, 1, ...; sets sorted by N)
//   DIR/{input_K,output_K}.pb                    (DIR is one set)
//   the same with `.npy` instead of `.pb`
// Files are numbered from 0 without gaps; a gap, or an input with both a `.pb` and a `.npy`,
// is an error naming the file, because guessing would compare the wrong tensors.

import Foundation
import ManetSupport
import ONNXFormat
import ONNXIR

/// One tensor read from a reference file.
public struct ReferenceTensor {
    public var file: String
    /// Named as the TensorProto names it; `.npy` files carry no name (empty).
    public var data: TensorData

    public init(file: String, data: TensorData) {
        self.file = file
        self.data = data
    }
}

/// One test-data set: inputs and (possibly no) expected outputs, in file order.
public struct ReferenceSet {
    public var folder: String
    public var inputs: [ReferenceTensor]
    public var outputs: [ReferenceTensor]

    public init(folder: String, inputs: [ReferenceTensor], outputs: [ReferenceTensor]) {
        self.folder = folder
        self.inputs = inputs
        self.outputs = outputs
    }
}

public enum ReferenceData {
    /// Reads `input_K` / `output_K` tensors from `.pb` or `.npy`.
    public static func loadTensor(_ path: String) throws -> TensorData {
        if path.hasSuffix(".npy") {
            var t = try NPY.read(path: path)
            t.name = ""
            return t
        }
        do {
            return try ONNXFile.loadTensor(path: path)
        } catch let e as ONNXFormatError {
            throw FileError(file: e.file, reason: e.reason)
        }
    }

    /// The sets under `path`: its `test_data_set_N` folders, or `path` itself.
    /// `requireOutputs`: a set without any `output_K` file is an error (verify against a
    /// reference); without it, only inputs are read (inputs for onnxruntime or `manet run`).
    /// `readOutputs` (default: `requireOutputs`): read the `output_K` files that exist even when
    /// none are required (`manet verify --layers`, where outputs are values like the others).
    public static func load(_ path: String, requireOutputs: Bool = true, readOutputs: Bool? = nil) throws -> [ReferenceSet] {
        let readOutputs = readOutputs ?? requireOutputs
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileError(file: path, reason: "no such file or folder")
        }
        guard isDirectory.boolValue else {
            throw FileError(file: path, reason: "is a file; --reference takes a folder of test_data_set_N folders or of input_K/output_K files")
        }
        let entries = try contents(path)
        let setFolders = entries.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("test_data_set_"), let n = Int(name.dropFirst("test_data_set_".count)) else { return nil }
            let full = (path as NSString).appendingPathComponent(name)
            var dir: ObjCBool = false
            return fm.fileExists(atPath: full, isDirectory: &dir) && dir.boolValue ? (n, full) : nil
        }.sorted { $0.0 < $1.0 }
        if !setFolders.isEmpty {
            return try setFolders.map { try loadSet($0.1, requireOutputs: requireOutputs, readOutputs: readOutputs) }
        }
        guard entries.contains(where: { numbered($0)?.kind == "input" }) else {
            throw FileError(file: path, reason: "no test_data_set_N folders and no input_K.pb or input_K.npy files")
        }
        return [try loadSet(path, requireOutputs: requireOutputs, readOutputs: readOutputs)]
    }

    static func contents(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw FileError(file: path, reason: "cannot list the folder")
        }
    }

    /// `input_3.pb` -> ("input", 3, "pb").
    static func numbered(_ name: String) -> (kind: String, index: Int, ext: String)? {
        let ext: String
        if name.hasSuffix(".pb") { ext = "pb" } else if name.hasSuffix(".npy") { ext = "npy" } else { return nil }
        let stem = name.dropLast(ext.count + 1)
        for kind in ["input", "output"] where stem.hasPrefix(kind + "_") {
            let digits = stem.dropFirst(kind.count + 1)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let index = Int(digits) else { return nil }
            return (kind, index, ext)
        }
        return nil
    }

    /// The file name (without extension) under which a set folder holds the value `name` for
    /// `manet verify --layers`: the name with every character outside [A-Za-z0-9._-] (and a
    /// leading '.') replaced by '_', and `value_` before a name that reads as `input_K` or
    /// `output_K`. tools/parity/ort_run.py writes the same.
    public static func fileStem(_ name: String) -> String {
        var stem = String(name.map { c -> Character in
            c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_"
        })
        if stem.hasPrefix(".") { stem = "_" + stem.dropFirst() }
        if numbered(stem + ".pb") != nil { stem = "value_" + stem }
        return stem
    }

    /// Intermediate values in a set folder: every `.pb` or `.npy` file that is not an
    /// `input_K` or `output_K`, keyed by the name a `.pb` carries, else by its file name
    /// without extension (compare `fileStem`). Two files giving the same key are an error.
    public static func loadValues(_ folder: String) throws -> [String: ReferenceTensor] {
        var found: [String: ReferenceTensor] = [:]
        for name in try contents(folder) where numbered(name) == nil && (name.hasSuffix(".pb") || name.hasSuffix(".npy")) {
            let file = (folder as NSString).appendingPathComponent(name)
            let data = try loadTensor(file)
            let stem = String(name.dropLast(name.hasSuffix(".pb") ? 3 : 4))
            let key = data.name.isEmpty ? stem : data.name
            if let other = found[key] {
                throw FileError(file: file, reason: "gives value '\(key)', which \((other.file as NSString).lastPathComponent) already gives; keep one")
            }
            found[key] = ReferenceTensor(file: file, data: data)
        }
        return found
    }

    static func loadSet(_ folder: String, requireOutputs: Bool, readOutputs: Bool) throws -> ReferenceSet {
        var files: [String: [Int: String]] = ["input": [:], "output": [:]]
        for name in try contents(folder) {
            guard let (kind, index, _) = numbered(name) else { continue }
            if let other = files[kind]![index] {
                throw FileError(file: (folder as NSString).appendingPathComponent(name),
                                  reason: "both \(other) and \(name) give \(kind) \(index); keep one")
            }
            files[kind]![index] = name
        }
        func ordered(_ kind: String) throws -> [ReferenceTensor] {
            let byIndex = files[kind]!
            return try (0..<byIndex.count).map { k in
                guard let name = byIndex[k] else {
                    throw FileError(file: folder, reason: "\(kind)_\(k).pb (or .npy) is missing, but \(kind)s up to \(byIndex.keys.max()!) exist")
                }
                let file = (folder as NSString).appendingPathComponent(name)
                return ReferenceTensor(file: file, data: try loadTensor(file))
            }
        }
        let inputs = try ordered("input")
        let outputs = requireOutputs || readOutputs ? try ordered("output") : []
        if requireOutputs && outputs.isEmpty {
            throw FileError(file: folder, reason: "no output_K.pb or output_K.npy files: nothing to compare with")
        }
        return ReferenceSet(folder: folder, inputs: inputs, outputs: outputs)
    }
}
