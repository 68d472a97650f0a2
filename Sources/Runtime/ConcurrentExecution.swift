// Inference with independent steps running at the same time (MA-Net's four patch branches, and the
// two cascades of each multi-scale block): a small dependency-driven scheduler over the plan, used
// by `Executor.execute` when the options include `.concurrentBranches`.
//
// Only twins run side by side: steps with the same operator, attributes and input shapes in
// branches that do not depend on each other (patch k's conv2 and patch k+1's), each on one
// thread. Twins cost the same, so neither core waits for the other, and a twin pair is one
// wake-up instead of a fork and a join inside every kernel of both. Every other step runs alone
// with all the threads. (Letting any independent steps share the cores measured faster only on
// a loaded machine: idle, a long step on one thread kept the other core waiting.)

import Foundation
import ONNXIR

extension Plan {
    /// Whether some step has a twin (`twins`): else the concurrent scheduler would run one step
    /// at a time, as the sequential loop does.
    var hasTwins: Bool { twins.contains { !$0.isEmpty } }

    static let maximumStepsForTwins = 4096

    /// Per step, a number shared by the steps that compute the same thing on different data as
    /// far as the plan tells without shapes: operator, domain, attributes, absorbed nodes, a
    /// fused convolution's weight shape and epilogue, and which inputs are computed by steps.
    func stepSignatures() -> [Int] {
        var producer = Set<Int>()
        for step in steps { for case let s? in step.outputs { producer.insert(s) } }
        var ids: [String: Int] = [:]
        return steps.map { step in
            var key = "\(step.node.domain)\u{1}\(step.node.opType)\u{1}\(step.node.attributes)\u{1}"
            key += step.absorbed.map(\.opType).joined(separator: ",")
            if let fused = step.op as? FusedConv { key += "\u{1}\(fused.weightShape) \(fused.relu) \(fused.bias != nil)" }
            key += "\u{1}" + step.inputs.map { $0.map { producer.contains($0) ? "a" : "c" } ?? "-" }.joined()
            if let id = ids[key] { return id }
            ids[key] = ids.count
            return ids.count - 1
        }
    }

    /// Per step, its candidate twins: the other steps with the same signature
    /// (`stepSignatures`) that neither depend on it nor it on them. A run checks the input
    /// shapes too (`ConcurrentRun.hasTwin`). None in a plan of more than
    /// `maximumStepsForTwins` steps (the search is quadratic in the steps of one kind).
    func stepTwins() -> [[Int]] {
        guard steps.count <= Self.maximumStepsForTwins else { return steps.map { _ in [] } }
        let signatures = stepSignatures()
        var producer = [Int: Int]()
        for (i, step) in steps.enumerated() { for case let s? in step.outputs { producer[s] = i } }
        // ancestors[i]: bit set of the steps i depends on (the steps are in topological order).
        let words = (steps.count + 63) / 64
        var ancestors = [[UInt64]](repeating: [UInt64](repeating: 0, count: words), count: steps.count)
        for (i, step) in steps.enumerated() {
            for case let s? in step.inputs {
                guard let p = producer[s] else { continue }
                for w in 0..<words { ancestors[i][w] |= ancestors[p][w] }
                ancestors[i][p / 64] |= 1 << UInt64(p % 64)
            }
        }
        var bySignature: [Int: [Int]] = [:]
        for (i, signature) in signatures.enumerated() { bySignature[signature, default: []].append(i) }
        return steps.indices.map { i in
            bySignature[signatures[i]]!.filter { j in
                j != i && ancestors[i][j / 64] & (1 << UInt64(j % 64)) == 0 && ancestors[j][i / 64] & (1 << UInt64(i % 64)) == 0
            }
        }
    }
}

/// The shared state of one concurrent run, guarded by `condition`.
private final class ConcurrentRun: @unchecked Sendable {
    let plan: Plan
    let context: ExecutionContext
    var values: [Tensor?]
    var producer: [Int: Int] = [:]
    var pending: [Int]
    var dependents: [[Int]]
    var readers: [Int]
    var ready: [Int] = []
    /// Steps running on one thread each; `wide` while a step runs alone on all the threads.
    var narrow: [Int] = []
    var wide = false
    var running = 0, finished = 0
    /// Input shapes of each ready or running step (with `plan.twins`: who are twins).
    var shapes: [[[Int]]]
    var done: [Bool]
    var failure: Error?
    let condition = NSCondition()
    /// Gets each step's wall and CPU time when attached (`manet bench --profile`).
    let profile: ExecutionProfile?

    init(plan: Plan, values: [Tensor?], context: ExecutionContext, profile: ExecutionProfile?) {
        self.plan = plan
        self.values = values
        self.context = context
        self.profile = profile
        let steps = plan.steps
        for (i, step) in steps.enumerated() { for case let s? in step.outputs { producer[s] = i } }
        pending = [Int](repeating: 0, count: steps.count)
        dependents = [[Int]](repeating: [], count: steps.count)
        readers = [Int](repeating: 0, count: plan.slotNames.count)
        shapes = [[[Int]]](repeating: [], count: steps.count)
        done = [Bool](repeating: false, count: steps.count)
        for (i, step) in steps.enumerated() {
            let from = Set(step.inputs.compactMap { $0.flatMap { producer[$0] } })
            pending[i] = from.count
            for p in from.sorted() { dependents[p].append(i) }
            for case let s? in step.inputs { readers[s] += 1 }
        }
        // Graph outputs are never dropped (nor initializers and constants: no producer).
        for o in plan.outputs { readers[o.slot] += 1 << 40 }
        for i in steps.indices where pending[i] == 0 { makeReady(i) }
    }

    func makeReady(_ i: Int) {
        shapes[i] = plan.steps[i].inputs.map { $0.flatMap { values[$0]?.shape } ?? [] }
        ready.append(i)
    }

    /// Whether step i has a twin that runs or will run: one of `plan.twins[i]` not finished
    /// yet, with i's input shapes if it is ready or running (a pending one's are not known yet).
    func hasTwin(_ i: Int) -> Bool {
        plan.twins[i].contains { j in !done[j] && (shapes[j].isEmpty || shapes[j] == shapes[i]) }
    }

    /// The next step to start and its threads, or nil to wait: the lowest ready step that may
    /// start now. A step with a twin takes one thread (unless a step runs alone); any other
    /// step runs alone, once nothing else runs.
    func next() -> (step: Int, threads: Int)? {
        if wide { return nil }
        var best: (step: Int, threads: Int)? = nil
        for i in ready where best.map({ i < $0.step }) ?? true {
            if context.threads > 1 && hasTwin(i) {
                best = (i, 1)
            } else if running == 0 {
                best = (i, context.threads)
            }
        }
        return best
    }

    /// One worker: takes startable steps until all are done or one failed.
    func work() {
        let steps = plan.steps
        condition.lock()
        while true {
            var chosen: (step: Int, threads: Int)? = nil
            while failure == nil && finished < steps.count {
                chosen = next()
                if chosen != nil { break }
                condition.wait()
            }
            guard let (i, threads) = chosen, failure == nil else { break }
            ready.removeAll { $0 == i }
            let step = steps[i]
            var stepContext = context
            stepContext.threads = threads
            let alone = threads == context.threads
            if alone { wide = true } else { narrow.append(i) }
            running += 1
            var args = [Tensor?]()
            var error: Error?
            do { args = try plan.arguments(of: step, values) } catch let e { error = e }
            // A twin may start beside it: wake a waiting worker only then (a worker that finishes
            // a step takes the next one itself; while a step runs alone nothing else may start).
            if !alone && next() != nil { condition.signal() }
            condition.unlock()
            var result: ForwardResult?
            // A step on one thread is timed by its thread's CPU clock (others run meanwhile); a
            // step given all the threads runs alone, so the process's clock counts its helpers.
            let started = profile != nil ? (ContinuousClock.now, ExecutionProfile.cpuSeconds(processWide: alone)) : nil
            if error == nil {
                do { result = try step.op.forward(args, stepContext) } catch let e { error = e }
            }
            condition.lock()
            if let profile, let started, error == nil {
                let d = (ContinuousClock.now - started.0).components
                profile.add(step.node.opType, detail: (step.op as? ProfiledOperator)?.profileDetail(args, backward: false, stepContext),
                            seconds: Double(d.seconds) + Double(d.attoseconds) * 1e-18,
                            cpuSeconds: ExecutionProfile.cpuSeconds(processWide: alone) - started.1)
            }
            args = []
            running -= 1
            finished += 1
            done[i] = true
            if alone { wide = false } else { narrow.removeAll { $0 == i } }
            if let error {
                failure = failure ?? error
            } else if let result {
                for (k, slot) in step.outputs.enumerated() {
                    guard let slot else { continue }
                    do { values[slot] = try plan.output(k, slot: slot, of: step, in: result) } catch { failure = failure ?? error }
                }
                for case let s? in step.inputs {
                    readers[s] -= 1
                    if readers[s] == 0 && producer[s] != nil { values[s] = nil }
                }
                for d in dependents[i] {
                    pending[d] -= 1
                    if pending[d] == 0 { makeReady(d) }
                }
            }
            if failure != nil || finished == steps.count { condition.broadcast() }
        }
        condition.unlock()
    }
}

extension Executor {
    /// Runs `plan`'s steps on `context.threads` workers (the calling thread and threads - 1
    /// more), each step once its inputs exist, lowest plan index first: twins side by side on
    /// one thread each, every other step alone on all the threads (`ConcurrentRun.next`). A value is
    /// dropped when its last reader finishes. Results equal the sequential loop's: the kernels
    /// give the same bits for any thread count (GEMMs never split their summed dimension,
    /// parallel loops write disjoint outputs); only the order of independent steps changes.
    func runConcurrently(_ plan: Plan, values: inout [Tensor?], context: ExecutionContext) throws {
        let run = ConcurrentRun(plan: plan, values: values, context: context, profile: profile)
        values = []
        let done = DispatchSemaphore(value: 0)
        let helpers = max(0, min(context.threads, plan.steps.count) - 1)
        for _ in 0..<helpers {
            let t = Thread { run.work(); done.signal() }
            t.stackSize = 8 << 20
            t.start()
        }
        run.work()
        for _ in 0..<helpers { done.wait() }
        values = run.values
        if let failure = run.failure { throw failure }
    }
}
