// Every choice a run makes, as one value: passed to the Executor, carried by the ExecutionContext
// to every operator and from there to the kernels. No library reads the environment; the
// command line maps its flags (and documented environment variables) onto this value.

import Kernels

/// How the runtime computes: threads, determinism, the inference rewrites, the convolution
/// algorithm, the Winograd budget and the kernels' own choices (`KernelOptions`). The defaults
/// are what the benchmarks chose.
///
/// ```swift
/// var options = RuntimeOptions(threads: 2)
/// options.convolution = .direct          // no Winograd
/// options.kernels.isa = .avx2            // force the AVX2 kernels
/// let executor = try Executor(model: model, options: options)
/// ```
public struct RuntimeOptions: Sendable, Equatable {
    /// Intra-op threads for kernels (default: the machine's cores).
    public var threads: Int
    /// Same bits run to run: no reductions whose order depends on thread timing, and no
    /// independent branches run at the same time.
    public var deterministic: Bool
    /// Inference-time rewrites (`GraphOptimizations`); training runs never use them.
    public var optimizations: GraphOptimizations
    /// Which convolution algorithm may run: Winograd tiles for inference (with
    /// `.winograd` in `optimizations`) and for training's forward and dX.
    public var convolution: ConvolutionAlgorithm
    /// Tiles over the batch from which a Winograd tile pays; nil: the measured thresholds
    /// (`WinogradPath.minimumTiles`).
    public var winogradMinimumTiles: Int?
    /// Bytes of transformed Winograd filters an inference plan keeps between runs; nil: a
    /// quarter of the weights.
    public var winogradKeepBytes: Int?
    /// The kernels' choices: instruction set, convolution schedules.
    public var kernels: KernelOptions

    public init(threads: Int = RuntimeOptions.defaultThreads, deterministic: Bool = false,
                optimizations: GraphOptimizations = .none, convolution: ConvolutionAlgorithm = .automatic,
                winogradMinimumTiles: Int? = nil, winogradKeepBytes: Int? = nil, kernels: KernelOptions = .default) {
        self.threads = max(1, threads)
        self.deterministic = deterministic
        self.optimizations = optimizations
        self.convolution = convolution
        self.winogradMinimumTiles = winogradMinimumTiles
        self.winogradKeepBytes = winogradKeepBytes
        self.kernels = kernels
    }

    /// The machine's active cores.
    public static var defaultThreads: Int { ExecutionContext.defaultThreads }
}
