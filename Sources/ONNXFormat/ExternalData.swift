// Reads tensors stored in external-data files, refusing any location outside the model's folder.

import Foundation
import ONNXIR

#if canImport(Glibc)
import Glibc
#endif

/// Resolves `location` / `offset` / `length` entries against one model folder. A class because it
/// keeps the data files open across tensors and records every reference it served.
final class ExternalDataReader {
    let modelFile: String
    /// The model's folder with symlinks resolved: every data file must resolve to a path inside it.
    let realFolder: String
    private var openFiles: [String: (fd: Int32, size: Int)] = [:]
    private(set) var references: [ExternalDataReference] = []

    init(modelFile: String, folder: String) throws {
        self.modelFile = modelFile
        guard let real = ExternalDataReader.realPath(folder) else {
            throw ONNXFormatError.unreadable(file: modelFile, reason: "cannot resolve the model's folder '\(folder)'")
        }
        self.realFolder = real
    }

    deinit { openFiles.values.forEach { _ = close($0.fd) } }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The bytes of one external tensor, checked against its dims.
    func read(tensor: String, elementType: ElementType, dims: [Int], entries: [(String, String)]) throws -> [UInt8] {
        var location: String?
        var offset = 0
        var length: Int?
        var checksum: String?
        for (key, value) in entries {
            switch key {
            case "location": location = value
            case "offset", "length":
                guard let n = Int(value), n >= 0 else {
                    throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location ?? "",
                                                       reason: "\(key) '\(value)' is not a non-negative integer")
                }
                if key == "offset" { offset = n } else { length = n }
            case "checksum": checksum = value
            default: break  // ONNX allows extra keys; they carry nothing we need
            }
        }
        guard let location, !location.isEmpty else {
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: "", reason: "no 'location' entry")
        }
        guard elementType != .string, let expected = ShapeMath.byteCount(dims, elementType) else {
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location,
                                               reason: elementType == .string ? "string tensors cannot be stored externally"
                                                   : "the byte size of dims \(dims) overflows")
        }
        if let length, length != expected {
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location,
                reason: "length \(length) disagrees with dims \(dims) of \(elementType), which need \(expected) bytes")
        }
        let (fd, fileSize) = try open(location, tensor: tensor)
        let (end, overflow) = offset.addingReportingOverflow(expected)
        guard !overflow, end <= fileSize else {
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location,
                reason: "bytes \(offset)..<\(offset &+ expected) lie past the end of the \(fileSize)-byte file")
        }
        var bytes = [UInt8](repeating: 0, count: expected)
        var done = 0
        while done < expected {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, expected - done, off_t(offset + done)) }
            if n <= 0 {
                throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location,
                    reason: n == 0 ? "unexpected end of file" : "read failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        references.append(ExternalDataReference(tensor: tensor, location: location, offset: offset,
                                                length: expected, checksum: checksum))
        return bytes
    }

    /// Opens `location` after checking it stays inside the model's folder.
    private func open(_ location: String, tensor: String) throws -> (Int32, Int) {
        if let cached = openFiles[location] { return cached }
        func refuse(_ reason: String) -> ONNXFormatError {
            .unsafeLocation(file: modelFile, tensor: tensor, location: location, reason: reason)
        }
        if location.hasPrefix("/") || location.hasPrefix("\\") || location.dropFirst().hasPrefix(":") {
            throw refuse("absolute paths are not allowed; a location is relative to the model's folder")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        if components.contains("..") {
            throw refuse("'..' components are not allowed")
        }
        let path = realFolder + "/" + location
        guard let real = ExternalDataReader.realPath(path) else {
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location,
                reason: "cannot open '\(path)': \(String(cString: strerror(errno)))")
        }
        guard real.hasPrefix(realFolder.hasSuffix("/") ? realFolder : realFolder + "/") else {
            throw refuse("it resolves (through symlinks) to '\(real)', outside the model's folder '\(realFolder)'")
        }
        let fd = Glibc.open(real, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location,
                reason: "cannot open '\(real)': \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            _ = close(fd)
            throw ONNXFormatError.externalData(file: modelFile, tensor: tensor, location: location, reason: "not a regular file")
        }
        openFiles[location] = (fd, Int(info.st_size))
        return (fd, Int(info.st_size))
    }
}
