// `manet env`: the facts a bug report needs, in one block to paste.

import _CKernels
import _COpenBLAS
import ArgumentParser
import Foundation
import Kernels
import MANet
import Parity
import Runtime

struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Print the toolkit, compiler, CPU, OpenBLAS and kernel facts a bug report needs.",
        discussion: """
            One block: the toolkit version, the Swift compiler it was built with, the CPU model and \
            its vector extensions, the OpenBLAS build (version, the core it detected, its threads), \
            the C kernels' variants this CPU runs (and those MANET_KERNELS forces), the default thread count, and whether the \
            onnxruntime of `manet verify --against onnxruntime` was found (the tools venv's python).

            EXAMPLES:
              manet env
              manet env --json
            """)

    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let facts = Self.facts()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
            let object = Dictionary(uniqueKeysWithValues: facts.map { ($0.key, $0.value) })
            print(String(decoding: try encoder.encode(object), as: UTF8.self))
        } else {
            let width = facts.map(\.key.count).max() ?? 0
            for (key, value) in facts {
                print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
            }
        }
    }

    /// The facts in print order.
    static func facts() -> [(key: String, value: String)] {
        var facts: [(String, String)] = []
        facts.append(("manet", MANetExporter.toolkitVersion))
        facts.append(("swift", swiftVersion))
        var uts = utsname()
        uname(&uts)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        facts.append(("os", "\(field(uts.sysname)) \(field(uts.release)) \(field(uts.machine))"))
        let (model, flags) = cpuInfo()
        facts.append(("cpu", model ?? "unknown"))
        let wanted = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "neon", "asimd"]
        facts.append(("cpu vector extensions", wanted.filter(flags.contains).joined(separator: " ")))
        facts.append(("cpu cores", "\(ProcessInfo.processInfo.activeProcessorCount) (default --threads \(ExecutionContext.defaultThreads))"))
        facts.append(("openblas", openblas_get_config().map { String(cString: $0) } ?? "unknown"))
        facts.append(("openblas core", openblas_get_corename().map { String(cString: $0) } ?? "unknown"))
        facts.append(("openblas threads", String(openblas_get_num_threads())))
        facts.append(("kernels: winograd, pooling", String(cString: manet_kernels_multiversion_variant())))
        facts.append(("kernels: packed gemm", String(cString: manet_kernels_packed_gemm_variant())))
        // What runs with MANET_KERNELS as set now (the lines above are the CPU's own picks).
        if let isa = (try? RuntimeEnvironment.options(threads: 1, deterministic: false, optimizations: .none))?.kernels.isa {
            facts.append(("kernels: MANET_KERNELS", "\(isa.rawValue): winograd transforms \(GEMM.resolved(isa).rawValue), "
                          + "packed gemm \(PackedFilters.variant(for: isa).rawValue), own gemm \(GEMM.resolved(isa).rawValue)"))
        }
        facts.append(("kernels: general gemm", GEMM.usesOpenBLAS(.default) ? "openblas (its core matches the CPU)"
                          : "own, \(GEMM.resolved(.automatic).rawValue) (OpenBLAS's core is below the CPU)"))
        facts.append(("onnxruntime", onnxruntime()))
        return facts
    }

    /// The compiler's version, from the compiler's own conditionals.
    static var swiftVersion: String {
        #if compiler(>=6.4)
        return ">= 6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }

    /// `model name` and the flags of /proc/cpuinfo's first processor (Linux).
    static func cpuInfo() -> (String?, Set<String>) {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return (nil, []) }
        var model: String?
        var flags: Set<String> = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if model == nil && parts[0] == "model name" { model = parts[1] }
            if flags.isEmpty && (parts[0] == "flags" || parts[0] == "Features") { flags = Set(parts[1].split(separator: " ").map(String.init)) }
        }
        return (model, flags)
    }

    /// The onnxruntime version the tools venv's python imports, or why there is none.
    static func onnxruntime() -> String {
        guard let python = try? Environment.onnxruntimeRunner().python else {
            return "not found (no tools/.venv/bin/python here or beside the binary; `make deps` creates it, MANET_PYTHON names another)"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import onnxruntime, onnx; print(onnxruntime.__version__, 'onnx', onnx.__version__)"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try process.run() } catch { return "not found (\(python) does not start: \(error.localizedDescription))" }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return "not found (\(python) cannot import onnxruntime and onnx)" }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) + " (\(python))"
    }
}
