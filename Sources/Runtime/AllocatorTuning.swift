// An opt-in for programs that run large models repeatedly: keep glibc from returning
// activation-sized blocks to the kernel after every run.

#if os(Linux)
/// glibc's `int mallopt(int param, int value)`, which the Glibc module does not export.
@_silgen_name("mallopt") private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
/// From <malloc.h>.
private let mMmapMax: Int32 = -4, mTrimThreshold: Int32 = -1
#endif

/// Process-wide allocator settings. The runtime never changes them itself: this changes the
/// allocator of the whole program, so the program decides (the `manet` command line does).
public enum AllocatorTuning {
    /// Blocks above glibc's mmap threshold (which cannot be raised past 32 MiB; one MA-Net
    /// activation at batch 16 is 50 MiB) are mmapped and unmapped on every run, so each run
    /// page-faults and zeroes its activations afresh. Serving every block from the heap (no
    /// mmap) and never trimming it lets the next run reuse the same pages. Idempotent; does
    /// nothing off glibc.
    public static func keepFreedMemory() {
        #if os(Linux)
        _ = glibcMallopt(mMmapMax, 0)
        _ = glibcMallopt(mTrimThreshold, Int32.max)
        #endif
    }
}
