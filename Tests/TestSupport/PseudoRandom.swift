// Fixed pseudo-random test data shared by the test targets.

/// Deterministic pseudo-random floats in [-1, 1) (a fixed LCG, so expected values stay put).
public func pseudoRandom(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Double(state >> 40) / Double(1 << 24)) * 2 - 1
    }
}

/// `pseudoRandom` values rounded to quarters (many ties), with signed zeros, infinities and NaN
/// sprinkled in: inputs for operators whose edge cases must match bit for bit.
public func specialValues(_ count: Int, seed: UInt64) -> [Float] {
    var v = pseudoRandom(count, seed: seed).map { ($0 * 4).rounded() / 4 }
    for i in stride(from: 0, to: count, by: 7) { v[i] = i % 2 == 0 ? 0 : -0.0 }
    for i in stride(from: 3, to: count, by: 53) { v[i] = -.infinity }
    for i in stride(from: 5, to: count, by: 97) { v[i] = .nan }
    for i in stride(from: 11, to: count, by: 89) { v[i] = .infinity }
    return v
}
