// `manet verify --layers`: every intermediate value against its reference, in graph order, and the
// first node whose output leaves the tolerance, with its inputs' errors.

import Foundation
import ManetSupport
import ONNXIR
import Runtime

/// One value of the graph as written: the node that writes it and how it compares.
public struct LayerRow: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        /// Compared with its reference (see `comparison`).
        case compared
        /// Never computed by the plan: fusion folded its node into `step` (see `fusedInto`).
        case fused
        /// The reference has no tensor for this value: not compared, not a failure.
        case notInReference = "not in reference"
    }

    /// The node as written that produces the value, its op and the value's name.
    public var node: String
    public var op: String
    public var output: String
    public var status: Status
    /// The plan's step that computes the value (a fused step keeps the name of its first
    /// node, e.g. the Conv of Conv+BatchNormalization+Relu), and its ops joined by '+'.
    /// For a fused value: the step that absorbed it.
    public var step: String
    public var stepOps: String
    public var comparison: OutputComparison?
    /// The atol this value was compared with: the report's atol times max(1, max |ref|) of
    /// the value (see `ParityCheck.compareLayers`).
    public var atol: Double?
    /// The worst element's |ours - ref| / (atol + rtol * |ref|): 1 is the tolerance's edge.
    public var errorOverTolerance: Double?

    public var passed: Bool { comparison?.passed ?? true }
}

/// What fed the first node outside tolerance, and how far each input is off.
public struct LayerInput: Codable, Equatable, Sendable {
    public var name: String
    /// `graph input`, `initializer`, `constant`, or `value` (written by the node in `row`).
    public var kind: String
    /// The index of the input's row in `LayerReport.rows`, for a value.
    public var row: Int?
}

public struct FirstFailure: Codable, Equatable, Sendable {
    /// The index of the failing value's row in `LayerReport.rows`.
    public var row: Int
    public var step: String
    public var stepOps: String
    /// Inputs of the step (for a fused step: of all the nodes it absorbed, except the values
    /// passed between them).
    public var inputs: [LayerInput]
}

/// Every value of one set on one plan.
public struct LayerReport: Codable, Equatable, Sendable {
    public var model: String
    public var reference: String
    public var set: String
    public var plan: String
    public var tolerance: Tolerance
    /// One row per named node output, nodes in the order they run (topological).
    public var rows: [LayerRow]
    public var firstFailure: FirstFailure?
    /// Reference tensors that name no value of the graph.
    public var unmatchedReferences: [String]
    public var passed: Bool { firstFailure == nil }

    enum CodingKeys: String, CodingKey { case model, reference, set, plan, tolerance, rows, firstFailure, unmatchedReferences, passed }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(reference, forKey: .reference)
        try c.encode(set, forKey: .set)
        try c.encode(plan, forKey: .plan)
        try c.encode(tolerance, forKey: .tolerance)
        try c.encode(rows, forKey: .rows)
        try c.encodeIfPresent(firstFailure, forKey: .firstFailure)
        try c.encode(unmatchedReferences, forKey: .unmatchedReferences)
        try c.encode(passed, forKey: .passed)
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        reference = try c.decode(String.self, forKey: .reference)
        set = try c.decode(String.self, forKey: .set)
        plan = try c.decode(String.self, forKey: .plan)
        tolerance = try c.decode(Tolerance.self, forKey: .tolerance)
        rows = try c.decode([LayerRow].self, forKey: .rows)
        firstFailure = try c.decodeIfPresent(FirstFailure.self, forKey: .firstFailure)
        unmatchedReferences = try c.decode([String].self, forKey: .unmatchedReferences)
    }
    public init(model: String, reference: String, set: String, plan: String, tolerance: Tolerance, rows: [LayerRow],
                firstFailure: FirstFailure?, unmatchedReferences: [String]) {
        self.model = model
        self.reference = reference
        self.set = set
        self.plan = plan
        self.tolerance = tolerance
        self.rows = rows
        self.firstFailure = firstFailure
        self.unmatchedReferences = unmatchedReferences
    }
}

/// The worst element's distance in units of the tolerance.
func errorOverTolerance(_ c: OutputComparison, _ tolerance: Tolerance) -> Double? {
    if c.problem != nil { return .infinity }
    guard let a = c.worstActual, let r = c.worstReference else { return nil }
    let diff: Double
    if a.isNaN || r.isNaN { diff = a.isNaN && r.isNaN ? 0 : .infinity }
    else if a.isInfinite || r.isInfinite { diff = a == r ? 0 : .infinity }
    else { diff = abs(a - r) }
    let allowed = tolerance.atol + tolerance.rtol * (r.isFinite ? abs(r) : 0)
    return allowed > 0 ? diff / allowed : (diff > 0 ? .infinity : 0)
}

extension ParityCheck {
    /// Pairs each named node output of the graph with its reference tensor: by the name a
    /// `.pb` carries, else by file name (`ReferenceData.fileStem`); graph outputs also by the
    /// set's `output_K` files. Values whose file names collide are an error, since a file named
    /// by one of them cannot tell which it holds.
    public func matchValues(_ set: ReferenceSet, values: [String: ReferenceTensor]) throws
        -> (matched: [String: ReferenceTensor], unmatched: [String]) {
        let steps = try self.steps(of: .asWritten)
        let names = steps.flatMap(\.outputs).filter { !$0.isEmpty }
        var byStem: [String: [String]] = [:]
        for name in names { byStem[ReferenceData.fileStem(name), default: []].append(name) }
        var matched: [String: ReferenceTensor] = [:]
        var used = Set<String>()
        for name in names {
            if let t = values[name], t.data.name == name {
                matched[name] = t
                used.insert(name)
                continue
            }
            let stem = ReferenceData.fileStem(name)
            guard let t = values[stem], t.data.name.isEmpty else { continue }
            let owners = byStem[stem] ?? []
            if owners.count > 1 {
                throw FileError(file: t.file, reason: "its name fits values \(owners.map { "'\($0)'" }.joined(separator: " and ")) of the graph, whose file names collide; give them as .pb files, whose TensorProto carries the value's name")
            }
            matched[name] = t
            used.insert(stem)
        }
        // Graph outputs from output_K files, by the name a .pb carries, else by position.
        let outputNames = model.graph.outputs.map(\.name)
        for (k, t) in set.outputs.enumerated() {
            let name = outputNames.contains(t.data.name) ? t.data.name : (k < outputNames.count ? outputNames[k] : nil)
            if let name, matched[name] == nil { matched[name] = t }
        }
        let unmatched = values.keys.filter { !used.contains($0) }.sorted()
        return (matched, unmatched)
    }

    /// Compares every value the plan computed (`ours`, from `run(_:plan:keeping:)` keeping
    /// them) with `references` (from `matchValues`).
    ///
    /// An intermediate value of unknown scale is compared with `atol` scaled by
    /// max(1, max |ref|) of that value (rtol as given): float32 rounding in the sums that made
    /// it is proportional to the size of the terms, not to each element's own size, so an
    /// element near zero in a tensor of large values carries the rounding of large ones. This
    /// is the project's inference criterion, max |diff| <= 1e-5 * max(1, max |ref|), per value.
    public func compareLayers(ours: [String: Tensor], references: [String: ReferenceTensor], unmatched: [String],
                              plan: Executor.PlanVariant, set: String, reference: String, tolerance: Tolerance) throws -> LayerReport {
        let asWritten = try steps(of: .asWritten)
        let planSteps = try steps(of: plan)
        func ops(_ s: Executor.StepDescription) -> String { ([s.node] + s.absorbed).map(\.opType).joined(separator: "+") }
        var computedBy: [String: Executor.StepDescription] = [:]
        var fusedInto: [String: Executor.StepDescription] = [:]
        for s in planSteps {
            for o in s.outputs where !o.isEmpty { computedBy[o] = s }
            guard !s.absorbed.isEmpty else { continue }
            for node in [s.node] + s.absorbed {
                for o in node.outputs where !o.isEmpty && !s.outputs.contains(o) { fusedInto[o] = s }
            }
        }
        var rows: [LayerRow] = []
        var rowOf: [String: Int] = [:]
        for s in asWritten {
            for output in s.node.outputs where !output.isEmpty {
                var row = LayerRow(node: s.node.name, op: s.node.opType, output: output, status: .notInReference,
                                   step: s.node.name, stepOps: s.node.opType)
                if let f = fusedInto[output] {
                    row.status = .fused
                    row.step = f.node.name
                    row.stepOps = ops(f)
                } else {
                    if let c = computedBy[output] {
                        row.step = c.node.name
                        row.stepOps = ops(c)
                    }
                    if let r = references[output], let mine = ours[output] {
                        let scale = max(1, (doubleValues(r.data) ?? []).reduce(0) { $1.isFinite ? max($0, abs($1)) : $0 })
                        let scaled = Tolerance(rtol: tolerance.rtol, atol: tolerance.atol * scale)
                        let comparison = Parity.compare(name: output, actual: mine.tensorData(), reference: r.data, tolerance: scaled)
                        row.status = .compared
                        row.comparison = comparison
                        row.atol = scaled.atol
                        row.errorOverTolerance = errorOverTolerance(comparison, scaled)
                    }
                }
                rowOf[output] = rows.count
                rows.append(row)
            }
        }
        var first: FirstFailure? = nil
        if let index = rows.firstIndex(where: { !$0.passed }), let step = planSteps.first(where: { $0.node.name == rows[index].step }) {
            let group = [step.node] + step.absorbed
            let passedBetween = Set(group.flatMap(\.outputs))
            var seen = Set<String>()
            let graphInputs = Set(model.graph.inputs.map(\.name))
            let initializers = Set(model.graph.initializers.map(\.name))
            var inputs: [LayerInput] = []
            for name in group.flatMap(\.inputs) where !name.isEmpty && !passedBetween.contains(name) && seen.insert(name).inserted {
                if let r = rowOf[name] {
                    inputs.append(LayerInput(name: name, kind: "value", row: r))
                } else if initializers.contains(name) {
                    inputs.append(LayerInput(name: name, kind: "initializer", row: nil))
                } else if graphInputs.contains(name) {
                    inputs.append(LayerInput(name: name, kind: "graph input", row: nil))
                } else {
                    inputs.append(LayerInput(name: name, kind: "constant", row: nil))
                }
            }
            first = FirstFailure(row: index, step: step.node.name, stepOps: ops(step), inputs: inputs)
        }
        return LayerReport(model: modelPath, reference: reference, set: set, plan: plan.rawValue, tolerance: tolerance,
                           rows: rows, firstFailure: first, unmatchedReferences: unmatched)
    }
}

extension LayerReport {
    static func g(_ v: Double?) -> String {
        guard let v else { return "-" }
        return v.isInfinite ? "inf" : String(format: "%.3g", v)
    }

    /// The human-readable report: every value in graph order, then the first failure.
    public func text() -> String {
        let g = Self.g
        var lines = ["model:     \(model)", "reference: \(reference)",
                     "tolerance: |ours - ref| <= atol * max(1, max |ref| of the value) + rtol * |ref|, rtol \(g(tolerance.rtol)), atol \(g(tolerance.atol)); err/tol 1 is its edge",
                     "plan:      \(plan), \(set)", ""]
        let nodeWidth = min(44, max(4, rows.map(\.node.count).max() ?? 0))
        let opWidth = min(24, max(2, rows.map(\.op.count).max() ?? 0))
        let outputWidth = min(44, max(6, rows.map(\.output.count).max() ?? 0))
        func cell(_ s: String, _ width: Int) -> String {
            let t = s.count > width ? "…" + s.suffix(width - 1) : s
            return t.padding(toLength: width, withPad: " ", startingAt: 0)
        }
        func right(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        lines.append(right("#", 5) + "  " + cell("node", nodeWidth) + "  " + cell("op", opWidth) + "  " + cell("output", outputWidth)
                     + "  " + right("max abs", 9) + "  " + right("max rel", 9) + "  " + right("err/tol", 9) + "  " + right("needs rtol", 10))
        for (i, row) in rows.enumerated() {
            var line = right("\(i + 1)", 5) + "  " + cell(row.node, nodeWidth) + "  " + cell(row.op, opWidth) + "  " + cell(row.output, outputWidth) + "  "
            switch row.status {
            case .fused:
                line += "fused into '\(row.step)' (\(row.stepOps))"
            case .notInReference:
                line += "not in the reference (not compared)"
            case .compared:
                let c = row.comparison!
                if let problem = c.problem {
                    line += "OUTSIDE: \(problem)"
                } else {
                    line += right(g(c.maxAbsDiff), 9) + "  " + right(g(c.maxRelDiff), 9) + "  " + right(g(row.errorOverTolerance), 9) + "  "
                        + right(g(c.smallestPassingRtol), 10) + (c.passed ? "" : "  OUTSIDE")
                }
                if row.step != row.node { line += "  [by '\(row.step)' \(row.stepOps)]" }
            }
            lines.append(line)
        }
        let compared = rows.filter { $0.status == .compared }
        let fused = rows.filter { $0.status == .fused }.count
        let missing = rows.filter { $0.status == .notInReference }
        let failing = compared.filter { !$0.passed }.count
        lines.append("")
        var summary = "\(compared.count) value(s) compared, \(failing) outside tolerance"
        if fused > 0 { summary += "; \(fused) fused away by the \(plan) plan (never computed)" }
        if !missing.isEmpty { summary += "; \(missing.count) not in the reference (not compared)" }
        lines.append(summary)
        if !unmatchedReferences.isEmpty {
            let shown = unmatchedReferences.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            lines.append("\(unmatchedReferences.count) reference tensor(s) name no value of the graph: \(shown)\(unmatchedReferences.count > 5 ? ", ..." : "")")
        }
        if let f = firstFailure {
            let row = rows[f.row]
            let c = row.comparison!
            lines.append("")
            lines.append("FIRST OUTSIDE TOLERANCE: value #\(f.row + 1) '\(row.output)' of node '\(row.node)' (\(row.op))"
                         + (f.step != row.node ? ", computed by '\(f.step)' (\(f.stepOps))" : ""))
            if let problem = c.problem {
                lines.append("  \(problem)")
            } else {
                lines.append("  max abs diff \(g(c.maxAbsDiff)), max rel diff \(g(c.maxRelDiff)), err/tol \(g(row.errorOverTolerance)), \(c.mismatches) of \(c.elementCount) elements outside")
                lines.append("  passes with atol >= \(g(c.smallestPassingAtol)) (rtol \(g(tolerance.rtol))) or rtol >= \(g(c.smallestPassingRtol)) (atol \(g(row.atol)), the value's)")
            }
            lines.append("  inputs of '\(f.step)':")
            var unchecked: [String] = []
            for input in f.inputs {
                switch (input.kind, input.row.map { rows[$0] }) {
                case ("value", let r?):
                    switch r.status {
                    case .compared:
                        lines.append("    '\(input.name)' from '\(r.node)' (\(r.op)): max abs \(g(r.comparison?.maxAbsDiff)), max rel \(g(r.comparison?.maxRelDiff)), err/tol \(g(r.errorOverTolerance)): \(r.passed ? "within tolerance" : "OUTSIDE")")
                    case .fused:
                        lines.append("    '\(input.name)' from '\(r.node)' (\(r.op)): fused into '\(r.step)', not computed")
                        unchecked.append(input.name)
                    case .notInReference:
                        lines.append("    '\(input.name)' from '\(r.node)' (\(r.op)): not in the reference, not compared")
                        unchecked.append(input.name)
                    }
                default:
                    lines.append("    '\(input.name)': \(input.kind)")
                }
            }
            lines.append(unchecked.isEmpty ? "  every input computed before it is within tolerance: the difference starts at this step"
                                           : "  not compared: \(unchecked.map { "'\($0)'" }.joined(separator: ", ")); the difference starts here or in what fed those")
            lines.append("")
            lines.append("MISMATCH: first outside tolerance at '\(f.step)' (\(f.stepOps)), value '\(row.output)'")
        } else {
            lines.append("")
            lines.append("PASS: every compared value within tolerance (\(plan) plan)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension LayerReport {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The error along the graph, one panel per report: each value's err/tol on a log scale in
    /// graph order, the tolerance as a line at 1, values outside it in red, the first failure
    /// marked, fused and uncompared values as ticks along the bottom.
    public static func svg(_ reports: [LayerReport]) -> String {
        let width = 1100.0, panelHeight = 390.0
        let left = 78.0, right = 24.0, top = 58.0, bottom = 112.0
        let plotWidth = width - left - right, plotHeight = panelHeight - top - bottom
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(panelHeight * Double(max(1, reports.count))))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"]
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        // A white outline keeps labels readable over the points.
        let halo = "stroke=\"white\" stroke-width=\"4\" paint-order=\"stroke\""
        for (p, report) in reports.enumerated() {
            let y0 = Double(p) * panelHeight
            let scores = report.rows.compactMap { $0.status == .compared ? $0.errorOverTolerance : nil }
            let positive = scores.filter { $0 > 0 && $0.isFinite }
            var lowDecade = Int((log10(positive.min() ?? 1e-3)).rounded(.down))
            lowDecade = max(-9, min(lowDecade, -1))
            var highDecade = Int((log10(max(positive.max() ?? 1, 1))).rounded(.up)) + 1
            highDecade = max(1, min(highDecade, 12))
            let span = Double(highDecade - lowDecade)
            func y(_ score: Double) -> Double {
                let clamped = score.isFinite ? (score > 0 ? log10(score) : Double(lowDecade)) : Double(highDecade)
                let v = min(max(clamped, Double(lowDecade)), Double(highDecade))
                return y0 + top + plotHeight * (1 - (v - Double(lowDecade)) / span)
            }
            let n = max(1, report.rows.count)
            func x(_ i: Int) -> Double { left + plotWidth * (n == 1 ? 0.5 : Double(i) / Double(n - 1)) }
            let failing = report.rows.filter { $0.status == .compared && !$0.passed }.count
            let title = "\(report.model) - \(report.plan) plan vs \(report.reference)"
            out.append("<text x=\"\(f(left))\" y=\"\(f(y0 + 22))\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>")
            let verdict = report.firstFailure.map { "first outside tolerance: value #\($0.row + 1) of \(report.rows.count), by step '\($0.step)'; \(failing) value(s) outside in all" }
                ?? "every compared value within tolerance"
            out.append("<text x=\"\(f(left))\" y=\"\(f(y0 + 40))\" fill=\"\(report.passed ? "#1a7f37" : "#c62828")\">\(escape(verdict))</text>")
            // Decades; exact values sit on the lowest line.
            for d in lowDecade...highDecade {
                let yy = y(pow(10, Double(d)))
                out.append("<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(yy))\" stroke=\"#e5e5e5\"/>")
                out.append("<text x=\"\(f(left - 6))\" y=\"\(f(yy + 4))\" text-anchor=\"end\" fill=\"#555\">\(d == lowDecade ? "≤" : "")1e\(d)</text>")
            }
            out.append("<rect x=\"\(f(left))\" y=\"\(f(y0 + top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#999\"/>")
            out.append("<text transform=\"translate(\(f(left - 56)),\(f(y0 + top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">worst |ours-ref| / tolerance</text>")
            // The tolerance.
            let yt = y(1)
            out.append("<line x1=\"\(f(left))\" y1=\"\(f(yt))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(yt))\" stroke=\"#c62828\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>")
            var labels: [String] = []
            labels.append("<text x=\"\(f(left + plotWidth - 4))\" y=\"\(f(yt - 5))\" text-anchor=\"end\" fill=\"#c62828\" \(halo)>tolerance (rtol \(g(report.tolerance.rtol)), atol \(g(report.tolerance.atol)) x max(1, max |ref|))</text>")
            // The first failure.
            if let first = report.firstFailure {
                let xf = x(first.row)
                out.append("<line x1=\"\(f(xf))\" y1=\"\(f(y0 + top))\" x2=\"\(f(xf))\" y2=\"\(f(y0 + top + plotHeight))\" stroke=\"#ef6c00\" stroke-width=\"2\"/>")
                let anchor = xf > left + plotWidth * 0.7 ? "end" : "start"
                labels.append("<text x=\"\(f(xf + (anchor == "end" ? -6 : 6)))\" y=\"\(f(y0 + top + 16))\" text-anchor=\"\(anchor)\" fill=\"#ef6c00\" font-weight=\"bold\" \(halo)>first outside: \(escape(first.step)) (\(escape(first.stepOps)))</text>")
            }
            // The compared values: a line in graph order, a dot each.
            let points = report.rows.enumerated().compactMap { i, r -> (Int, Double, Bool)? in
                guard r.status == .compared, let s = r.errorOverTolerance else { return nil }
                return (i, s, r.passed)
            }
            if points.count > 1 {
                out.append("<polyline fill=\"none\" stroke=\"#90a4ae\" stroke-width=\"1\" points=\"\(points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " "))\"/>")
            }
            let radius = report.rows.count > 400 ? 1.8 : 2.6
            for (i, s, passed) in points {
                let r = report.rows[i]
                out.append("<circle cx=\"\(f(x(i)))\" cy=\"\(f(y(s)))\" r=\"\(radius)\" fill=\"\(passed ? "#2e7d32" : "#c62828")\"><title>\(escape("#\(i + 1) \(r.node) (\(r.op)) -> \(r.output): err/tol \(g(s))"))</title></circle>")
            }
            out += labels
            // Values not compared: ticks below the plot.
            for (i, r) in report.rows.enumerated() where r.status != .compared {
                let color = r.status == .fused ? "#7e57c2" : "#bdbdbd"
                out.append("<line x1=\"\(f(x(i)))\" y1=\"\(f(y0 + top + plotHeight + 2))\" x2=\"\(f(x(i)))\" y2=\"\(f(y0 + top + plotHeight + 9))\" stroke=\"\(color)\"/>")
            }
            // A few node names along the axis.
            let ticks = min(8, report.rows.count)
            for k in 0..<ticks {
                let i = ticks == 1 ? 0 : k * (report.rows.count - 1) / (ticks - 1)
                let name = report.rows[i].node
                let short = name.count > 28 ? "…" + name.suffix(27) : name
                out.append("<text transform=\"translate(\(f(x(i))),\(f(y0 + top + plotHeight + 22))) rotate(-20)\" text-anchor=\"end\" fill=\"#555\" font-size=\"10\">\(escape(String(short)))</text>")
            }
            let compared = points.count, fused = report.rows.filter { $0.status == .fused }.count
            let missing = report.rows.count - compared - fused
            var legend = "\(report.rows.count) values in graph order: \(compared) compared (green within, red outside)"
            if fused > 0 { legend += ", \(fused) fused away (purple ticks)" }
            if missing > 0 { legend += ", \(missing) not in the reference (grey ticks)" }
            out.append("<text x=\"\(f(left))\" y=\"\(f(y0 + panelHeight - 14))\" fill=\"#333\">\(escape(legend))</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// Reports as one JSON array, non-finite numbers as strings.
    public static func json(_ reports: [LayerReport]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(reports), as: UTF8.self)
    }
}
