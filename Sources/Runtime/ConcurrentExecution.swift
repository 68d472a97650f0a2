// Inference with independent steps running at the same time (MA-Net's four patch branches and its
// global branch): a small dependency-driven scheduler over the plan, used by `Executor.execute`
// when the options include `.concurrentBranches` (not by default: since the
// kernels' worker pool, one step at a time over all the threads measured faster).

import Foundation

extension Plan {
    /// Whether some step's outputs feed two or more steps, or two or more steps read only
    /// graph inputs and initializers (a fork: steps that could run at the same time).
    var hasIndependentSteps: Bool {
        var producer = [Int: Int]()
        for (i, step) in steps.enumerated() { for case let s? in step.outputs { producer[s] = i } }
        var consumers = [Int](repeating: 0, count: steps.count)
        var roots = 0
        for step in steps {
            let from = Set(step.inputs.compactMap { $0.flatMap { producer[$0] } })
            if from.isEmpty { roots += 1 }
            for p in from { consumers[p] += 1 }
        }
        return roots > 1 || consumers.contains { $0 > 1 }
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
    var running = 0, finished = 0
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
        for (i, step) in steps.enumerated() {
            let from = Set(step.inputs.compactMap { $0.flatMap { producer[$0] } })
            pending[i] = from.count
            for p in from.sorted() { dependents[p].append(i) }
            for case let s? in step.inputs { readers[s] += 1 }
        }
        // Graph outputs are never dropped (nor initializers and constants: no producer).
        for o in plan.outputs { readers[o.slot] += 1 << 40 }
        ready = steps.indices.filter { pending[$0] == 0 }
    }

    /// One worker: takes ready steps until all are done or one failed.
    func work() {
        let steps = plan.steps
        condition.lock()
        while true {
            while ready.isEmpty && failure == nil && finished < steps.count { condition.wait() }
            if failure != nil || finished == steps.count { break }
            // Lowest index first keeps the order, and the memory held, close to the sequential run.
            let k = ready.indices.min { ready[$0] < ready[$1] }!
            let i = ready.remove(at: k)
            let step = steps[i]
            var stepContext = context
            // Alone: all the threads for the kernel; else one each, the steps share the cores.
            stepContext.threads = ready.isEmpty && running == 0 ? context.threads : 1
            running += 1
            var args = [Tensor?]()
            args.reserveCapacity(step.inputs.count)
            var error: Error?
            for s in step.inputs {
                guard let s else { args.append(nil); continue }
                guard let v = values[s] else { error = RuntimeError.missingValue(plan.slotNames[s]); break }
                args.append(v)
            }
            condition.unlock()
            var result: ForwardResult?
            // A step on one thread is timed by its thread's CPU clock (others run meanwhile); a
            // step given all the threads runs alone, so the process's clock counts its helpers.
            let alone = stepContext.threads > 1
            let started = profile != nil ? (ContinuousClock.now, ExecutionProfile.cpuSeconds(processWide: alone)) : nil
            if error == nil {
                do { result = try step.op.forward(args, stepContext) } catch let e { error = e }
            }
            condition.lock()
            if let profile, let started, error == nil {
                let d = (ContinuousClock.now - started.0).components
                profile.add(step.node.opType, detail: (step.op as? ProfiledOperator)?.profileDetail(args),
                            seconds: Double(d.seconds) + Double(d.attoseconds) * 1e-18,
                            cpuSeconds: ExecutionProfile.cpuSeconds(processWide: alone) - started.1)
            }
            args = []
            running -= 1
            finished += 1
            if let error {
                failure = failure ?? error
            } else if let result {
                for (k, slot) in step.outputs.enumerated() {
                    guard let slot else { continue }
                    guard k < result.outputs.count else {
                        failure = failure ?? RuntimeError.invalidInput(node: step.node.name, opType: step.node.opType,
                                                                       reason: "output \(k) ('\(plan.slotNames[slot])') was not produced")
                        continue
                    }
                    values[slot] = result.outputs[k]
                }
                for case let s? in step.inputs {
                    readers[s] -= 1
                    if readers[s] == 0 && producer[s] != nil { values[s] = nil }
                }
                for d in dependents[i] {
                    pending[d] -= 1
                    if pending[d] == 0 { ready.append(d) }
                }
            }
            condition.broadcast()
        }
        condition.unlock()
    }
}

extension Executor {
    /// Runs `plan`'s steps on `context.threads` workers (the calling thread and threads - 1
    /// more), each step as soon as its inputs exist, lowest plan index first. A step gets all
    /// the threads when nothing else is running or ready, else one: independent branches then
    /// share the cores instead of each forking and joining inside every kernel. A value is
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
