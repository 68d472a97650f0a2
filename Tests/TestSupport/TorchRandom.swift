// PyTorch's CPU random numbers regenerated bit for bit, so that fixture inputs that are pure
// torch.rand output need not be committed (the fixture records their SHA-256 to check them).

/// `torch.Generator().manual_seed(seed)` on the CPU: the 32-bit Mersenne Twister MT19937 with its
/// standard seeding (Matsumoto and Nishimura 1998; the generator of C++'s std::mt19937).
public struct TorchCPUGenerator {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7fff_ffff)
            state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_b0df)
        }
        index = 0
    }

    /// One 32-bit draw (the generator's `random()`).
    public mutating func next() -> UInt32 {
        if index == 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// Drops `count` draws (what earlier calls on the same generator used).
    public mutating func skip(_ count: Int) {
        for _ in 0..<count { _ = next() }
    }

    /// `torch.rand(count, generator=...)` in float32: one draw per element, its low 24 bits times 2^-24
    /// (ATen's uniform_real_distribution for float on the CPU, from 0 to 1).
    public mutating func rand(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(next() & 0xff_ffff) * 0x1p-24 }
    }
}
