// Sibling steps side by side inside the sequential loop (`GraphOptimizations.siblingSteps`): a run
// of consecutive plan steps that do not depend on each other shares the threads, one step per
// thread, for the steps whose kind (`Plan.stepSignatures`) and input shapes repeat in the run.
//
// A plan lists MA-Net's four patches (and a multi-scale block's two cascades) step by step side
// by side, so its runs are those steps: four convolutions of one shape, four GlobalMaxPools, eight
// Gemms of one row... At batch 1 each of those is either a sub-millisecond kernel split over the
// threads (a fork and a join, its serial parts and the split's imbalance for every step) or an
// operator that runs on one thread (the other cores idle). Side by side, a run costs one fork and
// one join, and siblings cost the same, so the threads finish together. Unlike the concurrent
// scheduler (`ConcurrentExecution.swift`) this needs no threads of its own: the run is one call of
// the kernels' worker pool, whose workers keep spinning between the runs and the wide steps.

import Kernels

extension Plan {
    /// Fills `siblingRuns` and `signatures`: from each step, the longest run of following steps
    /// that reads no output of an earlier step of the run (steps in a plan's order, so no step of
    /// the run depends on another through steps outside it), runs of one step not marked.
    mutating func findSiblingRuns() {
        signatures = stepSignatures()
        siblingRuns = [Int](repeating: 0, count: steps.count)
        var start = 0
        while start < steps.count {
            var produced = Set<Int>()
            var end = start
            while end < steps.count && !steps[end].inputs.contains(where: { $0.map(produced.contains) ?? false }) {
                for case let s? in steps[end].outputs { produced.insert(s) }
                end += 1
            }
            if end - start >= 2 { siblingRuns[start] = end }
            start = end
        }
    }
}

extension Executor {
    /// Runs the steps of `run` (mutually independent, `Plan.siblingRuns`): the siblings (a step
    /// whose signature and input shapes another step of the run shares; of a kind with at least
    /// as many steps as threads, a multiple of the threads) over `context.threads` workers, one
    /// step on one thread each, taken in plan order by whichever worker is free; then the others
    /// one at a time with all the threads. Outputs are stored and inputs dropped
    /// once all have run; the first error in plan order is thrown. The same bits as the loop:
    /// every kernel gives the same bits on any thread count, and no step reads another's output.
    func runSiblings(_ run: Range<Int>, plan: Plan, values: inout [Tensor?], stateUpdates: inout [(Int, Tensor)],
                     context: ExecutionContext) throws {
        let members = 0..<run.count
        let args = try run.map { try plan.arguments(of: plan.steps[$0], values) }
        struct Kind: Hashable { let signature: Int, shapes: [[Int]] }
        let kinds = members.map { k in Kind(signature: plan.signatures[run.lowerBound + k], shapes: args[k].map { $0?.shape ?? [] }) }
        var count: [Kind: Int] = [:]
        for kind in kinds { count[kind, default: 0] += 1 }
        // Siblings of one kind cost the same: a kind whose count is not a multiple of the
        // threads would leave one thread running a whole step while the others wait (five
        // 512->512 7x7 convolutions on two threads: one thread does three). Those left over run
        // alone over all the threads instead (the last of the kind in the run); a kind with
        // fewer steps than threads runs side by side all the same.
        var taken: [Kind: Int] = [:]
        let together = members.filter { k in
            let n = count[kinds[k]]!
            guard n >= 2 else { return false }
            taken[kinds[k], default: 0] += 1
            return taken[kinds[k]]! <= (n < context.threads ? n : n - n % context.threads)
        }
        var results = [Result<ForwardResult, Error>?](repeating: nil, count: run.count)
        // Per sibling: wall and thread CPU seconds, when profiling.
        var timings = [(Double, Double)](repeating: (0, 0), count: run.count)
        let profile = self.profile
        if together.count >= 2 {
            var narrow = context
            narrow.threads = 1
            results.withUnsafeMutableBufferPointer { results in
                timings.withUnsafeMutableBufferPointer { timings in
                    parallelForDynamic(together.count, threads: context.threads) { _, t in
                        let k = together[t], step = plan.steps[run.lowerBound + k]
                        let started = profile != nil ? (ContinuousClock.now, ExecutionProfile.cpuSeconds(processWide: false)) : nil
                        results[k] = Result { try step.op.forward(args[k], narrow) }
                        if let started {
                            let d = (ContinuousClock.now - started.0).components
                            timings[k] = (Double(d.seconds) + Double(d.attoseconds) * 1e-18,
                                          ExecutionProfile.cpuSeconds(processWide: false) - started.1)
                        }
                    }
                }
            }
        }
        for k in members where results[k] == nil {
            let step = plan.steps[run.lowerBound + k]
            let started = profile != nil ? (ContinuousClock.now, ExecutionProfile.processCPUSeconds()) : nil
            results[k] = Result { try step.op.forward(args[k], context) }
            if let started {
                let d = (ContinuousClock.now - started.0).components
                timings[k] = (Double(d.seconds) + Double(d.attoseconds) * 1e-18, ExecutionProfile.processCPUSeconds() - started.1)
            }
        }
        for k in members {
            let step = plan.steps[run.lowerBound + k]
            let result = try results[k]!.get()
            if let profile {
                profile.add(step.node.opType, detail: (step.op as? ProfiledOperator)?.profileDetail(args[k], backward: false, context),
                            seconds: timings[k].0, cpuSeconds: timings[k].1)
            }
            for (o, slot) in step.outputs.enumerated() {
                guard let slot else { continue }
                values[slot] = try plan.output(o, slot: slot, of: step, in: result)
            }
            stateUpdates += plan.stateUpdates(of: step, in: result)
        }
        for i in run { for case let s? in plan.steps[i].inputs where plan.lastUse[s] == i { values[s] = nil } }
    }
}
