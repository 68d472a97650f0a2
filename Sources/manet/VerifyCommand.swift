// `manet verify`: runs a model in the interpreter and compares its outputs with reference outputs.

import ArgumentParser
import Foundation
import ManetSupport
import ONNXFormat
import ONNXIR
import Parity
import Runtime

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare the interpreter's outputs with reference outputs (ONNX test data or onnxruntime).",
        discussion: """
        --reference DIR reads ONNX test-data folders: DIR/test_data_set_N/input_K.pb and \
        output_K.pb (TensorProto), or DIR itself holding input_K/output_K files, as .pb or .npy. \
        Inputs go to the graph inputs that are not initializers, by position (or by the name a \
        .pb carries); outputs likewise to the graph outputs.

        An element passes when |ours - ref| <= atol + rtol * |ref| (numpy.allclose). Per output \
        the report gives the max absolute and relative difference, how many elements fail, \
        where the worst one is, the smallest atol (at this rtol) and rtol (at this atol) that \
        would pass, and for [N, C] outputs how many rows agree on the top-1 class.

        --against onnxruntime runs the model in onnxruntime (the tools venv's python: \
        $MANET_PYTHON or tools/.venv/bin/python, script tools/parity/ort_run.py) on seeded random \
        inputs in [0, 1) -- symbolic dims take --batch-size -- or on the --reference inputs.

        --layers compares every intermediate value, not only the graph outputs. With --against \
        onnxruntime, onnxruntime runs a copy of the model in which every node output is a graph \
        output; with --reference, each set folder holds, besides input_K (and output_K), one \
        file per value: NAME.pb (a TensorProto named after the value) or NAME.npy, NAME being the \
        value name with characters other than letters, digits, '.', '_' and '-' replaced by '_'. \
        Values the reference lacks are listed as not compared, not as failures. The report lists \
        every value in graph order (node, op, output, max abs and rel difference, err/tol: the \
        worst element's difference in units of the tolerance, and the rtol it needs), names the \
        first value outside tolerance with the step that computed it and each of its inputs' \
        errors; with the optimised plan, values fusion removed are shown as fused into the step \
        that absorbed them. --svg FILE draws err/tol along the graph. --max-memory also bounds \
        the bytes of the values kept for the comparison.

        --plan picks what runs: by default the optimised plan `manet run` executes (BatchNorm \
        folded into convolutions, Conv+Relu and Add+Relu fused, Winograd 3x3 convolutions, \
        packed filters); as-written runs each node as the graph states it; both runs the two \
        and also compares the optimised plan's outputs with the graph as written's.

        Exit status: 0 all outputs pass, 1 some output is outside tolerance, 2 error (unreadable \
        model or tensor, missing outputs, input of the wrong shape or type, onnxruntime failure).

        EXAMPLES:
          manet verify model.onnx --against onnxruntime --batch-size 4
          manet verify model.onnx --reference test_data --strict
          manet verify model.onnx --against onnxruntime --save-reference ort_ref
          manet verify model.onnx --against onnxruntime --plan both
          manet verify model.onnx --against onnxruntime --layers --svg errors.svg
        """)

    enum Against: String, ExpressibleByArgument, CaseIterable {
        case onnxruntime
    }

    enum PlanChoice: String, ExpressibleByArgument, CaseIterable {
        case optimized
        case asWritten = "as-written"
        case both

        var variants: [Executor.PlanVariant] {
            switch self {
            case .optimized: return [.optimized]
            case .asWritten: return [.asWritten]
            case .both: return [.optimized, .asWritten]
            }
        }
    }

    @Argument(help: "The ONNX model.")
    var model: String

    @Option(help: "Folder of test_data_set_N folders, or of input_K/output_K .pb or .npy files.")
    var reference: String?

    @Option(help: "Compare with another runtime instead of stored outputs: onnxruntime.")
    var against: Against?

    @Option(help: "The interpreter's plan to check: optimized (what `manet run` runs: BN folded, Conv+Relu and Add+Relu fused, Winograd, packed filters), as-written, or both (also compares the two).")
    var plan: PlanChoice = .optimized

    @Option(help: "Size of symbolic dims (the batch) in generated inputs (default 2).")
    var batchSize: Int?

    @Option(name: .customLong("batch"), help: .hidden)
    var batchAlias: Int?

    var batch: Int { batchSize ?? batchAlias ?? 2 }

    @Option(help: "Seed of generated inputs.")
    var seed: UInt64 = 0

    @Option(help: "Keep the generated inputs and onnxruntime's outputs in this folder (a test-data set).")
    var saveReference: String?

    @Option(help: "Relative tolerance (default 1e-3; 1.3e-6 with --strict).")
    var rtol: Double?

    @Option(help: "Absolute tolerance (default 1e-5).")
    var atol: Double?

    @Flag(help: "torch.testing's float32 tolerances: rtol 1.3e-6, atol 1e-5.")
    var strict = false

    @Option(help: MemoryLimit.help)
    var maxMemory: MemoryLimit?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(help: "Compare every intermediate value, in graph order, and name the first node outside tolerance (with --against onnxruntime, or a --reference folder that also holds values named by ONNX value names, .pb or .npy).")
    var layers = false

    @Option(help: "With --layers: also draw the error along the graph into this SVG file.")
    var svg: String?

    func validate() throws {
        if reference == nil && against == nil {
            throw ValidationError("give --reference DIR, or --against onnxruntime")
        }
        if batch < 1 { throw ValidationError("--batch-size must be at least 1") }
        if svg != nil && !layers { throw ValidationError("--svg draws the error along the graph: it needs --layers") }
        for (name, value) in [("--rtol", rtol), ("--atol", atol)] {
            if let value, !(value >= 0 && value.isFinite) { throw ValidationError("\(name) must be a finite number >= 0") }
        }
    }

    var tolerance: Tolerance {
        let base = strict ? Tolerance.strict : Tolerance.standard
        return Tolerance(rtol: rtol ?? base.rtol, atol: atol ?? base.atol)
    }

    func run() throws {
        if layers { return try runLayers() }
        let report: ParityReport
        do {
            report = try makeReport()
        } catch let e as FileError {
            throw interopExit(2, e.description)
        } catch let e as ONNXFormatError {
            throw interopExit(2, e.description)
        }
        if json {
            print(try report.json())
        } else {
            print(report.text(), terminator: "")
        }
        if !report.passed { throw ExitCode(1) }
    }

    /// The inputs onnxruntime is given: those of `--reference`, or one random set of `--batch-size`.
    func onnxruntimeInputSets(_ check: ParityCheck) throws -> [[TensorData]] {
        if let reference {
            return try ReferenceData.load(reference, requireOutputs: false).map { $0.inputs.map(\.data) }
        }
        return [try OnnxruntimeReference.randomInputs(for: check.feedInputs, batch: batch, seed: seed, modelPath: model)]
    }

    func makeReport() throws -> ParityReport {
        let loaded = try ONNXFile.load(path: model, maxMemory: maxMemory?.bytes)
        let check = try ParityCheck(model: loaded, path: model)
        var results: [SetResult] = []
        var referenceName = reference ?? ""
        if against == .onnxruntime {
            let temporary = FileManager.default.temporaryDirectory
                .appendingPathComponent("manet-verify-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: temporary) }
            let inputSets = try onnxruntimeInputSets(check)
            let base = saveReference ?? temporary
            let runner = try Environment.onnxruntimeRunner()
            for (n, inputs) in inputSets.enumerated() {
                let folder = base + "/test_data_set_\(n)"
                let set = try OnnxruntimeReference.makeSet(model: model, inputs: inputs, folder: folder, runner: runner)
                for var result in try check.compare(set, tolerance: tolerance, plans: plan.variants) {
                    // A temporary folder is gone when the report is read: name the set instead.
                    if saveReference == nil { result.folder = "onnxruntime set \(n)" }
                    results.append(result)
                }
            }
            referenceName = "onnxruntime" + (reference.map { " on the inputs of \($0)" } ?? " on random inputs (seed \(seed), batch \(batch))")
                + (saveReference.map { ", saved in \($0)" } ?? "")
        } else if let reference {
            for set in try ReferenceData.load(reference) {
                results += try check.compare(set, tolerance: tolerance, plans: plan.variants)
            }
        }
        return ParityReport(model: model, reference: referenceName, tolerance: tolerance, sets: results)
    }

    /// `--layers`: every intermediate value of each plan against its reference.
    func runLayers() throws {
        var reports: [LayerReport] = []
        do {
            reports = try makeLayerReports()
            if let svg {
                try AtomicFile.write(Array(LayerReport.svg(reports).utf8), to: svg)
            }
        } catch let e as FileError {
            throw interopExit(2, e.description)
        } catch let e as ONNXFormatError {
            throw interopExit(2, e.description)
        }
        if json {
            print(try LayerReport.json(reports))
        } else {
            print(reports.map { $0.text() }.joined(separator: "\n"), terminator: "")
        }
        if !reports.allSatisfy(\.passed) { throw ExitCode(1) }
    }

    func makeLayerReports() throws -> [LayerReport] {
        let loaded = try ONNXFile.load(path: model, maxMemory: maxMemory?.bytes)
        let check = try ParityCheck(model: loaded, path: model)
        let budget = maxMemory?.bytes ?? Int.max
        var reports: [LayerReport] = []
        if against == .onnxruntime {
            let temporary = FileManager.default.temporaryDirectory
                .appendingPathComponent("manet-verify-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: temporary) }
            let inputSets = try onnxruntimeInputSets(check)
            let base = saveReference ?? temporary
            let runner = try Environment.onnxruntimeRunner()
            let referenceName = "onnxruntime" + (reference.map { " on the inputs of \($0)" } ?? " on random inputs (seed \(seed), batch \(batch))")
            for (n, inputs) in inputSets.enumerated() {
                // Ours first: a model whose values do not fit the budget stops before onnxruntime holds them all too.
                let fed = ReferenceSet(folder: "onnxruntime set \(n)",
                                       inputs: inputs.enumerated().map { ReferenceTensor(file: "input_\($0.offset)", data: $0.element) }, outputs: [])
                let ours = try plan.variants.map { try check.run(fed, plan: $0, keeping: .all, keptBytesLimit: budget).values }
                let folder = base + "/test_data_set_\(n)"
                let set = try OnnxruntimeReference.makeSet(model: model, inputs: inputs, folder: folder, runner: runner, values: true)
                let (matched, unmatched) = try check.matchValues(set, values: try ReferenceData.loadValues(folder))
                for (variant, values) in zip(plan.variants, ours) {
                    reports.append(try check.compareLayers(ours: values, references: matched, unmatched: unmatched, plan: variant,
                                                           set: saveReference == nil ? "onnxruntime set \(n)" : folder,
                                                           reference: referenceName, tolerance: tolerance))
                }
            }
        } else if let reference {
            for set in try ReferenceData.load(reference, requireOutputs: false, readOutputs: true) {
                let (matched, unmatched) = try check.matchValues(set, values: try ReferenceData.loadValues(set.folder))
                if matched.isEmpty {
                    throw FileError(file: set.folder, reason: "holds no tensor named after a value of the graph (NAME.pb or NAME.npy, see --help), so --layers has nothing to compare")
                }
                for variant in plan.variants {
                    let ours = try check.run(set, plan: variant, keeping: .named(Set(matched.keys)), keptBytesLimit: budget).values
                    reports.append(try check.compareLayers(ours: ours, references: matched, unmatched: unmatched, plan: variant,
                                                           set: set.folder, reference: reference, tolerance: tolerance))
                }
            }
        }
        return reports
    }
}
