// Small helpers at the Swift / C boundary: error values, borrowed strings, owned byte buffers.

import _CONNX

/// Consumes a C-layer error: returns its message and frees it, or `nil` when there was none.
func takeMessage(_ error: UnsafeMutablePointer<connx_error>?) -> String? {
    guard let error else { return nil }
    defer { connx_error_free(error) }
    guard let message = error.pointee.message else { return "unknown error in the C layer" }
    return String(cString: message)
}

extension connx_str {
    /// The bytes as a Swift string; ONNX names are UTF-8 by the standard, invalid bytes are replaced.
    var string: String {
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// The exact bytes (for string attributes and string tensors, which need not be UTF-8).
    var bytes: [UInt8] {
        guard let data, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: length))
    }
}

/// Copies of Swift strings handed to the C layer, alive until the arena is released. The C layer
/// copies every string it receives, so an arena only needs to outlive a batch of calls.
final class StringArena {
    private var buffers: [UnsafeMutableRawPointer] = []

    deinit { buffers.forEach { $0.deallocate() } }

    func str(_ s: String) -> connx_str {
        var s = s
        return s.withUTF8 { self.bytes(UnsafeRawBufferPointer($0)) }
    }

    func str(_ b: [UInt8]) -> connx_str {
        b.withUnsafeBytes { self.bytes($0) }
    }

    private func bytes(_ raw: UnsafeRawBufferPointer) -> connx_str {
        guard raw.count > 0 else { return connx_str(data: nil, length: 0) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: raw.count, alignment: 1)
        p.copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        buffers.append(p)
        return connx_str(data: p.assumingMemoryBound(to: CChar.self), length: raw.count)
    }
}

/// Moves a C-layer byte buffer into a Swift array and frees it.
func takeBytes(_ bytes: connx_bytes) -> [UInt8] {
    defer { connx_bytes_free(bytes) }
    guard let data = bytes.data, bytes.length > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: bytes.length))
}
