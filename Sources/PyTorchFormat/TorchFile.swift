// Reads torch.save files: the zip archive (PyTorch >= 1.6) and the legacy stream, as a pickle tree whose tensors are materialised on demand.

import Foundation
import ONNXIR
import ZIPFoundation

/// A `torch.save` file opened for reading.
///
/// Opening reads and checks everything but the storages' bytes: the archive's entry names, the
/// pickle (as data, see `Unpickler`), every storage the pickle names (present, of a known type,
/// at least as long as its declared element count) and the total of their sizes against
/// `limits.maxBytes`. `tensorData(_:name:)` then copies one tensor out of its storage, checking
/// that the view (offset, shape, strides) lies inside it.
public final class TorchFile {
    public enum Format: String, Sendable { case zip, legacy }

    public let file: String
    public let format: Format
    /// The unpickled object (`torch.load`'s result, with nothing executed).
    public let root: PickleValue
    /// Every global the pickle names, `module.name`, in first-seen order.
    public let globalsNamed: [String]

    private let limits: PyTorchReadLimits
    // zip: the archive and its storage entries by key
    private var archive: Archive?
    private var entries: [String: Entry] = [:]
    private var prefix = ""
    // legacy: the stream and each storage's byte range in it
    private var legacySource: LegacySource?
    private var legacyRanges: [String: Range<Int>] = [:]
    // the last storage read from the archive, for tensors sharing it
    private var cachedKey: String?
    private var cachedBytes: [UInt8] = []

    /// The magic number at the head of the legacy stream (`torch.serialization.MAGIC_NUMBER`).
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
    static let legacyProtocol = 1001

    public convenience init(path: String, limits: PyTorchReadLimits = PyTorchReadLimits()) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PyTorchFormatError(file: path, reason: "cannot open the file")
        }
        let head = [UInt8](handle.readData(ofLength: 4))
        try? handle.close()
        if head.starts(with: [0x50, 0x4b, 0x03, 0x04]) || head.starts(with: [0x50, 0x4b, 0x05, 0x06]) {
            let archive: Archive
            do {
                archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
            } catch {
                throw PyTorchFormatError(file: path, reason: "not a readable zip archive (\(error))")
            }
            try self.init(archive: archive, file: path, limits: limits)
        } else {
            // Read piece by piece: the pickle first, the storages only when a tensor needs them.
            try self.init(legacy: try LegacySource(path: path), file: path, limits: limits)
        }
    }

    /// Reads a file held in memory (either format).
    public convenience init(bytes: [UInt8], file: String = "<memory>", limits: PyTorchReadLimits = PyTorchReadLimits()) throws {
        if bytes.starts(with: [0x50, 0x4b]) {
            let archive: Archive
            do {
                archive = try Archive(data: Data(bytes), accessMode: .read)
            } catch {
                throw PyTorchFormatError(file: file, reason: "not a readable zip archive (\(error))")
            }
            try self.init(archive: archive, file: file, limits: limits)
        } else {
            try self.init(legacy: .memory(bytes), file: file, limits: limits)
        }
    }

    // MARK: - Zip archive

    private init(archive: Archive, file: String, limits: PyTorchReadLimits) throws {
        self.file = file
        self.format = .zip
        self.limits = limits
        self.archive = archive
        func fail(_ reason: String) -> PyTorchFormatError { PyTorchFormatError(file: file, reason: reason) }

        var all: [String: Entry] = [:]
        var pickleEntry: Entry?
        var prefix = ""
        for entry in archive {
            let path = entry.path
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            if path.hasPrefix("/") || parts.contains("..") || path.contains("\\") {
                throw fail("zip entry '\(path)' has a path outside the archive's folder")
            }
            guard entry.type == .file else { continue }
            all[path] = entry
            if parts.count == 2, parts[1] == "data.pkl" {
                guard pickleEntry == nil else { throw fail("two pickles in the archive ('\(pickleEntry!.path)', '\(path)')") }
                pickleEntry = entry
                prefix = String(parts[0])
            }
        }
        guard let pickle = pickleEntry else {
            throw fail("a zip archive without `<name>/data.pkl`: not a torch.save file (entries: "
                       + all.keys.sorted().prefix(8).joined(separator: ", ") + ")")
        }
        for path in all.keys where !path.hasPrefix(prefix + "/") {
            throw fail("zip entry '\(path)' lies outside the archive's folder '\(prefix)/'")
        }
        if let order = all[prefix + "/byteorder"] {
            let text = String(decoding: try Self.extract(archive, order, file: file, maxBytes: 64), as: UTF8.self)
            guard text == "little" else { throw fail("entry '\(order.path)' says '\(text.prefix(20))': only little-endian storages are read") }
        }
        var entries: [String: Entry] = [:]
        for (path, entry) in all where path.hasPrefix(prefix + "/data/") {
            entries[String(path.dropFirst(prefix.count + 6))] = entry
        }
        self.entries = entries
        self.prefix = prefix

        let pickleBytes = try Self.extract(archive, pickle, file: file, maxBytes: limits.maxBytes.map { max($0, 1 << 20) } ?? Int.max)
        var declared: [String: TorchStorage] = [:]
        var unpickler = Unpickler(bytes: pickleBytes, file: file + ": " + pickle.path, limits: limits) { pid in
            let storage = try Self.storage(fromPersistentID: pid, file: file, legacy: false)
            guard let entry = entries[storage.key] else {
                throw PyTorchFormatError(file: file, reason: "storage '\(prefix)/data/\(storage.key)' named by the pickle is not in the archive")
            }
            let (needed, overflow) = storage.elementCount.multipliedReportingOverflow(by: storage.dtype.elementSize)
            guard !overflow, UInt64(needed) <= entry.uncompressedSize else {
                throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' holds \(entry.uncompressedSize) bytes, "
                    + "fewer than the \(storage.elementCount) \(storage.dtype.rawValue) elements the pickle declares")
            }
            declared[storage.key] = storage
            return .storage(storage)
        }
        self.root = try unpickler.load()
        self.globalsNamed = unpickler.globalsNamed
        try Self.checkTotal(declared.values.map { $0.elementCount * $0.dtype.elementSize }, limits: limits, file: file)
    }

    /// The bytes of one entry, refused before allocation when it declares more than `maxBytes`
    /// or (stored uncompressed) more than the archive holds.
    static func extract(_ archive: Archive, _ entry: Entry, file: String, maxBytes: Int) throws -> [UInt8] {
        let size = entry.uncompressedSize
        guard size <= UInt64(maxBytes), size <= UInt64(Int.max / 2) else {
            throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' declares \(size) bytes, more than the limit of \(maxBytes)")
        }
        if !entry.isCompressed, entry.compressedSize != size {
            throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' is stored uncompressed but declares \(entry.compressedSize) stored and \(size) unpacked bytes")
        }
        var out: [UInt8] = []
        if !entry.isCompressed { out.reserveCapacity(Int(size)) }
        do {
            // The CRC is checked below, by `CRC32` (ZIPFoundation's own takes longer than the read).
            _ = try archive.extract(entry, bufferSize: 1 << 20, skipCRC32: true) { chunk in
                guard UInt64(out.count + chunk.count) <= size else {
                    throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' unpacks to more than the \(size) bytes it declares")
                }
                out.append(contentsOf: chunk)
            }
        } catch let error as PyTorchFormatError {
            throw error
        } catch {
            throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' cannot be read (\(error)): the archive is truncated or corrupt")
        }
        guard UInt64(out.count) == size else {
            throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' holds \(out.count) of the \(size) bytes it declares (truncated)")
        }
        let crc = out.withUnsafeBytes { CRC32.checksum($0) }
        guard crc == entry.checksum else {
            throw PyTorchFormatError(file: file, reason: "entry '\(entry.path)' cannot be read (its CRC-32 is \(crc), the archive says \(entry.checksum)): the archive is truncated or corrupt")
        }
        return out
    }

    // MARK: - Legacy stream

    /// The bytes of a legacy stream: in memory, or a file read with `pread` where needed.
    enum LegacySource {
        case memory([UInt8])
        case file(FileHandle, size: Int)

        init(path: String) throws {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw PyTorchFormatError(file: path, reason: "cannot open the file")
            }
            var info = stat()
            guard fstat(handle.fileDescriptor, &info) == 0 else { throw PyTorchFormatError(file: path, reason: "cannot read the file") }
            self = .file(handle, size: Int(info.st_size))
        }

        var size: Int {
            switch self {
            case .memory(let bytes): return bytes.count
            case .file(_, let size): return size
            }
        }

        /// The bytes of `range` (which lies inside `size`).
        func read(_ range: Range<Int>, file: String) throws -> [UInt8] {
            switch self {
            case .memory(let bytes):
                return Array(bytes[range])
            case .file(let handle, _):
                var out = [UInt8](repeating: 0, count: range.count)
                var done = 0
                try out.withUnsafeMutableBytes { buffer in
                    while done < range.count {
                        let n = pread(handle.fileDescriptor, buffer.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else {
                            throw PyTorchFormatError(file: file, reason: n == 0 ? "the file ends before byte \(range.upperBound) (it shrank while being read)"
                                                                                : "cannot read the file")
                        }
                        done += n
                    }
                }
                return out
            }
        }
    }

    /// The header, pickle and storage key list of a legacy stream, parsed from its first bytes.
    private struct LegacyHead {
        var root: PickleValue
        var globalsNamed: [String]
        var declared: [String: TorchStorage]
        var keys: [PickleValue]
        /// Where the first storage's size field starts.
        var end: Int
    }

    private static func legacyHead(_ bytes: [UInt8], file: String, limits: PyTorchReadLimits) throws -> LegacyHead {
        func fail(_ reason: String) -> PyTorchFormatError { PyTorchFormatError(file: file, reason: reason) }
        guard bytes.count >= 2, bytes[0] == 0x80 else {
            if bytes.count > 262, Array(bytes[257..<262]) == Array("ustar".utf8) {
                throw fail("a tar archive: torch.save's pre-1.0 format is not read (load and re-save it with PyTorch)")
            }
            throw fail("neither a zip archive nor a legacy torch.save stream (no pickle at the start)")
        }
        var position = 0
        func next(_ what: String, persistentLoad: @escaping Unpickler.PersistentLoad = { pid in
            throw PyTorchFormatError(file: file, reason: "persistent id \(pid.summary) in the file header")
        }) throws -> PickleValue {
            var u = Unpickler(bytes: bytes, start: position, file: file + ": " + what, limits: limits, persistentLoad: persistentLoad)
            let value = try u.load()
            position = u.position
            return value
        }
        guard case .bigInt(let magic) = try next("magic number"), magic == Self.legacyMagic else {
            throw fail("no torch.save magic number at the start: not a PyTorch file")
        }
        guard let proto = try next("protocol version").int, proto == Self.legacyProtocol else {
            throw fail("legacy protocol version is not \(Self.legacyProtocol)")
        }
        let sysInfo = try next("sys info")
        if let info = sysInfo.dict, case .bool(false)? = info["little_endian"] {
            throw fail("written on a big-endian machine: only little-endian storages are read")
        }
        var declared: [String: TorchStorage] = [:]
        var u = Unpickler(bytes: bytes, start: position, file: file + ": pickle", limits: limits) { pid in
            let storage = try Self.storage(fromPersistentID: pid, file: file, legacy: true)
            if let earlier = declared[storage.key], earlier.dtype != storage.dtype {
                throw PyTorchFormatError(file: file, reason: "storage '\(storage.key)' is declared as both \(earlier.dtype.rawValue) and \(storage.dtype.rawValue)")
            }
            declared[storage.key] = storage
            return .storage(storage)
        }
        let root = try u.load()
        position = u.position
        guard case .list(let keyList) = try next("storage keys") else { throw fail("the storage key list is not a list") }
        return LegacyHead(root: root, globalsNamed: u.globalsNamed, declared: declared, keys: keyList.items, end: position)
    }

    private init(legacy source: LegacySource, file: String, limits: PyTorchReadLimits) throws {
        self.file = file
        self.format = .legacy
        self.limits = limits
        func fail(_ reason: String) -> PyTorchFormatError { PyTorchFormatError(file: file, reason: reason) }
        let size = source.size
        // The pickles come first and are small next to the storages: they are parsed from the
        // file's first MiB, read again four times longer while they do not parse, up to the
        // memory limit (as for the zip format's data.pkl). The storages' declared sizes are then
        // checked against the file and the limit before any of them is read.
        let cap = min(size, limits.maxBytes.map { max($0, 1 << 20) } ?? Int.max)
        var length = min(size, 1 << 20)
        var head: LegacyHead
        while true {
            do {
                head = try Self.legacyHead(try source.read(0..<length, file: file), file: file, limits: limits)
                break
            } catch let error as PyTorchFormatError {
                guard length < cap else {
                    if length < size {
                        throw fail("\(error.reason) (in the first \(length) of its \(size) bytes: a longer pickle exceeds the memory limit)")
                    }
                    throw error
                }
                length = min(cap, length > cap / 4 ? cap : length * 4)
            }
        }
        self.root = head.root
        self.globalsNamed = head.globalsNamed
        let declared = head.declared
        var position = head.end
        for keyValue in head.keys {
            guard let key = keyValue.string else { throw fail("storage key \(keyValue.summary) is not a string") }
            guard let storage = declared[key] else { throw fail("storage '\(key)' is listed but never used by the pickle") }
            guard size - position >= 8 else { throw fail("storage '\(key)': the file ends before its size (truncated)") }
            let sizeField = try source.read(position..<(position + 8), file: file)
            var count: UInt64 = 0
            for i in 0..<8 { count |= UInt64(sizeField[i]) << (8 * UInt64(i)) }
            position += 8
            let (n, overflow) = count.multipliedReportingOverflow(by: UInt64(storage.dtype.elementSize))
            guard !overflow, n <= UInt64(size - position) else {
                throw fail("storage '\(key)' declares \(count) elements, more than the \(size - position) bytes left (truncated)")
            }
            guard count >= UInt64(storage.elementCount) else {
                throw fail("storage '\(key)' holds \(count) elements, fewer than the \(storage.elementCount) the pickle declares")
            }
            legacyRanges[key] = position..<(position + Int(n))
            position += Int(n)
        }
        for key in declared.keys where legacyRanges[key] == nil {
            throw fail("storage '\(key)' named by the pickle is not in the file")
        }
        try Self.checkTotal(declared.values.map { $0.elementCount * $0.dtype.elementSize }, limits: limits, file: file)
        legacySource = source
    }

    // MARK: - Storages and tensors

    static func checkTotal(_ sizes: [Int], limits: PyTorchReadLimits, file: String) throws {
        guard let limit = limits.maxBytes else { return }
        var total = 0
        for s in sizes {
            let (t, overflow) = total.addingReportingOverflow(s)
            total = overflow ? Int.max : t
        }
        if total > limit {
            throw PyTorchFormatError(file: file, reason: "its storages hold \(total) bytes, more than the memory limit of \(limit) bytes")
        }
    }

    /// `('storage', torch.FloatStorage, key, location, numel[, view_metadata])`, as torch's
    /// `persistent_id` writes it. Any other persistent id (a global, a callable) is refused.
    static func storage(fromPersistentID pid: PickleValue, file: String, legacy: Bool) throws -> TorchStorage {
        func fail(_ reason: String) -> PyTorchFormatError { PyTorchFormatError(file: file, reason: "persistent id: " + reason) }
        guard case .tuple(let t) = pid, t.count >= 5, t[0].string == "storage" else {
            throw fail("\(pid.summary) is not a ('storage', type, key, location, size) tuple")
        }
        guard case let .global(module, name) = t[1] else { throw fail("storage type \(t[1].summary) is not a torch storage class") }
        let dtype: TorchDType
        if module == "torch", let d = TorchDType(rawValue: name) {
            dtype = d
        } else if module == "torch", name == "UntypedStorage" {
            dtype = .uint8
        } else {
            throw fail("unknown storage type \(module).\(name)")
        }
        guard let key = t[2].string ?? t[2].int.map(String.init), !key.isEmpty,
              !key.contains("/"), !key.contains("\\"), key != "..", key != "." else {
            throw fail("storage key \(t[2].summary) is not a plain name")
        }
        guard let location = t[3].string else { throw fail("storage location \(t[3].summary) is not a string") }
        guard let count = t[4].int, count >= 0 else { throw fail("storage size \(t[4].summary) is not a count") }
        if legacy, t.count > 5, !(t[5].isNone) {
            throw fail("storage '\(key)' is a view of another storage (pre-1.0 files): not supported")
        }
        return TorchStorage(key: key, dtype: dtype, location: location, elementCount: count)
    }

    private func storageBytes(_ storage: TorchStorage) throws -> [UInt8] {
        if format == .legacy {
            guard let range = legacyRanges[storage.key], let legacySource else {
                throw PyTorchFormatError(file: file, reason: "storage '\(storage.key)' is not in the file")
            }
            if cachedKey == storage.key { return cachedBytes }
            cachedKey = nil
            cachedBytes = []
            cachedBytes = try legacySource.read(range, file: file)
            cachedKey = storage.key
            return cachedBytes
        }
        if cachedKey == storage.key { return cachedBytes }
        guard let archive, let entry = entries[storage.key] else {
            throw PyTorchFormatError(file: file, reason: "storage '\(prefix)/data/\(storage.key)' is not in the archive")
        }
        cachedKey = nil
        cachedBytes = []
        cachedBytes = try Self.extract(archive, entry, file: file, maxBytes: limits.maxBytes ?? Int.max)
        cachedKey = storage.key
        return cachedBytes
    }

    /// Drops the storage kept for the next tensor that shares it.
    public func releaseCache() {
        cachedKey = nil
        cachedBytes = []
    }

    /// The tensor's elements in row-major order, copied out of its storage (any offset and
    /// non-negative strides; two tensors of one storage each get their own copy).
    public func tensorData(_ tensor: TorchTensor, name: String) throws -> TensorData {
        func fail(_ reason: String) -> PyTorchFormatError {
            PyTorchFormatError(file: file, reason: "tensor '\(name)' (storage '\(tensor.storage.key)'): " + reason)
        }
        let shape = tensor.shape, strides = tensor.strides
        guard shape.count == strides.count else { throw fail("\(shape.count) sizes but \(strides.count) strides") }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), tensor.offset >= 0 else {
            throw fail("negative size, stride or offset (\(shape), \(strides), \(tensor.offset))")
        }
        guard let count = ShapeMath.elementCount(shape) else { throw fail("size \(shape) overflows") }
        let elementSize = tensor.storage.dtype.elementSize
        let type = tensor.storage.dtype.elementType
        if count == 0 { return TensorData(name: name, elementType: type, dims: shape) }
        var last = tensor.offset
        for (s, st) in zip(shape, strides) {
            let (m, o1) = (s - 1).multipliedReportingOverflow(by: st)
            let (a, o2) = last.addingReportingOverflow(m)
            guard !o1, !o2 else { throw fail("the view's extent overflows") }
            last = a
        }
        guard last < tensor.storage.elementCount else {
            throw fail("the view reaches element \(last) of a storage of \(tensor.storage.elementCount) elements (the storage is shorter than its tensor)")
        }
        // A view may repeat elements (a stride of 0, as `expand` makes): its copy is refused when
        // it exceeds the memory limit, or both its storage and 1 GiB, before it is allocated.
        let (outBytes, overflow) = count.multipliedReportingOverflow(by: elementSize)
        let storageSize = tensor.storage.elementCount * elementSize
        guard !overflow, outBytes <= (limits.maxBytes ?? Int.max), outBytes <= max(storageSize, 1 << 30) else {
            throw fail("the view of \(shape) would take \(overflow ? "more than Int.max" : String(outBytes)) bytes, "
                       + "more than its storage (\(storageSize) bytes) and the memory limit allow")
        }
        let source = try storageBytes(tensor.storage)
        guard source.count >= tensor.storage.elementCount * elementSize else {
            throw fail("the storage holds \(source.count) bytes, fewer than its \(tensor.storage.elementCount) elements")
        }
        if strides == TorchTensor.contiguousStrides(shape) {
            let begin = tensor.offset * elementSize
            if begin == 0, count * elementSize == source.count {
                return TensorData(name: name, elementType: type, dims: shape, bytes: source)
            }
            return TensorData(name: name, elementType: type, dims: shape, bytes: Array(source[begin..<(begin + count * elementSize)]))
        }
        var out = [UInt8](repeating: 0, count: count * elementSize)
        var index = [Int](repeating: 0, count: shape.count)
        source.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                var element = tensor.offset
                for i in 0..<count {
                    memcpy(dst.baseAddress! + i * elementSize, src.baseAddress! + element * elementSize, elementSize)
                    // Advance the multi-index, last dimension fastest.
                    var d = shape.count - 1
                    while d >= 0 {
                        index[d] += 1
                        element += strides[d]
                        if index[d] < shape[d] { break }
                        element -= strides[d] * shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return TensorData(name: name, elementType: type, dims: shape, bytes: out)
    }
}

extension PickleValue {
    var isNone: Bool { if case .none = self { return true } else { return false } }
}

extension TorchDType {
    public var elementType: ElementType {
        switch self {
        case .float32: return .float
        case .float64: return .double
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .int64: return .int64
        case .int32: return .int32
        case .int16: return .int16
        case .int8: return .int8
        case .uint8: return .uint8
        case .bool: return .bool
        }
    }

    public init?(_ type: ElementType) {
        guard let d = TorchDType.allCases.first(where: { $0.elementType == type }) else { return nil }
        self = d
    }
}
