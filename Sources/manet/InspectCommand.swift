// `manet inspect MODEL`: what an ONNX file holds, whether it is valid, and what the interpreter lacks.

import ArgumentParser
import Foundation
import ONNXFormat
import ONNXIR
import Runtime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Summarise an ONNX model: opsets, inputs and outputs, operators, parameters, validity.",
        discussion: """
            Prints the IR version, producer, opset imports, inputs and outputs with their dims \
            (symbolic dims by name), the node count and a histogram of operators, the parameter \
            count (elements of all initializers) and bytes, the external-data files read, the \
            ONNX checker's verdict, and every node the interpreter cannot run yet.
            Exit status: 0 when the model is valid, 2 (with `manet: error: FILE: REASON` on \
            stderr) when it cannot be read or is invalid; the report is still printed when the \
            file could be read.

            EXAMPLES:
              manet inspect model.onnx
              manet inspect model.onnx --json
            """)

    @Argument(help: "The ONNX model file (external data is read from its folder).")
    var model: String

    @Option(help: MemoryLimit.help)
    var maxMemory: MemoryLimit?

    @Flag(help: "Print the report as JSON, for scripts.")
    var json = false

    func run() throws {
        let loaded: LoadedModel
        do {
            loaded = try ONNXFile.loadWithDetails(path: model, maxMemory: maxMemory?.bytes)
        } catch let error as ONNXFormatError {
            throw fail(error.description)
        }
        let report = InspectReport(path: model, loaded: loaded)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(report.text, terminator: "")
        }
        if let problem = report.checker.problem {
            throw fail("\(model): \(problem)")
        }
    }

    /// Writes the error line and returns the exit code to throw.
    private func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("manet: error: \(message)\n".utf8))
        return ExitCode(2)
    }
}

/// Everything `inspect` reports, encodable as the `--json` output.
struct InspectReport: Encodable {
    struct Opset: Encodable { var domain: String; var version: Int64 }
    struct Value: Encodable { var name: String; var type: String; var elementType: String?; var dims: [String]? }
    struct OpCount: Encodable { var opType: String; var domain: String; var count: Int }
    struct Parameters: Encodable { var tensors: Int; var elements: Int; var bytes: Int }
    struct ExternalFile: Encodable { var location: String; var tensors: Int; var bytes: Int }
    struct Checker: Encodable {
        /// `valid`, `invalid`, or `skipped` (opset newer than libonnx knows, but run by the runtime).
        var status: String
        var message: String?
        /// Set when the verdict makes `inspect` fail.
        var problem: String? { status == "valid" || status == "skipped" ? nil : message }
        enum CodingKeys: String, CodingKey { case status, message }
    }
    struct Unsupported: Encodable { var name: String; var opType: String; var domain: String; var opset: Int64 }

    var file: String
    var irVersion: Int64
    var producer: String
    var producerVersion: String
    var opsets: [Opset]
    var inputs: [Value]
    var outputs: [Value]
    var nodeCount: Int
    var operators: [OpCount]
    var parameters: Parameters
    var externalData: [ExternalFile]
    var checker: Checker
    var unsupportedNodes: [Unsupported]

    init(path: String, loaded: LoadedModel) {
        let model = loaded.model
        file = path
        irVersion = model.irVersion
        producer = model.producerName
        producerVersion = model.producerVersion
        opsets = model.opsetImports.map { Opset(domain: $0.domain.isEmpty ? "ai.onnx" : $0.domain, version: $0.version) }
        // Initializers listed as graph inputs (IR < 4 style) are parameters, not inputs a user feeds.
        let initializerNames = Set(model.graph.initializers.map(\.name))
        inputs = model.graph.inputs.filter { !initializerNames.contains($0.name) }.map(InspectReport.value)
        outputs = model.graph.outputs.map(InspectReport.value)

        var counts: [String: (domain: String, opType: String, count: Int)] = [:]
        var total = 0
        func visit(_ graph: Graph) {
            for node in graph.nodes {
                total += 1
                let key = node.domain + "\u{0}" + node.opType
                counts[key, default: (node.domain, node.opType, 0)].count += 1
                for attribute in node.attributes {
                    if case .graph(let g) = attribute.value { visit(g) }
                    if case .graphs(let gs) = attribute.value { gs.forEach(visit) }
                }
            }
        }
        visit(model.graph)
        nodeCount = total
        operators = counts.values
            .sorted { ($0.count, $1.domain, $1.opType) > ($1.count, $0.domain, $0.opType) }
            .map { OpCount(opType: $0.opType, domain: $0.domain.isEmpty ? "ai.onnx" : $0.domain, count: $0.count) }

        var elements = 0
        var bytes = 0
        for t in model.graph.initializers {
            elements &+= t.elementType == .string ? t.strings.count : (t.elementCount ?? 0)
            bytes &+= t.elementType == .string ? t.strings.reduce(0) { $0 + $1.count } : t.bytes.count
        }
        parameters = Parameters(tensors: model.graph.initializers.count, elements: elements, bytes: bytes)

        externalData = loaded.externalDataFiles.map { location in
            let refs = loaded.externalData.filter { $0.location == location }
            return ExternalFile(location: location, tensors: refs.count, bytes: refs.reduce(0) { $0 + $1.length })
        }

        checker = InspectReport.runChecker(model, path: path)
        unsupportedNodes = OperatorRegistry.standard.unsupportedNodes(in: model).map {
            Unsupported(name: $0.name, opType: $0.opType, domain: $0.domain.isEmpty ? "ai.onnx" : $0.domain, opset: $0.opset)
        }
    }

    /// The checker's verdict. An opset newer than libonnx 1.12 knows cannot be checked; when the
    /// interpreter has operators registered for that opset the model is still usable, so the
    /// check is reported as skipped rather than failed.
    static func runChecker(_ model: Model, path: String) -> Checker {
        do {
            try ONNXFile.checkOpsets(model, file: path)
        } catch let error as ONNXFormatError {
            if case .unknownOpset(_, let domain, let version, .some) = error,
               OperatorRegistry.standard.registrations.contains(where: {
                   ($0.domain == "ai.onnx" ? "" : $0.domain) == domain && $0.opsets.contains(version)
               }) {
                return Checker(status: "skipped", message: error.reason + "; the interpreter supports it")
            }
            return Checker(status: "invalid", message: error.reason)
        } catch {
            return Checker(status: "invalid", message: String(describing: error))
        }
        switch ONNXFile.verdict(model) {
        case .valid: return Checker(status: "valid", message: nil)
        case .invalid(let message): return Checker(status: "invalid", message: message)
        }
    }

    static func value(_ info: ValueInfo) -> Value {
        switch info.type {
        case .tensor(let elementType, let shape)?:
            return Value(name: info.name, type: "tensor", elementType: elementType?.description ?? "undefined",
                         dims: shape?.map(\.description))
        case let other?:
            return Value(name: info.name, type: String(describing: other), elementType: nil, dims: nil)
        case nil:
            return Value(name: info.name, type: "untyped", elementType: nil, dims: nil)
        }
    }

    /// The human-readable report.
    var text: String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        func grouped(_ n: Int) -> String {
            let digits = Array(String(n))
            var s = ""
            for (i, c) in digits.enumerated() {
                if i > 0 && (digits.count - i) % 3 == 0 { s += "," }
                s.append(c)
            }
            return s
        }
        func shape(_ v: Value) -> String {
            guard let element = v.elementType else { return v.type }
            return "\(element) " + (v.dims.map { "[" + $0.joined(separator: ", ") + "]" } ?? "(rank unknown)")
        }
        line("Model:       \(file)")
        line("IR version:  \(irVersion)")
        line("Producer:    \(producer.isEmpty ? "(none)" : producer)\(producerVersion.isEmpty ? "" : " " + producerVersion)")
        line("Opsets:      " + (opsets.isEmpty ? "(none)" : opsets.map { "\($0.domain) \($0.version)" }.joined(separator: ", ")))
        line("Inputs:")
        for v in inputs { line("  \(v.name): \(shape(v))") }
        line("Outputs:")
        for v in outputs { line("  \(v.name): \(shape(v))") }
        line("Nodes:       \(nodeCount)")
        let width = operators.map { ($0.domain == "ai.onnx" ? $0.opType : "\($0.domain).\($0.opType)").count }.max() ?? 0
        for op in operators {
            let name = op.domain == "ai.onnx" ? op.opType : "\(op.domain).\(op.opType)"
            line("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(op.count)")
        }
        line("Parameters:  \(grouped(parameters.elements)) elements in \(parameters.tensors) initializers, \(grouped(parameters.bytes)) bytes")
        if externalData.isEmpty {
            line("External data: none")
        } else {
            line("External data:")
            for f in externalData { line("  \(f.location): \(f.tensors) tensors, \(grouped(f.bytes)) bytes") }
        }
        line("Checker:     \(checker.status)\(checker.message.map { ": " + $0 } ?? "")")
        if unsupportedNodes.isEmpty {
            line("Unsupported by the interpreter: none")
        } else {
            line("Unsupported by the interpreter: \(unsupportedNodes.count) nodes")
            for u in unsupportedNodes {
                line("  \(u.opType) (\(u.domain) opset \(u.opset)): \(u.name.isEmpty ? "(unnamed node)" : u.name)")
            }
        }
        return out
    }
}
