// Allocation helpers for kernels: output arrays filled through a pointer, without zeroing twice.

extension Array where Element == Float {
    /// An array of `count` floats whose every element `fill` must write through the pointer
    /// (outputs that a kernel overwrites completely need no zeroing pass first).
    @inline(__always)
    static func filled(count: Int, _ fill: (UnsafeMutablePointer<Float>) throws -> Void) rethrows -> [Float] {
        try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { try fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    /// `count` zeros, then `accumulate` adds into them through the pointer.
    @inline(__always)
    static func accumulated(count: Int, _ accumulate: (UnsafeMutablePointer<Float>) throws -> Void) rethrows -> [Float] {
        var a = [Float](repeating: 0, count: count)
        try a.withUnsafeMutableBufferPointer { if count > 0 { try accumulate($0.baseAddress!) } }
        return a
    }
}

/// A scratch float buffer reused across the images of one kernel call (im2col columns).
final class ScratchBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(1, count))
    }

    deinit { pointer.deallocate() }
}
