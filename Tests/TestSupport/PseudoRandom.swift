// Fixed pseudo-random test data shared by the test targets.

/// Deterministic pseudo-random floats in [-1, 1) (a fixed LCG, so expected values stay put).
public func pseudoRandom(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Double(state >> 40) / Double(1 << 24)) * 2 - 1
    }
}
