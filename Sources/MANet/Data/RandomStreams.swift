// Data-side helpers on the project's Xoshiro256: derived streams per (seed, epoch, sample), unbiased integers, a stable shuffle.

import ManetSupport

extension Xoshiro256 {
    /// A generator for one stream of a family, e.g. (seed, epoch, sample index). Each key is
    /// mixed in turn through SplitMix64's finaliser, so (1, 2) and (2, 1) give unrelated streams
    /// and the result depends on the keys alone — not on what any other generator drew.
    public init(seed: UInt64, stream keys: UInt64...) {
        var mixed = seed
        for key in keys {
            mixed = SplitMix64.mix((mixed ^ (key &* 0xD6E8_FEB8_6659_FD93)) &+ 0x9E37_79B9_7F4A_7C15)
        }
        self.init(seed: mixed)
    }

    /// A uniform integer in `range` without modulo bias (Lemire's multiply-and-reject).
    public mutating func nextInt(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound) &- Int64(range.lowerBound)) &+ 1
        if span == 0 { return Int(truncatingIfNeeded: next()) }  // the whole Int range
        var product = next().multipliedFullWidth(by: span)
        if product.low < span {
            let threshold = (0 &- span) % span
            while product.low < threshold { product = next().multipliedFullWidth(by: span) }
        }
        return range.lowerBound &+ Int(truncatingIfNeeded: product.high)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { nextUnitDouble() < p }

    /// Fisher-Yates driven by this generator. Swift's `shuffle(using:)` does not promise to keep
    /// its algorithm across releases; resumable, reproducible training needs one that does.
    public mutating func shuffleInPlace<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(in: 0...i)
            if i != j { array.swapAt(i, j) }
        }
    }
}
