// The seeded random number generator behind weight initialisation and training: small, fast, serialisable.

/// xoshiro256** (Blackman & Vigna) seeded through SplitMix64. Its whole state is four words,
/// so a checkpoint can store it and a resumed run draws exactly the numbers the uninterrupted
/// run would have drawn. Gaussian samples use Box-Muller without caching the second value,
/// for the same reason: nothing hides outside `state`.
public struct Xoshiro256: RandomNumberGenerator, Equatable, Sendable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = SplitMix64(seed: seed)
        state = (s.next(), s.next(), s.next(), s.next())
    }

    /// Restores a generator from `stateWords` (as saved in a checkpoint). An all-zero state
    /// would only ever produce zeros, so it is refused.
    public init?(stateWords: [UInt64]) {
        guard stateWords.count == 4, stateWords.contains(where: { $0 != 0 }) else { return nil }
        state = (stateWords[0], stateWords[1], stateWords[2], stateWords[3])
    }

    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public static func == (a: Xoshiro256, b: Xoshiro256) -> Bool { a.stateWords == b.stateWords }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = Self.rotl(state.3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * nextUnitDouble() }

    /// A standard normal sample (Box-Muller; `1 - u` keeps the logarithm finite).
    public mutating func normal() -> Double {
        let u1 = 1.0 - nextUnitDouble()
        let u2 = nextUnitDouble()
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// An independent generator for a sub-task (data order, augmentation, ...), derived from
    /// this one's next output so that the parent's stream stays reproducible.
    public mutating func fork() -> Xoshiro256 { Xoshiro256(seed: next()) }
}

// Foundation-free math so this file does not pull Foundation into every user.
#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
#endif
