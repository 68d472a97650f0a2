// Runs a model in the interpreter on reference inputs and compares every output: `manet verify`.

import Foundation
import ManetSupport
import ONNXIR
import Runtime

/// The outcome of one test-data set.
public struct SetResult: Codable, Equatable, Sendable {
    public var folder: String
    /// What was compared with what: `optimized` or `as-written` (that plan against the
    /// reference), or `optimized vs as-written` (the two plans' outputs, the graph as written
    /// taken as the reference).
    public var plan: String
    public var outputs: [OutputComparison]
    public var passed: Bool { outputs.allSatisfy(\.passed) }

    enum CodingKeys: String, CodingKey { case folder, plan, outputs, passed }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(folder, forKey: .folder)
        try c.encode(plan, forKey: .plan)
        try c.encode(outputs, forKey: .outputs)
        try c.encode(passed, forKey: .passed)
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        folder = try c.decode(String.self, forKey: .folder)
        plan = try c.decode(String.self, forKey: .plan)
        outputs = try c.decode([OutputComparison].self, forKey: .outputs)
    }
    public init(folder: String, plan: String, outputs: [OutputComparison]) {
        self.folder = folder
        self.plan = plan
        self.outputs = outputs
    }

    /// The label of the cross-check between the two plans.
    public static let plansAgainstEachOther = "optimized vs as-written"
}

/// A whole parity check: the model, what it was compared with, and every output of every set.
public struct ParityReport: Codable, Equatable, Sendable {
    public var model: String
    /// The reference folder, or `onnxruntime` (with the folder of generated data).
    public var reference: String
    public var tolerance: Tolerance
    public var sets: [SetResult]
    public var passed: Bool { sets.allSatisfy(\.passed) }

    enum CodingKeys: String, CodingKey { case model, reference, tolerance, sets, passed }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(reference, forKey: .reference)
        try c.encode(tolerance, forKey: .tolerance)
        try c.encode(sets, forKey: .sets)
        try c.encode(passed, forKey: .passed)
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        reference = try c.decode(String.self, forKey: .reference)
        tolerance = try c.decode(Tolerance.self, forKey: .tolerance)
        sets = try c.decode([SetResult].self, forKey: .sets)
    }
    public init(model: String, reference: String, tolerance: Tolerance, sets: [SetResult]) {
        self.model = model
        self.reference = reference
        self.tolerance = tolerance
        self.sets = sets
    }

    /// JSON with non-finite numbers as strings (`"inf"`), which plain JSON cannot hold.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The human-readable report.
    public func text() -> String {
        func g(_ v: Double) -> String { v.isInfinite ? "inf (none passes)" : String(format: "%.3g", v) }
        func value(_ v: Double?) -> String { v.map { String(format: "%.9g", $0) } ?? "-" }
        var lines = ["model:     \(model)", "reference: \(reference)",
                     "tolerance: |ours - ref| <= atol + rtol * |ref|, rtol \(g(tolerance.rtol)), atol \(g(tolerance.atol))"]
        for set in sets {
            lines.append("")
            lines.append(set.plan == SetResult.plansAgainstEachOther ? "\(set.folder), optimized plan vs the graph as written:"
                                                                     : "\(set.folder), \(set.plan) plan:")
            for o in set.outputs {
                lines.append("  output '\(o.name)' \(o.referenceShape): \(o.passed ? "ok" : "MISMATCH")")
                if let problem = o.problem {
                    lines.append("    \(problem)")
                    continue
                }
                lines.append("    max abs diff \(g(o.maxAbsDiff)), max rel diff \(g(o.maxRelDiff)), \(o.mismatches) of \(o.elementCount) outside tolerance")
                if let index = o.worstIndex {
                    lines.append("    worst element \(index): ours \(value(o.worstActual)), reference \(value(o.worstReference))")
                }
                lines.append("    passes with atol >= \(g(o.smallestPassingAtol)) (rtol \(g(tolerance.rtol))) or rtol >= \(g(o.smallestPassingRtol)) (atol \(g(tolerance.atol)))")
                if let top1 = o.top1Agreement {
                    lines.append("    top-1 agreement \(top1.agreeing)/\(top1.rows)")
                }
            }
        }
        let outputs = sets.flatMap(\.outputs)
        let failed = outputs.filter { !$0.passed }.count
        lines.append("")
        let folders = Set(sets.map(\.folder)).count
        let plans = sets.map(\.plan).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let what = plans.map { $0 == SetResult.plansAgainstEachOther ? $0 : $0 + " plan" }.joined(separator: ", ")
        lines.append(passed ? "PASS: \(outputs.count) output(s) in \(folders) set(s) within tolerance (\(what))"
                            : "MISMATCH: \(failed) of \(outputs.count) output(s) outside tolerance (\(what))")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Runs a model on reference sets and compares.
public struct ParityCheck {
    public let model: Model
    public let modelPath: String
    let executor: Executor

    /// Graph inputs that must be fed: those that are not also initializers.
    public var feedInputs: [ValueInfo] {
        let initializers = Set(model.graph.initializers.map(\.name))
        return model.graph.inputs.filter { !initializers.contains($0.name) }
    }

    /// `optimizations`: the rewrites of the optimised plan; `.inference`, what `manet run` and
    /// `Classifier` use, unless a caller checks something else.
    public init(model: Model, path: String, optimizations: GraphOptimizations = .inference) throws {
        self.model = model
        self.modelPath = path
        do {
            executor = try Executor(model: model, options: optimizations)
        } catch let e as RuntimeError {
            throw FileError(file: path, reason: "the interpreter cannot run this model: \(e)")
        }
    }

    /// Pairs reference tensors with graph values: by the TensorProto's name when it names one
    /// of `candidates`, else by position.
    static func match(_ tensors: [ReferenceTensor], to candidates: [String], what: String, folder: String) throws -> [(String, ReferenceTensor)] {
        var used: [String: String] = [:]
        var pairs: [(String, ReferenceTensor)] = []
        for (k, t) in tensors.enumerated() {
            let name: String
            if !t.data.name.isEmpty, candidates.contains(t.data.name) {
                name = t.data.name
            } else {
                guard k < candidates.count else {
                    throw FileError(file: t.file, reason: "the model has \(candidates.count) graph \(what)(s) (\(candidates.joined(separator: ", "))), but this is \(what) \(k)")
                }
                name = candidates[k]
            }
            if let other = used[name] {
                throw FileError(file: t.file, reason: "maps to graph \(what) '\(name)', which \(other) already gives")
            }
            used[name] = (t.file as NSString).lastPathComponent
            pairs.append((name, t))
        }
        let missing = candidates.filter { used[$0] == nil }
        if !missing.isEmpty {
            throw FileError(file: folder, reason: "no reference \(what) for graph \(what)(s) \(missing.map { "'\($0)'" }.joined(separator: ", ")) (\(tensors.count) \(what) file(s) for \(candidates.count) graph \(what)s)")
        }
        return pairs
    }

    /// Checks a reference input against the declared graph input, naming the file.
    func checkInput(_ t: ReferenceTensor, against input: ValueInfo) throws {
        guard case .tensor(let elementType, let dims)? = input.type else { return }
        if let e = elementType, e != t.data.elementType {
            throw FileError(file: t.file, reason: "element type \(t.data.elementType), but graph input '\(input.name)' is \(e)")
        }
        if let dims {
            let shape = t.data.dims
            guard dims.count == shape.count else {
                throw FileError(file: t.file, reason: "shape \(shape), but graph input '\(input.name)' has rank \(dims.count): \(dims)")
            }
            for (axis, (d, size)) in zip(dims, shape).enumerated() {
                if case .fixed(let n) = d, n != size {
                    throw FileError(file: t.file, reason: "shape \(shape), but graph input '\(input.name)' is \(dims) (dim \(axis): \(size) vs \(n))")
                }
            }
        }
    }

    /// One set's inputs as feeds, checked against the declared graph inputs.
    public func feeds(_ set: ReferenceSet) throws -> [String: Tensor] {
        let inputs = feedInputs
        let pairs = try Self.match(set.inputs, to: inputs.map(\.name), what: "input", folder: set.folder)
        var feeds: [String: Tensor] = [:]
        for (name, t) in pairs {
            try checkInput(t, against: inputs.first { $0.name == name }!)
            do {
                feeds[name] = try Tensor(t.data)
            } catch let e as RuntimeError {
                throw FileError(file: t.file, reason: "\(e)")
            }
        }
        return feeds
    }

    /// The model's outputs for one set's inputs on `plan`, by graph output name, and the
    /// values `keeping` names (see `Executor.run(inputs:plan:keeping:keptBytesLimit:)`).
    public func run(_ set: ReferenceSet, plan: Executor.PlanVariant, keeping: Executor.KeptValues = .none,
                    keptBytesLimit: Int = .max) throws -> (outputs: [String: TensorData], values: [String: Tensor]) {
        let feeds = try feeds(set)
        do {
            let run = try executor.run(inputs: feeds, plan: plan, keeping: keeping, keptBytesLimit: keptBytesLimit)
            return (run.outputs.mapValues { $0.tensorData() }, run.values)
        } catch RuntimeError.limitExceeded(let reason) {
            throw FileError(file: modelPath, reason: "the \(plan.rawValue) plan on \(set.folder): \(reason); the budget is the memory limit (--max-memory)")
        } catch let e as RuntimeError {
            throw FileError(file: modelPath, reason: "running the \(plan.rawValue) plan on \(set.folder): \(e)")
        }
    }

    /// The steps of a plan (see `Executor.steps(of:)`).
    public func steps(of plan: Executor.PlanVariant) throws -> [Executor.StepDescription] {
        try executor.steps(of: plan)
    }

    /// Runs one set on each of `plans` and compares each graph output with its reference;
    /// with both plans, also the optimised plan's outputs with the graph as written's.
    public func compare(_ set: ReferenceSet, tolerance: Tolerance,
                        plans: [Executor.PlanVariant] = [.optimized]) throws -> [SetResult] {
        let outputNames = model.graph.outputs.map(\.name)
        let pairs = try Self.match(set.outputs, to: outputNames, what: "output", folder: set.folder)
        var results: [SetResult] = []
        var outputsByPlan: [Executor.PlanVariant: [String: TensorData]] = [:]
        for plan in plans {
            let actual = try run(set, plan: plan).outputs
            outputsByPlan[plan] = actual
            var comparisons: [OutputComparison] = []
            for name in outputNames {
                guard let (_, reference) = pairs.first(where: { $0.0 == name }), let ours = actual[name] else { continue }
                comparisons.append(Parity.compare(name: name, actual: ours, reference: reference.data, tolerance: tolerance))
            }
            results.append(SetResult(folder: set.folder, plan: plan.rawValue, outputs: comparisons))
        }
        if let optimized = outputsByPlan[.optimized], let asWritten = outputsByPlan[.asWritten] {
            let comparisons = outputNames.compactMap { name -> OutputComparison? in
                guard let o = optimized[name], let w = asWritten[name] else { return nil }
                return Parity.compare(name: name, actual: o, reference: w, tolerance: tolerance)
            }
            results.append(SetResult(folder: set.folder, plan: SetResult.plansAgainstEachOther, outputs: comparisons))
        }
        return results
    }
}
