// The runtime's tuning switches, read through `Environment` (the only place the toolkit reads
// environment variables) and mapped onto `RuntimeOptions`. They are for A/B measurements;
// docs/PERFORMANCE.md lists them. A value that does not parse is a usage error.

import ArgumentParser
import Kernels
import Runtime

enum RuntimeEnvironment {
    /// The switches and what they set:
    /// - `MANET_CONV=automatic|direct|winograd2|winograd4`: `convolution`;
    /// - `MANET_PACKED=0`: no `.packFilters` (inference filters stay as written, for OpenBLAS);
    /// - `MANET_BRANCHES=1|0`: `.concurrentBranches` on / off;
    /// - `MANET_SIBLINGS=1|0`: `.siblingSteps` on / off;
    /// - `MANET_FUSE_GATES=0`: no `.fuseGates` (CBAM's pools, reductions and Mul -> Add as written);
    /// - `MANET_POOL_TAKE=1|0`: whether a parallel loop's calling thread runs the parts its
    ///   workers have not taken by the time its own is done (`setPoolCallerTakesLateParts`,
    ///   process-wide: the worker pool is one per process);
    /// - `MANET_MIN_TILES=N`: `winogradMinimumTiles`;
    /// - `MANET_WINOGRAD_KEEP=MiB`: `winogradKeepBytes`;
    /// - `MANET_KERNELS=automatic|avx512|avx2|portable`: `kernels.isa`;
    /// - `MANET_GEMM=automatic|own|openblas`: `kernels.gemm` (who runs the general GEMMs);
    /// - `MANET_IMPLICIT=0`: `kernels.implicitConvolution` off;
    /// - `MANET_SPLIT=columns|blocks`: `kernels.convolutionSplit`;
    /// - `MANET_WINO_CB=N`: `kernels.winogradChunkChannels`;
    /// - `MANET_WINO_CHUNK=MiB`: `kernels.winogradCacheChunkFloats`;
    /// - `MANET_WINO_BAND=N`: `kernels.winogradBandTiles` (0: the point order);
    /// - `MANET_WDW4=0`: `kernels.weightGradientF4x4` off (training's 7x7 dW by F(3x3,2x2));
    /// - `MANET_TRAIN_WINOGRAD=14x14|all|7x7`: `kernels.trainingWinograd`.
    static func options(threads: Int, deterministic: Bool, optimizations: GraphOptimizations) throws -> RuntimeOptions {
        var o = RuntimeOptions(threads: threads, deterministic: deterministic, optimizations: optimizations)
        func value<T>(_ name: String, _ parse: (String) -> T?, expected: String) throws -> T? {
            guard let text = Environment.value(name) else { return nil }
            guard let v = parse(text) else { throw ValidationError("\(name)=\(text): expected \(expected)") }
            return v
        }
        func count(_ text: String) -> Int? { Int(text).flatMap { $0 >= 0 && $0 < 1 << 30 ? $0 : nil } }
        func flag(_ text: String) -> Bool? { text == "1" ? true : text == "0" ? false : nil }
        let algorithms = ConvolutionAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
        if let c = try value("MANET_CONV", ConvolutionAlgorithm.init(rawValue:), expected: "one of \(algorithms)") {
            o.convolution = c
        }
        if let packed = try value("MANET_PACKED", flag, expected: "0 or 1"), !packed { o.optimizations.remove(.packFilters) }
        if let gates = try value("MANET_FUSE_GATES", flag, expected: "0 or 1"), !gates { o.optimizations.remove(.fuseGates) }
        if let branches = try value("MANET_BRANCHES", flag, expected: "0 or 1") {
            if branches { o.optimizations.insert(.concurrentBranches) } else { o.optimizations.remove(.concurrentBranches) }
        }
        if let take = try value("MANET_POOL_TAKE", flag, expected: "0 or 1") { setPoolCallerTakesLateParts(take) }
        if let siblings = try value("MANET_SIBLINGS", flag, expected: "0 or 1") {
            if siblings { o.optimizations.insert(.siblingSteps) } else { o.optimizations.remove(.siblingSteps) }
        }
        o.winogradMinimumTiles = try value("MANET_MIN_TILES", count, expected: "a count of tiles")
        o.winogradKeepBytes = try value("MANET_WINOGRAD_KEEP", count, expected: "MiB").map { $0 << 20 }
        let isas = KernelISA.allCases.map(\.rawValue).joined(separator: ", ")
        if let isa = try value("MANET_KERNELS", KernelISA.init(rawValue:), expected: "one of \(isas)") { o.kernels.isa = isa }
        let backends = GEMMBackend.allCases.map(\.rawValue).joined(separator: ", ")
        if let gemm = try value("MANET_GEMM", GEMMBackend.init(rawValue:), expected: "one of \(backends)") { o.kernels.gemm = gemm }
        if let implicit = try value("MANET_IMPLICIT", flag, expected: "0 or 1") { o.kernels.implicitConvolution = implicit }
        o.kernels.convolutionSplit = try value("MANET_SPLIT", ConvolutionSplit.init(rawValue:), expected: "columns or blocks")
        if let cb = try value("MANET_WINO_CB", count, expected: "a channel count (0: off)") { o.kernels.winogradChunkChannels = cb }
        if let mib = try value("MANET_WINO_CHUNK", count, expected: "MiB") { o.kernels.winogradCacheChunkFloats = mib << 18 }
        if let band = try value("MANET_WINO_BAND", count, expected: "a count of tiles (0: off)") {
            o.kernels.winogradBandTiles = band
        }
        if let f4 = try value("MANET_WDW4", flag, expected: "0 or 1") { o.kernels.weightGradientF4x4 = f4 }
        let reaches = TrainingWinograd.allCases.map(\.rawValue).joined(separator: ", ")
        if let reach = try value("MANET_TRAIN_WINOGRAD", TrainingWinograd.init(rawValue:), expected: "one of \(reaches)") {
            o.kernels.trainingWinograd = reach
        }
        return o
    }
}
