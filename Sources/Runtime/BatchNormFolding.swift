// Folding an inference BatchNormalization into the convolution before it: the one routine the
// runtime's inference plan and the exporter's `--fold-bn` both use.

/// `BN(conv(x, W) + b)` with running statistics is `conv(x, W') + b'` where, per output channel
/// c, `s = gamma / sqrt(var + eps)`, `W'[c] = s * W[c]` and `b' = s * (b - mean) + beta`. The
/// products are formed in Double and rounded to Float once, so the folded convolution differs
/// from Conv followed by BatchNormalization only by float rounding.
public enum BatchNormFold {
    /// Scales `weight` (`[M, ...]`, M = `gamma.count` filters) in place and returns the folded
    /// bias `[M]`. `bias` is the convolution's own bias (nil: none). Every per-channel array has
    /// M entries and `weight.count` is a multiple of M (the caller checks both).
    public static func fold(weight: UnsafeMutableBufferPointer<Float>, bias: [Float]?, gamma: [Float], beta: [Float],
                            mean: [Float], variance: [Float], epsilon: Double) -> [Float] {
        let filters = gamma.count
        precondition([beta.count, mean.count, variance.count].allSatisfy { $0 == filters } && (bias?.count ?? filters) == filters
                     && filters > 0 && weight.count % filters == 0, "BatchNormFold: per-channel sizes disagree")
        let perFilter = weight.count / filters
        var folded = [Float](repeating: 0, count: filters)
        for c in 0..<filters {
            let scale = Double(gamma[c]) / (Double(variance[c]) + epsilon).squareRoot()
            for k in (c * perFilter)..<((c + 1) * perFilter) { weight[k] = Float(Double(weight[k]) * scale) }
            folded[c] = Float((Double(bias?[c] ?? 0) - Double(mean[c])) * scale + Double(beta[c]))
        }
        return folded
    }

    /// The same on an array of weights.
    public static func fold(weight: inout [Float], bias: [Float]?, gamma: [Float], beta: [Float],
                            mean: [Float], variance: [Float], epsilon: Double) -> [Float] {
        weight.withUnsafeMutableBufferPointer {
            fold(weight: $0, bias: bias, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon)
        }
    }
}
