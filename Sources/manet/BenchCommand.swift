// `manet bench`: times the interpreter on an ONNX model, or MA-Net training steps, on synthetic data.

import ArgumentParser
import Foundation
import Kernels
import MANet
import ManetSupport
import ONNXFormat
import ONNXIR
import Runtime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time inference on an ONNX model, or MA-Net training steps (--train), on synthetic inputs.",
        discussion: """
            Inference: MODEL is run --warmup times untimed, then --iterations times; each run's wall \
            time is reported in milliseconds with the minimum, the median and images/s (batch / \
            median). A symbolic batch dim takes --batch-size (a fixed one is kept); inputs are uniform [0, 1) from a fixed seed.

            Training (--train): MA-Net of --width and --input-size is built from a fixed seed and \
            trained on one synthetic batch through the trainer's own step (forward in training \
            mode, loss of both heads, backward, SGD with momentum and weight decay).

            Peak RSS is the process's VmHWM from /proc/self/status after the last iteration: \
            model, weights, activations and everything else the process ever held at once.

            The report names who ran the general GEMMs (our kernels' instruction set, or \
            openblas) and the kernels OpenBLAS chose for this CPU; it warns when those are below \
            what the CPU supports (the GEMMs then run on our kernels).

            ENVIRONMENT (switches for A/B runs, docs/PERFORMANCE.md):
              MANET_CONV=automatic|direct|winograd2|winograd4   convolution algorithm
              MANET_KERNELS=automatic|avx512|avx2|portable      our GEMM kernels' instruction set
              MANET_GEMM=automatic|own|openblas                  who runs the general GEMMs
              MANET_PACKED=0   MANET_IMPLICIT=0   MANET_SPLIT=columns|blocks   MANET_BRANCHES=0|1
              MANET_SIBLINGS=0   every step alone over all the threads (no siblings side by side)
              MANET_POOL_TAKE=0  a parallel loop's caller waits for late workers instead of taking their parts
              MANET_WINOGRAD_KEEP=MiB   MANET_MIN_TILES=N   MANET_WINO_CB=N   MANET_WINO_CHUNK=MiB
              MANET_WINO_BAND=N   Winograd tiles per band (0: the point order)
              MANET_FUSE_GATES=0   CBAM's pools, reductions and Mul -> Add as written
              MANET_WDW4=0   training's 7x7 dW by F(3x3,2x2) instead of F(3x3,4x4)
              MANET_TRAIN_WINOGRAD=14x14|all|7x7                 training's Winograd layers

            EXAMPLES:
              manet bench model.onnx --batch-size 16 --iterations 20
              manet bench --train --width 64 --batch-size 16 --json
            """)

    @Argument(help: "The ONNX model to time (inference).") var model: String?
    @Flag(help: "Time training steps of a freshly built MA-Net instead of inference.") var train = false
    @Option(help: "Images per run (default 1; a model with a fixed batch dim runs its own).") var batchSize: Int?
    @Option(name: .customLong("batch"), help: .hidden) var batchAlias: Int?
    /// The batch the user asked for (nil: the default, 1).
    var requestedBatch: Int? { batchSize ?? batchAlias }
    @Option(help: "Timed runs.") var iterations = 10
    @Option(help: "Untimed runs first (default: 2 for inference, 1 for training).") var warmup: Int?
    @Option(help: "Compute threads (default: all cores).") var threads = ExecutionContext.defaultThreads
    @Option(help: "Training: stem channels (64 = the paper).") var width = 64
    @Option(help: "Training: input side in pixels.") var inputSize = 224
    @Flag(help: "Inference: run the graph as written, without the inference optimisation passes (BN folding, fusion, ...).")
    var noOptimize = false
    @Flag(help: "Same bits run to run (the trainer's default; inference defaults to off).") var deterministic = false
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: MemoryLimit.help) var maxMemory: MemoryLimit?
    @Flag(help: "Inference: also run the graph as written on the same input and print the largest difference of the optimised outputs (relative to max(1, max|reference|)).")
    var compareUnoptimized = false
    @Option(help: "Training: afterwards, write the trainer's checkpoint here (for `manet export`).")
    var saveCheckpoint: String?
    @Flag(help: "Print the time per operator type and per convolution shape of the timed runs (to stderr); with --train, forward and backward of each, and the loss and SGD update.")
    var profile = false
    @Option(help: "Only write MA-Net of --width and --input-size, as the builder makes it, to this ONNX file (external data beside it).")
    var writeModel: String?

    func validate() throws {
        if writeModel != nil {
            guard !train && model == nil else { throw ValidationError("--write-model takes no MODEL and no --train") }
            return
        }
        if saveCheckpoint != nil && !train { throw ValidationError("--save-checkpoint needs --train") }
        if maxMemory != nil && model == nil { throw ValidationError("--max-memory applies to a MODEL") }
        if train && model != nil { throw ValidationError("--train builds its own MA-Net; give no MODEL") }
        if !train && model == nil { throw ValidationError("give an ONNX MODEL, or --train") }
        guard requestedBatch ?? 1 >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must not be negative") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if train {
            do { try MANetModel.validate(numClasses: 7, width: width, inputSize: inputSize) } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    func run() throws {
        if let writeModel {
            let built = try MANetModel.build(numClasses: 7, width: width, inputSize: inputSize, seed: 0)
            try ONNXFile.save(built, to: writeModel, externalData: true)
            print("wrote \(writeModel): MA-Net width \(width), \(inputSize)x\(inputSize), builder graph")
            return
        }
        var timings: [Double] = []
        var label: String
        var batch = requestedBatch ?? 1
        if train {
            label = "training step, MA-Net width \(width), \(inputSize)x\(inputSize)"
            timings = try timeTraining(batch: batch)
        } else {
            label = "inference, \(model!)"
            (timings, batch) = try timeInference(path: model!)
        }
        var report = Report(mode: train ? "train" : "inference", what: label, batch: batch, threads: threads,
                            iterations_ms: timings, peakRSS: Self.peakRSSBytes())
        report.cpu_median_ms = measuredCPUMedian
        let isa = try RuntimeEnvironment.options(threads: threads, deterministic: deterministic, optimizations: .none).kernels
        report.kernels = GEMM.usesOpenBLAS(isa) ? "openblas" : GEMM.resolved(isa.isa).rawValue
        report.transforms_kernels = GEMM.resolved(isa.isa).rawValue
        report.packed_kernels = PackedFilters.variant(for: isa.isa).rawValue
        report.openblas_core = GEMM.openBLASCoreName
        let cpuBest = GEMM.resolved(.automatic)
        if let warning = Self.openBLASWarning(core: report.openblas_core, cpuBest: cpuBest) {
            FileHandle.standardError.write(Data("manet: warning: \(warning)\n".utf8))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("\(label): batch \(batch), \(threads) thread(s), \(iterations) iterations")
            print("  kernels: \(report.kernels) (CPU's best: \(cpuBest.rawValue)), Winograd transforms "
                  + "\(report.transforms_kernels), packed GEMM \(report.packed_kernels), OpenBLAS core: \(report.openblas_core)")
            print("  per iteration (ms): " + timings.map { String(format: "%.1f", $0) }.joined(separator: " "))
            print(String(format: "  min %.2f ms, median %.2f ms, %.2f images/s, peak RSS %.1f MiB, process CPU %.1f ms per iteration",
                         report.min_ms, report.median_ms, report.images_per_second,
                         Double(report.peak_rss_bytes) / 1_048_576, report.cpu_median_ms))
        }
    }

    /// A warning when OpenBLAS runs kernels below the CPU's vector width: it does not know the
    /// CPU (e.g. "Prescott" on an AVX-512 Xeon its version predates) or OPENBLAS_CORETYPE says so.
    static func openBLASWarning(core: String, cpuBest: KernelISA) -> String? {
        if GEMM.coreMatches(core, cpuBest) { return nil }
        return "OpenBLAS runs its \(core) kernels on a CPU with \(cpuBest.rawValue): the general GEMMs run on our "
            + "own kernels instead (MANET_GEMM=openblas would hand them to OpenBLAS's slow ones)"
    }

    /// What `--json` prints.
    struct Report: Encodable {
        var mode: String
        var what: String
        var batch: Int
        var threads: Int
        var iterations_ms: [Double]
        var min_ms: Double
        var median_ms: Double
        var images_per_second: Double
        var peak_rss_bytes: Int
        /// Median process CPU time per iteration (all threads): work, as opposed to waiting,
        /// when other jobs load the machine.
        var cpu_median_ms: Double = 0
        /// The instruction set our GEMM kernels ran ("openblas" when the GEMMs went to OpenBLAS).
        var kernels = ""
        /// The variant the Winograd transforms (and chunked GEMMs) ran.
        var transforms_kernels = ""
        /// The variant the packed-filter GEMM tiles ran ("avx2" or "portable").
        var packed_kernels = ""
        /// OpenBLAS's kernels for this CPU (`openblas_get_corename`).
        var openblas_core = ""

        init(mode: String, what: String, batch: Int, threads: Int, iterations_ms: [Double], peakRSS: Int) {
            self.mode = mode
            self.what = what
            self.batch = batch
            self.threads = threads
            self.iterations_ms = iterations_ms
            let sorted = iterations_ms.sorted()
            min_ms = sorted.first ?? 0
            // The median of an even count is the mean of the middle two, as numpy's.
            let mid = sorted.count / 2
            median_ms = sorted.isEmpty ? 0 : sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
            images_per_second = median_ms > 0 ? Double(batch) * 1000 / median_ms : 0
            peak_rss_bytes = peakRSS
        }
    }

    /// The timings and the batch that ran (a fixed batch dim is the model's own).
    func timeInference(path: String) throws -> (timings: [Double], batch: Int) {
        let graphModel = try ONNXFile.load(path: path, maxMemory: maxMemory?.bytes)
        var batch = requestedBatch ?? 1
        var batchFromModel = false
        let runtime = try RuntimeEnvironment.options(threads: threads, deterministic: deterministic,
                                                     optimizations: noOptimize ? .none : .inference)
        var asWritten = runtime
        asWritten.optimizations = .none
        var generator = Xoshiro256(seed: 1)
        var feeds: [String: Tensor] = [:]
        let initializers = Set(graphModel.graph.initializers.map(\.name))
        for input in graphModel.graph.inputs where !initializers.contains(input.name) {
            guard case .tensor(let element, let dims?)? = input.type else {
                throw CLIError("\(path): input '\(input.name)' has no tensor type to synthesise data for")
            }
            // The first dim is the batch whatever it is called; a fixed one is the model's (a
            // different --batch-size cannot run, so it is noted and not used); other unknown dims
            // are refused.
            var shape: [Int] = []
            for (axis, d) in dims.enumerated() {
                switch d {
                case .fixed(let n):
                    // The first input's first dim is the batch that is reported.
                    if axis == 0 && n != batch && !batchFromModel && feeds.isEmpty {
                        if let requested = requestedBatch {
                            printError("manet: note: \(path): input '\(input.name)' has a fixed batch of \(n); --batch-size \(requested) does not apply")
                        }
                        batch = n
                        batchFromModel = true
                    }
                    shape.append(n)
                default:
                    guard axis == 0 else { throw CLIError("\(path): input '\(input.name)' has an unknown dim \(axis); bench can fill only the batch dim") }
                    shape.append(batch)
                }
            }
            let count = shape.reduce(1, *)
            switch element {
            case .float, .float16, .bfloat16, .double:
                feeds[input.name] = Tensor(shape: shape, floats: (0..<count).map { _ in generator.nextUnitFloat() })
            default:
                feeds[input.name] = Tensor(shape: shape, ints: [Int64](repeating: 0, count: count))
            }
        }
        let reference = try compareUnoptimized ? Executor(model: graphModel, options: asWritten).run(inputs: feeds) : nil
        // The executor takes the model over (its weights are then held once) and, optimised,
        // keeps only the folded weights.
        let executor = try Executor(model: consume graphModel, options: runtime)
        executor.freezeForInference()
        if let reference {
            let optimised = try executor.run(inputs: feeds)
            for (name, r) in reference.sorted(by: { $0.key < $1.key }) where r.dtype == .float32 {
                let o = optimised[name]!.floats
                let scale = max(1, r.floats.map { abs($0) }.max() ?? 0)
                let diff = zip(o, r.floats).map { abs($0 - $1) }.max() ?? 0
                let top1Same = r.rank == 2 ? (0..<r.shape[0]).allSatisfy { n in
                    let c = r.shape[1]
                    let a = (0..<c).max { r.floats[n * c + $0] < r.floats[n * c + $1] }
                    let b = (0..<c).max { o[n * c + $0] < o[n * c + $1] }
                    return a == b
                } : true
                print("compare \(name): max |optimised - as written| = \(diff), relative \(diff / scale), identical top-1: \(top1Same)")
            }
        }
        let profiler = profile ? ExecutionProfile() : nil
        let timings = try measure(warmup: warmup ?? 2, afterWarmup: { executor.profile = profiler }) {
            _ = try executor.run(inputs: feeds)
        }
        if let profiler {
            FileHandle.standardError.write(Data((profiler.report(runs: iterations) + "\n").utf8))
        }
        return (timings, batch)
    }

    func timeTraining(batch: Int) throws -> [Double] {
        var options = TrainingOptions()
        options.width = width
        options.inputSize = inputSize
        options.threads = threads
        options.deterministic = deterministic || options.deterministic
        options.runtime = try RuntimeEnvironment.options(threads: threads, deterministic: options.deterministic,
                                                         optimizations: .none)
        let classNames = (0..<7).map(String.init)
        let trainer = try Trainer(options: options, classNames: classNames)
        var generator = Xoshiro256(seed: 2)
        let count = batch * 3 * inputSize * inputSize
        let images = Tensor(shape: [batch, 3, inputSize, inputSize], floats: (0..<count).map { _ in generator.nextUnitFloat() })
        let labels = (0..<batch).map { $0 % 7 }
        let profiler = profile ? ExecutionProfile() : nil
        let timings = try measure(warmup: warmup ?? 1, afterWarmup: { trainer.executor.profile = profiler }) {
            try trainer.step(images: images, labels: labels)
        }
        if let profiler {
            FileHandle.standardError.write(Data((profiler.report(runs: iterations) + "\n").utf8))
        }
        if let saveCheckpoint { try trainer.makeCheckpoint().write(to: saveCheckpoint) }
        return timings
    }

    /// Wall-clock milliseconds of each timed call; the process CPU milliseconds go to stderr,
    /// which tells work from waiting when other jobs load the machine.
    func measure(warmup: Int, afterWarmup: () -> Void = {}, _ body: () throws -> Void) throws -> [Double] {
        for _ in 0..<warmup { try body() }
        afterWarmup()
        var timings: [Double] = []
        var cpu: [Double] = []
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            let cpuStart = Self.processCPUMilliseconds()
            try body()
            cpu.append(Self.processCPUMilliseconds() - cpuStart)
            timings.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        let sortedCPU = cpu.sorted()
        measuredCPUMedian = sortedCPU.count % 2 == 1 ? sortedCPU[sortedCPU.count / 2]
            : (sortedCPU[sortedCPU.count / 2 - 1] + sortedCPU[sortedCPU.count / 2]) / 2
        return timings
    }

    static func processCPUMilliseconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) * 1000 + Double(t.tv_nsec) / 1e6
    }

    /// VmHWM (the resident-set high-water mark) of this process, in bytes; 0 where /proc lacks it.
    static func peakRSSBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return 0
    }
}

/// The median process CPU milliseconds of the last `measure` (a command's methods cannot mutate it).
nonisolated(unsafe) private var measuredCPUMedian = 0.0

extension Xoshiro256 {
    /// Uniform in [0, 1) from the top 24 bits (every value exactly a float).
    fileprivate mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }
}
