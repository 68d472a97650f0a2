// Which inference-time rewrites of a planned graph the executor may apply.

/// Optional passes for inference runs (`context.training == false`). Each one keeps results
/// within float rounding of the graph as written; a parity check turns them off with `.none`.
/// Training runs always execute the graph as written: BN batch statistics and gradients need it.
public struct GraphOptimizations: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// BatchNormalization after a Conv (with running statistics) folded into the Conv's
    /// weights and bias, computed from the current initializers.
    public static let foldBatchNorm = GraphOptimizations(rawValue: 1 << 0)
    /// A Relu that is the only reader of a Conv output applied inside the Conv.
    public static let fuseRelu = GraphOptimizations(rawValue: 1 << 1)
    /// Twins in independent branches (the same operator on the same shapes: MA-Net's four
    /// patches, the two cascades of a multi-scale block) run side by side, one thread each;
    /// every other step alone over all the threads (`ConcurrentExecution.swift`). The same bits
    /// as one step at a time. Off with `deterministic` (no steps at the same time). Opt-in
    /// (`MANET_BRANCHES=1` in the CLI): it pays only on a machine busy with other work.
    public static let concurrentBranches = GraphOptimizations(rawValue: 1 << 2)

    /// 3x3 stride-1 convolutions through Winograd where it pays (tiles by
    /// `RuntimeOptions.convolution`); results differ from the direct path by float rounding of
    /// the transforms (measured in WinogradTests).
    public static let winograd = GraphOptimizations(rawValue: 1 << 3)

    /// A Relu that is the only reader of an Add output (residual blocks) applied inside the Add:
    /// one pass and one tensor fewer, the same bits.
    public static let fuseAddRelu = GraphOptimizations(rawValue: 1 << 4)

    /// Convolution filters packed once, when the plan is made, into the layout of the
    /// packed-filter GEMM (`Kernels/PackedFilters.swift`), replacing the weights (not a second
    /// copy); no call re-packs them. Without it they go to OpenBLAS as written.
    public static let packFilters = GraphOptimizations(rawValue: 1 << 5)

    /// Siblings side by side inside the sequential loop: a run of consecutive plan steps that
    /// do not depend on each other (a plan lists MA-Net's four patches' steps one after another)
    /// shares the threads, one step on one thread each, for its steps whose operator, attributes
    /// and input shapes repeat in the run (`Plan.siblingRuns`, `SiblingSteps.swift`); the run's
    /// other steps run alone over all the threads. One fork/join per run instead of one or more
    /// per step, and the small operators that run on one thread (pooling, Gemm on one row, Mul,
    /// Sigmoid...) no longer leave the other cores idle. The same bits as one step at a time.
    /// Off with `deterministic`; `.concurrentBranches` takes precedence.
    public static let siblingSteps = GraphOptimizations(rawValue: 1 << 6)

    /// CBAM's gates in fewer steps (`GateFusion.swift`): GlobalAveragePool and GlobalMaxPool
    /// of one tensor in one pass; ReduceMax and ReduceMean over its channels with their Concat
    /// in one step; a Mul whose only reader is an Add (with its fused Relu) inside the Add. The
    /// same bits.
    public static let fuseGates = GraphOptimizations(rawValue: 1 << 7)

    public static let none: GraphOptimizations = []
    /// Without `.concurrentBranches`: on an idle machine twins side by side measured slower than
    /// one step at a time over all the threads at batch 1 and 16 (docs/PERFORMANCE.md); they
    /// win only where other work competes for the cores.
    public static let inference: GraphOptimizations = [.foldBatchNorm, .fuseRelu, .winograd, .fuseAddRelu, .packFilters,
                                                       .siblingSteps, .fuseGates]
}
