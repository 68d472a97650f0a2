// SplitMix64 (Steele, Lea, Flood): the seeding generator behind every seeded stream here.

/// A tiny seeded generator: one word of state, good enough to fill test inputs and to seed
/// `Xoshiro256`. The same seed gives the same numbers on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// SplitMix64's finaliser: a bijective mix of one word.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits, exactly representable as a Float.
    public mutating func unitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Uniform in [0, 1) with 53 bits.
    public mutating func unitDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in `range`.
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + unitDouble() * (range.upperBound - range.lowerBound)
    }
}
