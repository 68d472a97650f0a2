// Turns an ImageFolderDataset into batches of [N,3,S,S] tensors and labels, decoded and augmented on a background thread ahead of the trainer.

import Foundation
import ManetSupport
import Runtime

/// One batch: images in [0, 1], planar, and their labels.
public struct Batch: Sendable {
    /// [N, 3, S, S] float32 in [0, 1] (ToTensor).
    public var images: Tensor
    /// N labels, one per image.
    public var labels: [Int]
    /// The dataset sample index of each image (for logs and debugging).
    public var sampleIndices: [Int]
    /// Paths skipped in this batch because they could not be decoded (`skipBadImages`).
    public var skippedPaths: [String]

    public var count: Int { labels.count }
}

/// How `BatchLoader` reads a dataset. Defaults are the authors' training recipe.
public struct BatchLoaderOptions: Sendable {
    /// Images per batch (the last batch may be smaller unless `dropLast`).
    public var batchSize: Int = 128
    /// Side S of the square network input.
    public var inputSize: Int = 224
    /// Reorder samples each epoch (seeded). False keeps ImageFolder order: classes, then paths.
    public var shuffle: Bool = true
    /// Train transforms (RandomResizedCrop + flip); false uses the test transform (Resize).
    public var augment: Bool = true
    /// Drop a final incomplete batch (PyTorch's `drop_last`, default false).
    public var dropLast: Bool = false
    /// Skip undecodable images with a warning (and count them) instead of throwing.
    public var skipBadImages: Bool = false
    /// Seed of the shuffle and of every sample's augmentation.
    public var seed: UInt64 = 0
    /// Batches prepared ahead of the consumer (1 or 2 overlap decoding with compute).
    public var prefetchBatches: Int = 2
    /// Threads decoding the images of one batch. 1 leaves the cores to the trainer's BLAS.
    public var decodeThreads: Int = 1
    /// Images wider or taller than this are refused before decoding.
    public var maxImageDimension: Int = ImageCodec.defaultMaxDimension

    public init() {}

    public init(batchSize: Int, inputSize: Int = 224, shuffle: Bool, augment: Bool, seed: UInt64,
                dropLast: Bool = false, skipBadImages: Bool = false) {
        self.batchSize = batchSize
        self.inputSize = inputSize
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.dropLast = dropLast
        self.skipBadImages = skipBadImages
    }
}

/// Reads a dataset in batches, like PyTorch's `DataLoader` over `ImageFolder`.
///
/// Determinism: an epoch's order comes from a generator seeded by (seed, epoch), and each
/// sample's augmentation from a generator seeded by (seed, epoch, sample index), so a batch's
/// content depends only on (seed, epoch, batch number) — never on thread timing, prefetch depth
/// or decode-thread count. Resuming at an epoch boundary therefore needs only the seed and the
/// epoch number; `shuffleState(epoch:)` exposes the epoch generator's state for checkpoints.
public final class BatchLoader: @unchecked Sendable {
    public let dataset: ImageFolderDataset
    public let options: BatchLoaderOptions
    public let transform: ImageTransform
    private let warn: @Sendable (String) -> Void

    /// Throws `DataError.invalidOption` for a non-positive batch size, input size or prefetch.
    public init(dataset: ImageFolderDataset, options: BatchLoaderOptions,
                warn: @escaping @Sendable (String) -> Void = BatchLoader.printWarning) throws {
        guard options.batchSize > 0 else { throw DataError.invalidOption("batch size must be positive, got \(options.batchSize)") }
        guard options.inputSize > 0 else { throw DataError.invalidOption("input size must be positive, got \(options.inputSize)") }
        guard options.prefetchBatches > 0 else { throw DataError.invalidOption("prefetch must be at least 1 batch") }
        guard options.decodeThreads > 0 else { throw DataError.invalidOption("decode threads must be at least 1") }
        self.dataset = dataset
        self.options = options
        self.transform = options.augment ? .train(size: options.inputSize) : .test(size: options.inputSize)
        self.warn = warn
    }

    /// Writes a warning line to standard error.
    public static let printWarning: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
    }

    /// Batches per epoch (before any skipped images).
    public var batchesPerEpoch: Int {
        let n = dataset.count, b = options.batchSize
        return options.dropLast ? n / b : (n + b - 1) / b
    }

    /// The state of the generator that shuffles `epoch`, before it draws.
    public func shuffleState(epoch: Int) -> [UInt64] { shuffleGenerator(epoch: epoch).stateWords }

    /// Sample indices in the order `epoch` visits them.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        if options.shuffle {
            var rng = shuffleGenerator(epoch: epoch)
            rng.shuffleInPlace(&order)
        }
        return order
    }

    /// Starts preparing `epoch`'s batches on a background thread and returns the reader; from
    /// batch `first` on (a run resumed mid-epoch: the same batches as without the skip).
    public func epoch(_ epoch: Int, fromBatch first: Int = 0) -> EpochReader {
        let order = order(epoch: epoch)
        let b = options.batchSize
        var groups: [[Int]] = []
        for start in stride(from: 0, to: order.count, by: b) {
            let group = Array(order[start..<min(start + b, order.count)])
            if options.dropLast && group.count < b { break }
            groups.append(group)
        }
        return EpochReader(loader: self, epoch: epoch, groups: Array(groups.dropFirst(first)))
    }

    /// Decodes and transforms every sample of one group (synchronously). Used by `EpochReader`'s
    /// thread; public so a caller can build a batch without a thread (tests, evaluation).
    public func makeBatch(epoch: Int, sampleIndices: [Int]) throws -> Batch {
        let size = options.inputSize
        let plane = 3 * size * size
        var values = [Float](repeating: 0, count: sampleIndices.count * plane)
        var failures = [DataError?](repeating: nil, count: sampleIndices.count)
        values.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            failures.withUnsafeMutableBufferPointer { failureSlots in
                let failureBase = failureSlots.baseAddress!
                let work = { (slot: Int) in
                    let index = sampleIndices[slot]
                    do {
                        let image = try self.loadSample(index, epoch: epoch)
                        ImageOps.writeCHW(image, into: base + slot * plane)
                    } catch let error as DataError {
                        failureBase[slot] = error
                    } catch {
                        failureBase[slot] = .unreadable(path: self.dataset.samples[index].path.path, reason: "\(error)")
                    }
                }
                if options.decodeThreads > 1 && sampleIndices.count > 1 {
                    DispatchQueue.concurrentPerform(iterations: sampleIndices.count, execute: work)
                } else {
                    for slot in 0..<sampleIndices.count { work(slot) }
                }
            }
        }
        var labels = sampleIndices.map { dataset.samples[$0].label }
        var kept = sampleIndices
        var skipped: [String] = []
        if let firstFailure = failures.firstIndex(where: { $0 != nil }) {
            guard options.skipBadImages else { throw failures[firstFailure]! }
            // Compact the good images to the front, keeping their order.
            var write = 0
            kept = []
            labels = []
            for slot in 0..<sampleIndices.count {
                if let failure = failures[slot] {
                    skipped.append(dataset.samples[sampleIndices[slot]].path.path)
                    warn("skipping \(failure)")
                    continue
                }
                if write != slot {
                    for i in 0..<plane { values[write * plane + i] = values[slot * plane + i] }
                }
                kept.append(sampleIndices[slot])
                labels.append(dataset.samples[sampleIndices[slot]].label)
                write += 1
            }
            values.removeLast((sampleIndices.count - write) * plane)
        }
        return Batch(images: Tensor(shape: [kept.count, 3, size, size], floats: values),
                     labels: labels, sampleIndices: kept, skippedPaths: skipped)
    }

    /// One sample after decoding and the epoch's transform.
    public func loadSample(_ index: Int, epoch: Int) throws -> RGBImage {
        let image = try ImageCodec.decode(contentsOf: dataset.samples[index].path, maxDimension: options.maxImageDimension)
        var rng = sampleGenerator(epoch: epoch, index: index)
        return transform.apply(image, using: &rng)
    }

    // Distinct stream tags keep the shuffle and augmentation streams unrelated for equal keys.
    private static let shuffleStream: UInt64 = 0x5348_5546_464C_4531  // "SHUFFLE1"
    private static let augmentStream: UInt64 = 0x4155_474D_454E_5431  // "AUGMENT1"

    private func shuffleGenerator(epoch: Int) -> Xoshiro256 {
        Xoshiro256(seed: options.seed, stream: Self.shuffleStream, UInt64(bitPattern: Int64(epoch)))
    }

    private func sampleGenerator(epoch: Int, index: Int) -> Xoshiro256 {
        Xoshiro256(seed: options.seed, stream: Self.augmentStream, UInt64(bitPattern: Int64(epoch)), UInt64(index))
    }
}

/// The batches of one epoch, produced by a background thread up to `prefetchBatches` ahead.
/// Read with `next()` until it returns nil; an error (a bad image without `skipBadImages`) is
/// thrown at the batch it belongs to. Dropping the reader stops its thread.
public final class EpochReader: @unchecked Sendable {
    public let epoch: Int
    /// Batches this epoch will yield (fewer only if a whole batch is skipped as bad).
    public let batchCount: Int
    private let channel: BatchChannel

    init(loader: BatchLoader, epoch: Int, groups: [[Int]]) {
        self.epoch = epoch
        self.batchCount = groups.count
        let channel = BatchChannel(capacity: loader.options.prefetchBatches)
        self.channel = channel
        // The thread holds the channel, not the reader, so dropping the reader cancels it.
        let thread = Thread {
            for group in groups {
                let result = Result { try loader.makeBatch(epoch: epoch, sampleIndices: group) }
                guard channel.push(result) else { return }
                if case .failure = result { break }
            }
            channel.finish()
        }
        thread.name = "manet.batch-loader"
        thread.start()
    }

    deinit { channel.cancel() }

    /// Images skipped so far this epoch (`skipBadImages`), counted as batches are produced.
    public var skippedCount: Int { channel.skippedCount }

    /// The next batch, waiting for the background thread if needed; nil at the end of the epoch.
    public func next() throws -> Batch? { try channel.next() }

    /// Stops the background thread after the batch it is working on.
    public func cancel() { channel.cancel() }
}

/// A bounded queue between the producing thread and the consumer.
private final class BatchChannel: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Result<Batch, Error>] = []
    private var producedAll = false
    private var cancelled = false
    private var skipped = 0
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var skippedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return skipped
    }

    func next() throws -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if !ready.isEmpty {
                let result = ready.removeFirst()
                condition.broadcast()
                let batch = try result.get()
                // A batch whose every image was bad carries nothing to train on; move past it.
                if batch.count == 0 { continue }
                return batch
            }
            if producedAll || cancelled { return nil }
            condition.wait()
        }
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for room, then queues a result. False once cancelled.
    func push(_ result: Result<Batch, Error>) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while ready.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        if case .success(let batch) = result { skipped += batch.skippedPaths.count }
        ready.append(result)
        condition.broadcast()
        return true
    }

    func finish() {
        condition.lock()
        producedAll = true
        condition.broadcast()
        condition.unlock()
    }
}
