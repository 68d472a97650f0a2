// Per-operator wall time of inference runs and training steps (forward, backward per operator,
// and the trainer's own phases), collected by the executor when asked (`manet bench --profile`).

import Foundation

/// Time spent per operator type (a fused convolution counts as "Conv") and, for Conv, per
/// input shape, summed over the runs made while it is attached to an executor.
public final class ExecutionProfile {
    public struct Entry: Sendable {
        public var calls = 0
        /// Wall time.
        public var seconds = 0.0
        /// Process CPU time (all threads, including BLAS threads waiting for work): less
        /// sensitive than wall time to other jobs on the machine.
        public var cpuSeconds = 0.0
    }
    public private(set) var byOperator: [String: Entry] = [:]
    /// "Conv k3x3 s1 64->64 56x56 (winograd)" style keys, for the convolutions.
    public private(set) var byConvolution: [String: Entry] = [:]

    public init() {}

    func add(_ op: String, detail: String?, seconds: Double, cpuSeconds: Double) {
        func count(_ e: inout Entry) {
            e.calls += 1
            e.seconds += seconds
            e.cpuSeconds += cpuSeconds
        }
        count(&byOperator[op, default: Entry()])
        if let detail { count(&byConvolution[detail, default: Entry()]) }
    }

    /// Runs `body` and adds its wall and process CPU time to `name` (a backward, or a phase of
    /// a training step outside the executor such as the SGD update).
    public func time<T>(_ name: String, detail: String? = nil, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now, cpu = Self.processCPUSeconds()
        let result = try body()
        let d = (ContinuousClock.now - start).components
        add(name, detail: detail, seconds: Double(d.seconds) + Double(d.attoseconds) * 1e-18,
            cpuSeconds: Self.processCPUSeconds() - cpu)
        return result
    }

    /// CPU seconds used by this process so far (all threads).
    static func processCPUSeconds() -> Double { cpuSeconds(processWide: true) }

    /// CPU seconds used so far by this process (all threads), or by the calling thread alone.
    static func cpuSeconds(processWide: Bool) -> Double {
        var t = timespec()
        clock_gettime(processWide ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// A table sorted by time, one line per operator type (then per convolution shape).
    public func report(runs: Int) -> String {
        let total = byOperator.values.reduce(0) { $0 + $1.seconds }
        let totalCPU = byOperator.values.reduce(0) { $0 + $1.cpuSeconds }
        let n = Double(max(1, runs))
        var lines = [String(format: "per-operator time, mean per run over %d runs (total wall %.1f ms, process CPU %.1f ms), sorted by CPU:",
                            runs, total * 1000 / n, totalCPU * 1000 / n)]
        func emit(_ table: [String: Entry]) {
            for (name, e) in table.sorted(by: { $0.value.cpuSeconds > $1.value.cpuSeconds }) {
                lines.append(String(format: "  %-44@ wall %9.2f ms  CPU %9.2f ms %5.1f%%  (%d calls)", name as NSString,
                                    e.seconds * 1000 / n, e.cpuSeconds * 1000 / n, 100 * e.cpuSeconds / max(totalCPU, 1e-12),
                                    e.calls / max(1, runs)))
            }
        }
        emit(byOperator)
        lines.append("convolutions by shape:")
        emit(byConvolution)
        return lines.joined(separator: "\n")
    }
}

/// An operator that names what it computed in more detail for the profile (shapes, path), for
/// its forward or (`backward`) its backward under `context`.
protocol ProfiledOperator {
    func profileDetail(_ inputs: [Tensor?], backward: Bool, _ context: ExecutionContext) -> String
}
