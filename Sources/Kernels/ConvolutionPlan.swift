// A convolution's plan: its filters as the kernels want them (as written, or packed once into
// 16-row blocks), the Winograd policy with the transformed filters it keeps, and the forward that
// picks the algorithm per call shape. Prepared once per inference plan (or per training call,
// whose weights change every step); the operator keeps attributes and shapes and calls it.

import Foundation

/// The convolution algorithm choice of a run (`RuntimeOptions.convolution`).
public enum ConvolutionAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// Winograd F(4x4,3x3) where it has enough tiles, else F(2x2,3x3) where that has, else
    /// direct (inference); training's as `WinogradPath.training` picks by `TrainingWinograd`.
    case automatic
    /// im2col + GEMM (or the packed-filter GEMM) everywhere.
    case direct
    /// Winograd F(2x2,3x3) only (training: on every shape its path takes).
    case winograd2
    /// Winograd F(4x4,3x3) only (inference; training as `.automatic`).
    case winograd4

    /// The tiles inference may take, most preferred first; nil: no Winograd. F(4x4) comes
    /// first: on full MA-Net at batch 16 it takes ~30% less CPU than F(2x2) on every layer
    /// shape with the vectorised transforms, at ~10x F(2x2)'s rounding error (still ~5e-6 of
    /// max |y| per layer against float64, see WinogradTests).
    public var inferenceTiles: [WinogradTile]? {
        switch self {
        case .direct: nil
        case .winograd2: [.f2x2]
        case .winograd4: [.f4x4]
        case .automatic: [.f4x4, .f2x2]
        }
    }
}

/// Which Winograd tile (if any) one convolution takes, by call shape, and its transformed
/// filters when the plan's `WinogradFilterStore` has room for them (otherwise `Winograd.run`
/// transforms them per call). An inference path lives in a fused plan, which the executor
/// drops when an initializer changes, so kept filters never outlive the weights they came from.
public final class WinogradPath: @unchecked Sendable {
    /// The tiles this path may take, most preferred first.
    public let tiles: [WinogradTile]
    let store: WinogradFilterStore?
    private let lock = NSLock()
    private var kept: [WinogradTile: [Float]] = [:]

    /// Fewer input channels or filters than this take the direct path.
    public let minimumChannels: Int
    /// Replaces `minimumTiles(_:)`'s thresholds when set (for measurements).
    public let minimumTilesOverride: Int?
    /// F(4x4) only where the output plane has at most this many rows and columns (nil: any).
    public let f4x4MaximumSide: Int?
    /// F(4x4) calls whose filters come as written ([M, C, 3, 3], none kept) pack them into
    /// 16-row blocks first (`PackedFilters`, one copy of the weights) when M is a multiple of 16,
    /// so that the packed path transforms them block by block in cache (`Winograd.run` with
    /// `filtersPacked`) instead of writing all 36 points' transformed filters (4x the weights) to
    /// memory and reading them back: training's 7x7 layers, whose filters change every step and
    /// outweigh their 64 tiles per point at batch 16.
    public let packsF4x4Filters: Bool

    /// Planes of at most `side` rows and columns take Winograd from `channels` channels and
    /// filters (when below `minimumChannels`); for dW (`WinogradWeightGradient.applies`) these
    /// planes from `channels`, larger ones from `WinogradWeightGradient.minimumChannels`.
    public let smallPlanes: (side: Int, channels: Int)?
    /// dX's own path where it differs from the forward's (`ConvolutionBackward.transposedWinograd`).
    public let inputGradient: WinogradPath?

    public init(tiles: [WinogradTile], store: WinogradFilterStore? = nil,
                minimumChannels: Int = WinogradPath.minimumChannels, minimumTiles: Int? = nil,
                f4x4MaximumSide: Int? = nil, packsF4x4Filters: Bool = false,
                smallPlanes: (side: Int, channels: Int)? = nil, inputGradient: WinogradPath? = nil) {
        self.smallPlanes = smallPlanes
        self.inputGradient = inputGradient
        self.tiles = tiles
        self.store = store
        self.minimumChannels = minimumChannels
        self.minimumTilesOverride = minimumTiles
        self.f4x4MaximumSide = f4x4MaximumSide
        self.packsF4x4Filters = packsF4x4Filters
    }

    /// Whether a call of `tile` on shape `s` with filters as written packs them first
    /// (`packsF4x4Filters`).
    public func packsFilters(_ s: ConvolutionShape, tile: WinogradTile) -> Bool {
        packsF4x4Filters && tile == .f4x4 && store == nil && Winograd.usesPackedGEMM(filters: s.filters)
    }

    /// Training's path (forward, dX and dW of unfused convolutions in training mode); nil for
    /// `.direct`. With `TrainingWinograd.planesTo14` (the default): the forward by F(4x4,3x3) on
    /// the planes of at most 14x14 wherever the batch has enough tiles (MA-Net at batch 16: the
    /// 64->64 14x14 local-branch layers, 256->256 14x14 and the 7x7 planes; 4x fewer multiplies
    /// than direct against F(2x2)'s 2.25x), with the filters packed first (`packsF4x4Filters`),
    /// F(2x2) on the 28x28 planes from 128 channels, the 56x56 planes in place; dX by F(4x4) on
    /// 7x7 planes and F(2x2) elsewhere, from 128 channels and on planes of at most 14x14 from 64
    /// (`inputGradient`: F(4x4)'s dX of mean-zero dY rounds to 1.0e-5 .. 1.2e-5 of max |dX|
    /// against float64 on the 28x28 and 14x14 layers at batch 16, past the 1e-5 every Winograd
    /// tile is held to; the 56x56 dX stays in place); dW by F(3x3,2x2) from 128 channels and on
    /// planes of at most 14x14 from 64 (`smallPlanes`; on the 56x56 planes the in-place dW,
    /// `ConvolutionBackward.implicitWeightGradient`, streams less memory than the transforms).
    /// `.all` adds the F(4x4) forward on the 28x28 and 56x56 planes from 64 channels; `.lastStage`
    /// keeps to 128 channels, F(4x4) forward and dX on 7x7 planes only, F(2x2) elsewhere;
    /// `.winograd2`: F(2x2) from 128 channels.
    /// F(4x4)'s forward rounds ~5-15x more than the direct path (2.4e-6 .. 2.9e-6 of max |y| on
    /// the 7x7 layers at batch 8-16 against float64, up to 8.5e-6 on 128->128 28x28 at batch
    /// 16, direct ~5e-7; `WinogradTests`, `TrainingWinogradTests`). Where that reaches the
    /// trained numbers is judged by the full-width spread check (`TrainingSpreadParityTests`,
    /// docs/PARITY.md): the default is within PyTorch's own float32 spread; F(4x4) on the 28x28
    /// or 56x56 planes (`.all`) is not, which is why the default stops at 14x14.
    public static func training(_ algorithm: ConvolutionAlgorithm = .automatic,
                                reach: TrainingWinograd = .planesTo14) -> WinogradPath? {
        switch algorithm {
        case .direct: nil
        case .winograd2: trainingF2x2Path
        case .automatic, .winograd4:
            switch reach {
            case .planesTo14: trainingPlanesTo14Path
            case .all: trainingAllPath
            case .lastStage: trainingLastStagePath
            }
        }
    }
    private static let trainingPlanesTo14Path = WinogradPath(
        tiles: [.f4x4, .f2x2], minimumChannels: 128, f4x4MaximumSide: 14, packsF4x4Filters: true, smallPlanes: (14, 64),
        inputGradient: WinogradPath(tiles: [.f4x4, .f2x2], minimumChannels: 128, f4x4MaximumSide: 7, packsF4x4Filters: true,
                                    smallPlanes: (14, 64)))
    private static let trainingAllPath = WinogradPath(
        tiles: [.f4x4, .f2x2], minimumChannels: 64, packsF4x4Filters: true, smallPlanes: (14, 64),
        inputGradient: WinogradPath(tiles: [.f4x4, .f2x2], minimumChannels: 128, f4x4MaximumSide: 7, packsF4x4Filters: true,
                                    smallPlanes: (14, 64)))
    private static let trainingLastStagePath = WinogradPath(tiles: [.f4x4, .f2x2], minimumChannels: 128,
                                                            f4x4MaximumSide: 7, packsF4x4Filters: true)
    private static let trainingF2x2Path = WinogradPath(tiles: [.f2x2], minimumChannels: 128)

    /// Where Winograd beats im2col + GEMM on full MA-Net: at least this many tiles over the
    /// batch, or the 16/36 GEMMs are too thin for the transforms to pay, and at least
    /// `minimumChannels` channels and filters. F(4x4) from 32 tiles (batch 1: 28x28 planes, 49
    /// tiles, 2x faster than direct), F(2x2) from 49 (at batch 1 on 7x7 planes, 16 tiles,
    /// F(2x2) lost to the packed direct path by 25%, F(4x4) with 4 tiles by 2.2x; on 14x14
    /// planes, since the direct path reads its input in place, F(2x2)'s 49 tiles beat F(4x4)'s
    /// 16: 8 256->256 14x14 convolutions 13.2 vs 18.0 ms, direct 18.0).
    public func minimumTiles(_ tile: WinogradTile) -> Int {
        if let minimumTilesOverride { return minimumTilesOverride }
        return tile == .f4x4 ? 32 : 49
    }
    public static let minimumChannels = 64

    /// The tile a call of this shape takes, or nil for the direct path. With `filtersPacked`
    /// (inference's packed filters), F(2x2) also takes the calls with few tiles whose filters
    /// `Winograd.run` transforms chunk by chunk right before multiplying them
    /// (`Winograd.transformsInChunks`: batch 1's 7x7 planes), which beat the direct path there.
    public func tile(for s: ConvolutionShape, filtersPacked: Bool = false, options: KernelOptions = .default) -> WinogradTile? {
        guard Winograd.applies(s), s.channels >= leastChannels(s), s.filters >= leastChannels(s) else { return nil }
        return tiles.first { tile in
            if tile == .f4x4, let side = f4x4MaximumSide, s.geometry.outH > side || s.geometry.outW > side { return false }
            let m = tile == .f2x2 ? 2 : 4
            return s.batch * ((s.geometry.outH + m - 1) / m) * ((s.geometry.outW + m - 1) / m) >= minimumTiles(tile)
        } ?? (filtersPacked && tiles.contains(.f2x2) && Winograd.transformsInChunks(s, tile: .f2x2, options: options)
              ? .f2x2 : nil)
    }

    /// The channels and filters from which a call of shape `s` may take Winograd (`smallPlanes`).
    func leastChannels(_ s: ConvolutionShape) -> Int {
        guard let small = smallPlanes, s.geometry.outH <= small.side, s.geometry.outW <= small.side else { return minimumChannels }
        return min(minimumChannels, small.channels)
    }

    /// The transformed filters at `w` ([M, C, 3, 3], or in `PackedFilters`' layout: `packed`)
    /// for `tile` if kept (made now when the store has room), else nil.
    public func keptFilters(_ w: UnsafePointer<Float>, filters: Int, channels: Int, packed: Bool, tile: WinogradTile,
                            threads: Int, isa: KernelISA = .automatic) -> [Float]? {
        lock.lock()
        defer { lock.unlock() }
        if let made = kept[tile] { return made }
        guard let store, store.reserve(bytes: tile.alpha * tile.alpha * filters * channels * 4) else { return nil }
        let made = Winograd.transformFilters(w, filters: filters, channels: channels, tile: tile, threads: threads,
                                             packed: packed, isa: isa)
        kept[tile] = made
        return made
    }
}

/// The bytes of transformed Winograd filters one inference plan may keep between runs. Filters
/// are kept first come, first served (in execution order) until the budget is spent; the
/// rest are transformed per call.
public final class WinogradFilterStore: @unchecked Sendable {
    private let lock = NSLock()
    private var remaining: Int

    public init(budgetBytes: Int) { remaining = max(0, budgetBytes) }

    /// The store for a plan whose weights take `weightBytes`: `budgetBytes` when given, else a
    /// quarter of the weights (keeping every F(4x4) transform costs 4x the weights of the layers
    /// on the path; the early, small-filter layers gain most per byte kept).
    public static func forPlan(weightBytes: Int, budgetBytes: Int? = nil) -> WinogradFilterStore {
        WinogradFilterStore(budgetBytes: budgetBytes ?? weightBytes / 4)
    }

    /// Takes `bytes` from the budget if they fit.
    func reserve(bytes: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard bytes <= remaining else { return false }
        remaining -= bytes
        return true
    }
}

/// One convolution's filters and algorithm policy, prepared once; `forward` runs a call.
public final class ConvolutionPlan: @unchecked Sendable {
    /// The filters as the kernels read them.
    public enum Filters {
        /// [M, C/group, k...] as written: im2col + OpenBLAS, or Winograd.
        case plain([Float])
        /// Ungrouped, packed once into 16-row blocks (`PackedFilters`): the packed-filter GEMM,
        /// or Winograd transforming from the packed layout.
        case packed(PackedFilters)
    }

    /// What a call of some shape runs.
    public enum Algorithm: Equatable, Sendable {
        case direct, packed, winograd(WinogradTile)
    }

    public let filters: Filters
    /// Set when Winograd may run this convolution (3x3, stride 1).
    public let winograd: WinogradPath?
    /// Training's plain filters: the shapes `ConvolutionForward.trainingImplicit` takes are
    /// packed per call and read their input in place (`runImplicitImages`).
    public let packsPerCall: Bool

    public init(filters: Filters, winograd: WinogradPath? = nil, packsPerCall: Bool = false) {
        self.filters = filters
        self.winograd = winograd
        self.packsPerCall = packsPerCall
    }

    var isPacked: Bool { if case .packed = filters { true } else { false } }

    /// The algorithm a call of shape `s` takes.
    public func algorithm(for s: ConvolutionShape, options: KernelOptions = .default) -> Algorithm {
        if let tile = winograd?.tile(for: s, filtersPacked: isPacked, options: options) { return .winograd(tile) }
        return isPacked ? .packed : .direct
    }

    /// y = relu?(conv(x, filters) + bias): x [N, C, in...] (nil when it holds no elements),
    /// bias [M] or nil, y [N, M, out...] fully written. Deterministic for a thread count.
    public func forward(_ x: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                        _ s: ConvolutionShape, relu: Bool, threads: Int, options: KernelOptions = .default) {
        switch filters {
        case .plain(let weights):
            weights.withUnsafeBufferPointer { wb in
                guard let xp = x, let wp = wb.baseAddress else {
                    // No input channels (or no filters): y is the bias alone.
                    let plane = s.geometry.outputPlane
                    for t in 0..<(s.batch * s.filters) {
                        let b = bias?[t % s.filters] ?? 0
                        for p in 0..<plane { y[t * plane + p] = relu ? max(b, 0) : b }
                    }
                    return
                }
                if let winograd, let tile = winograd.tile(for: s, options: options), winograd.packsFilters(s, tile: tile) {
                    let packed = PackedFilters(wp, filters: s.filters, columns: s.columnRows, threads: threads)
                    packed.withPointer {
                        Winograd.run(xp, $0, tile: tile, bias: bias, y, s, relu: relu, threads: threads, filtersPacked: true,
                                     options: options.pointOrder)
                    }
                } else if let winograd, let tile = winograd.tile(for: s, options: options) {
                    let kept = winograd.keptFilters(wp, filters: s.filters, channels: s.channels, packed: false, tile: tile,
                                                    threads: threads, isa: options.isa)
                    Self.withOptionalPointer(kept) { kp in
                        Winograd.run(xp, wp, tile: tile, transformed: kp, bias: bias, y, s, relu: relu, threads: threads,
                                     options: options)
                    }
                } else if packsPerCall, ConvolutionForward.trainingImplicit(s, options: options),
                          ConvolutionForward.runImplicitImages(xp, PackedFilters(wp, filters: s.filters, columns: s.columnRows, threads: threads),
                                                               bias: bias, y, s, relu: relu, threads: threads,
                                                               isa: options.isa) != nil {
                    return
                } else {
                    ConvolutionForward.run(xp, wp, bias: bias, y, s, relu: relu, threads: threads, options: options)
                }
            }
        case .packed(let packed):
            guard let xp = x else { preconditionFailure("packed filters always have input channels") }
            let tile = winograd?.tile(for: s, filtersPacked: true, options: options)
            packed.withPointer { wp in
                // Filters transformed in chunks per call are not kept (that path reads the packed ones).
                let kept = tile.flatMap {
                    Winograd.transformsInChunks(s, tile: $0, options: options) ? nil
                        : winograd?.keptFilters(wp, filters: s.filters, channels: s.channels, packed: true, tile: $0,
                                                threads: threads, isa: options.isa)
                }
                if let tile {
                    Self.withOptionalPointer(kept) { kp in
                        Winograd.run(xp, wp, tile: tile, transformed: kp, bias: bias, y, s, relu: relu, threads: threads,
                                     filtersPacked: true, options: options)
                    }
                } else {
                    ConvolutionForward.runPacked(xp, packed, bias: bias, y, s, relu: relu, threads: threads, options: options)
                }
            }
        }
    }

    static func withOptionalPointer<R>(_ a: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
