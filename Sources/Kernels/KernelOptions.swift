// The kernels' choices as a value: which schedule a convolution takes and which instruction set
// the multiversioned kernels run. Callers pass it down with every call; nothing here reads the
// environment.

/// The instruction set a kernel with several variants runs. `.automatic` takes the best the CPU
/// has (read from CPUID once); the others force a variant (for tests and A/B benchmarks) and fall
/// back to the best the CPU has below them when it lacks the one asked for.
public enum KernelISA: String, Sendable, Hashable, CaseIterable {
    case automatic, avx512, avx2, portable

    /// The C layer's code (`MANET_ISA_*` in `_CKernels/sgemm.h`), the first argument of every
    /// multiversioned C kernel.
    public var code: Int32 {
        switch self {
        case .automatic: 0
        case .avx512: 1
        case .avx2: 2
        case .portable: 3
        }
    }

    init(code: Int32) {
        self = switch code {
        case 1: .avx512
        case 2: .avx2
        case 3: .portable
        default: .automatic
        }
    }
}

/// Who runs the general GEMMs (im2col convolutions and their gradients, Gemm, MatMul).
public enum GEMMBackend: String, Sendable, Hashable, CaseIterable {
    /// OpenBLAS where its kernels match the CPU's vector width, else ours: on a CPU that
    /// OpenBLAS does not know (it then runs its SSE3 "Prescott" kernels), or with
    /// OPENBLAS_CORETYPE set below the CPU, the products do not fall back to SSE3.
    case automatic
    /// Our packed kernels (`_CKernels/sgemm.h`), whatever OpenBLAS detects: the same bits for
    /// every thread count and instruction set.
    case own
    /// OpenBLAS, whatever it detects.
    case openBLAS = "openblas"
}

/// How one image of a packed-filter convolution is split over threads.
public enum ConvolutionSplit: String, Sendable, Hashable, CaseIterable {
    /// Each worker its share of the output columns with every filter block.
    case columns
    /// Each worker every column with its share of the filter blocks.
    case blocks
}

/// Which stride-1 3x3 convolutions training runs by Winograd (`WinogradPath.training`).
public enum TrainingWinograd: String, Sendable, Hashable, CaseIterable {
    /// The default: the forward by F(4x4,3x3) on planes of at most 14x14 (from 64 channels
    /// there, 128 on 7x7) where the batch has enough tiles, F(2x2) on the 28x28 planes from 128
    /// channels, the 56x56 planes in place; dX (F(4x4) on 7x7 planes, else F(2x2)) and dW from
    /// 128 channels and on planes of at most 14x14 from 64. The widest reach that keeps
    /// full-width training within the spread of PyTorch's own float32 runs (docs/PARITY.md).
    case planesTo14 = "14x14"
    /// As `.planesTo14`, plus the forward by F(4x4) on the 28x28 and 56x56 planes from 64
    /// channels: ~6% less CPU per step, but its rounding reaches layer 4's step-1 gradients
    /// beyond PyTorch's float32 spread (full-width check: 38 of 380 tensors outside, worst
    /// 2.0x the allowance; the 28x28 planes alone: 1 outside, 1.3x). For measurements only.
    case all
    /// From 128 channels only: F(4x4) forward and dX on 7x7 planes, F(2x2) elsewhere (the
    /// policy before `.all`, kept for A/B measurements).
    case lastStage = "7x7"
}

/// Kernel-level choices. The defaults are what the benchmarks chose; every other value gives
/// the same results within float rounding (the schedules the same bits, see each field).
public struct KernelOptions: Sendable, Hashable {
    /// Instruction set of our multiversioned kernels: the general GEMM (`GEMM.sgemm`), the
    /// packed-filter GEMM tiles and im2col (`PackedFilters`), the Winograd transforms and
    /// chunked GEMMs. Each runs the variant asked for, or the best it has below it (the packed
    /// tiles have no AVX-512 form: AVX2 for `.avx512`).
    public var isa: KernelISA
    /// Who runs the general GEMMs.
    public var gemm: GEMMBackend
    /// A 2-D packed-filter convolution of one image reads its input in place (an implicit
    /// im2col) instead of unfolding it first. The same sums in the same order: the same bits.
    public var implicitConvolution: Bool
    /// Fixes how one image of a packed-filter convolution is split over threads; nil picks by
    /// shape (by columns where the filters are the smaller operand). The same bits either way.
    public var convolutionSplit: ConvolutionSplit?
    /// Channels per chunk when Winograd filters are transformed chunk by chunk right before
    /// their GEMMs (`Winograd.transformsInChunks`); 0 turns that order off (those calls take
    /// the direct path). Must be a multiple of 8 to take effect.
    public var winogradChunkChannels: Int
    /// Scratch floats (transformed inputs and GEMM results) per chunk of images on the
    /// packed-filter Winograd path's point order: kept in the L3 cache between the transforms
    /// and the GEMMs.
    public var winogradCacheChunkFloats: Int
    /// Tiles per band on the packed-filter Winograd path's banded order (`Winograd.runInBands`:
    /// each band of tile rows transformed, multiplied and transformed back while it is in the
    /// core's cache); 0: the point order (all tiles' transformed inputs, then every point's
    /// GEMM, then the output transform). Inference's packed filters only (training's filters
    /// packed per call keep the point order).
    public var winogradBandTiles: Int
    /// dW of the 3x3 convolutions whose forward training's path runs by F(4x4,3x3) (the 7x7
    /// planes) by Winograd F(3x3,4x4), block by block of dW with the point sums kept in cache
    /// (`WinogradWeightGradient.tile`); off: F(3x3,2x2), one GEMM per point, as on larger planes.
    public var weightGradientF4x4: Bool
    /// Which of training's convolutions take Winograd (with `ConvolutionAlgorithm.automatic`).
    public var trainingWinograd: TrainingWinograd

    public init(isa: KernelISA = .automatic, gemm: GEMMBackend = .automatic, implicitConvolution: Bool = true,
                convolutionSplit: ConvolutionSplit? = nil, winogradChunkChannels: Int = 64,
                winogradCacheChunkFloats: Int = 1 << 20, winogradBandTiles: Int = 28, weightGradientF4x4: Bool = true,
                trainingWinograd: TrainingWinograd = .planesTo14) {
        self.winogradBandTiles = winogradBandTiles
        self.trainingWinograd = trainingWinograd
        self.isa = isa
        self.gemm = gemm
        self.implicitConvolution = implicitConvolution
        self.convolutionSplit = convolutionSplit
        self.winogradChunkChannels = winogradChunkChannels
        self.winogradCacheChunkFloats = winogradCacheChunkFloats
        self.weightGradientF4x4 = weightGradientF4x4
    }

    public static let `default` = KernelOptions()

    /// These options with the Winograd point order (`winogradBandTiles` 0): training's filters
    /// packed per call keep the path its full-width spread check (docs/PARITY.md) was run on.
    public var pointOrder: KernelOptions {
        var o = self
        o.winogradBandTiles = 0
        return o
    }
}
