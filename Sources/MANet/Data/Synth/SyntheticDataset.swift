// Writes the procedural seven-class expression dataset (train/0..6, test/0..6 as JPEG), seeded image by image.

import Foundation
import ManetSupport
import ONNXIR

/// The procedural expression dataset behind `manet synth`: faces drawn from facial-action
/// prototypes of RAF-DB's seven classes (see `FacialActions`), posed, occluded, lit and
/// compressed like photos in the wild (see `FaceRenderer`).
public enum SyntheticDataset {
    public struct Options: Sendable {
        public var trainPerClass = 300
        public var testPerClass = 60
        /// Side of the square images in pixels (RAF-DB's aligned faces are 100x100).
        public var size = 112
        public var seed: UInt64 = 0
        /// Scale of every nuisance (pose, occluders, lighting, blur, noise, JPEG): 1 moderate
        /// (the default), 0 clean frontal faces, above 1 harder. See `SceneParameters`.
        public var nuisance = 1.0
        /// Threads rendering images (results do not depend on it).
        public var threads = 2
        /// When positive, also write `<split>_pixels_<side>.npy` (uint8 [N, side, side, 3]: each
        /// JPEG decoded back, so with its artefacts, and resized with the test Resize) and
        /// `<split>_labels.npy` (int64 [N]) in the root, for numpy-only baselines
        /// (tools/parity/linear_baseline.py). The image folders are unaffected.
        public var npySide = 0

        public init() {}
    }

    /// Counts of what `write` produced.
    public struct Summary: Sendable {
        public var trainImages: Int
        public var testImages: Int
        public var bytes: Int
        public var seconds: Double
    }

    public static let classCount = 7

    /// Renders image `index` of class `label` in `split`. A pure function of its arguments:
    /// every image has its own generator keyed by (seed, split, label, index).
    public static func render(split: DatasetSplit, label: Int, index: Int, size: Int, seed: UInt64,
                              nuisance: Double = 1) -> (image: RGBImage, jpegQuality: Int) {
        precondition((0..<classCount).contains(label), "label \(label) outside 0..6")
        let splitKey: UInt64 = split == .train ? 0x5452_4149_4E00_0000 : 0x5445_5354_0000_0000  // "TRAIN", "TEST"
        var rng = Xoshiro256(seed: seed, stream: splitKey, UInt64(label), UInt64(index))
        let actions = FacialActions.sample(label: label, using: &rng)
        let scene = SceneParameters(nuisance: nuisance, using: &rng)
        let image = FaceRenderer.render(actions: actions, scene: scene, size: size, using: &rng)
        return (image, scene.jpegQuality)
    }

    /// Writes `root/train/<label>/<index>.jpg` and `root/test/<label>/<index>.jpg`.
    /// Refuses to write into existing `train/` or `test/` folders unless `replace` is set, in
    /// which case they are deleted first (so no stale images from a larger run survive).
    /// `progress` receives (images done, images total) from any thread, in increasing order.
    @discardableResult
    public static func write(to root: URL, options: Options, replace: Bool = false,
                             progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        guard options.trainPerClass >= 1, options.testPerClass >= 1 else {
            throw DataError.invalidOption("each split needs at least one image per class")
        }
        guard options.nuisance.isFinite, (0...3).contains(options.nuisance) else {
            throw DataError.invalidOption("nuisance level must be 0-3, got \(options.nuisance)")
        }
        guard (16...1024).contains(options.size) else {
            throw DataError.invalidOption("image size must be 16-1024 pixels, got \(options.size)")
        }
        let fileManager = FileManager.default
        for split in DatasetSplit.allCases {
            let folder = root.appendingPathComponent(split.rawValue)
            if fileManager.fileExists(atPath: folder.path) {
                guard replace else {
                    throw DataError.invalidOption("\(folder.path) already exists; remove it or pass --overwrite to replace it")
                }
                do { try fileManager.removeItem(at: folder) } catch {
                    throw DataError.unreadable(path: folder.path, reason: "cannot remove: \((error as NSError).localizedDescription)")
                }
            }
            for label in 0..<classCount {
                let classFolder = folder.appendingPathComponent(String(label))
                do { try fileManager.createDirectory(at: classFolder, withIntermediateDirectories: true) } catch {
                    throw DataError.unreadable(path: classFolder.path, reason: "cannot create: \((error as NSError).localizedDescription)")
                }
            }
        }

        struct Job { var split: DatasetSplit; var label: Int; var index: Int }
        var jobs: [Job] = []
        for (split, perClass) in [(DatasetSplit.train, options.trainPerClass), (.test, options.testPerClass)] {
            for label in 0..<classCount { for index in 0..<perClass { jobs.append(Job(split: split, label: label, index: index)) } }
        }
        let start = Date()
        let state = WriteState()
        let total = jobs.count
        let threads = max(1, options.threads)
        let side = options.npySide
        let thumbnails = ThumbnailStore(count: side > 0 ? total : 0, side: side)
        let written = TemporaryFiles(count: total)
        // Atomic, as every file the project writes (an interrupted run leaves whole images or
        // none), but synced once per class folder instead of once per image: the folder's images
        // go to temporary names, then AtomicFile.commitBatch syncs them, renames them and syncs
        // the folder. Jobs are in folder order; within a folder, workers take interleaved jobs and
        // the first error stops everyone.
        var first = 0
        while first < total {
            var end = first
            while end < total && jobs[end].split == jobs[first].split && jobs[end].label == jobs[first].label { end += 1 }
            let folder = first..<end
            DispatchQueue.concurrentPerform(iterations: threads) { worker in
                for j in stride(from: folder.lowerBound + worker, to: folder.upperBound, by: threads) {
                    if state.failed { return }
                    let job = jobs[j]
                    let url = root.appendingPathComponent("\(job.split.rawValue)/\(job.label)/\(String(format: "%05d", job.index)).jpg")
                    do {
                        let (image, quality) = render(split: job.split, label: job.label, index: job.index, size: options.size, seed: options.seed,
                                                      nuisance: options.nuisance)
                        let data = try ImageCodec.encodeJPEG(image, quality: quality)
                        if side > 0 {
                            let decoded = try ImageCodec.decode(data: data, name: url.path)
                            thumbnails.store(ImageOps.resize(decoded, width: side, height: side).pixels, at: j)
                        }
                        do { written.set(j, temporary: try AtomicFile.writeTemporary([UInt8](data), for: url.path), path: url.path) } catch let e as FileError {
                            throw DataError.unreadable(path: url.path, reason: "cannot write: \(e.reason)")
                        }
                        state.finish(bytes: data.count) { progress($0, total) }
                    } catch {
                        state.fail(error)
                        return
                    }
                }
            }
            let batch = written.files(in: folder)
            if let error = state.error {
                AtomicFile.discardBatch(batch)
                throw error
            }
            do { try AtomicFile.commitBatch(batch) } catch let e as FileError {
                throw DataError.unreadable(path: e.file, reason: "cannot write: \(e.reason)")
            }
            first = end
        }
        // The folders made above, durable too.
        for split in DatasetSplit.allCases {
            let folder = root.appendingPathComponent(split.rawValue).path
            do {
                try AtomicFile.syncFolder(folder, for: folder)
                try AtomicFile.syncFolder(root.path, for: folder)
            } catch let e as FileError {
                throw DataError.unreadable(path: e.file, reason: e.reason)
            }
        }
        if side > 0 {
            var offset = 0
            for (split, perClass) in [(DatasetSplit.train, options.trainPerClass), (.test, options.testPerClass)] {
                let count = perClass * classCount
                let pixels = Array(thumbnails.pixels[(offset * side * side * 3)..<((offset + count) * side * side * 3)])
                let labels = jobs[offset..<(offset + count)].map { Int64($0.label) }
                let files = [("\(split.rawValue)_pixels_\(side).npy", TensorData(elementType: .uint8, dims: [count, side, side, 3], bytes: pixels)),
                             ("\(split.rawValue)_labels.npy", TensorData(dims: [count], int64s: labels))]
                for (name, tensor) in files {
                    let path = root.appendingPathComponent(name).path
                    do { try NPY.write(tensor, to: path) } catch let e as FileError {
                        throw DataError.unreadable(path: path, reason: e.reason)
                    }
                }
                offset += count
            }
        }
        return Summary(trainImages: options.trainPerClass * classCount, testImages: options.testPerClass * classCount,
                       bytes: state.bytes, seconds: Date().timeIntervalSince(start))
    }
}

/// Downscaled copies of every image, filled by the rendering threads at disjoint offsets.
private final class ThumbnailStore: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var pixels: [UInt8]
    private let stride: Int

    init(count: Int, side: Int) {
        stride = side * side * 3
        pixels = [UInt8](repeating: 0, count: count * stride)
    }

    func store(_ values: [UInt8], at index: Int) {
        lock.lock(); defer { lock.unlock() }
        pixels.replaceSubrange((index * stride)..<((index + 1) * stride), with: values)
    }
}

/// Shared progress and first error of the rendering threads.
/// The temporary file of each job, set by the rendering threads at disjoint indices.
private final class TemporaryFiles: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [(temporary: String, path: String)?]

    init(count: Int) { files = Array(repeating: nil, count: count) }

    func set(_ index: Int, temporary: String, path: String) {
        lock.lock(); defer { lock.unlock() }
        files[index] = (temporary, path)
    }

    /// The files written for jobs `range`, in job order.
    func files(in range: Range<Int>) -> [(temporary: String, path: String)] {
        lock.lock(); defer { lock.unlock() }
        return files[range].compactMap { $0 }
    }
}

private final class WriteState: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var done = 0
    private(set) var bytes = 0
    private var firstError: Error?

    var failed: Bool { lock.lock(); defer { lock.unlock() }; return firstError != nil }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return firstError }

    /// Counts a finished image and reports the new count under the lock, so reports arrive in order.
    func finish(bytes count: Int, report: (Int) -> Void) {
        lock.lock(); defer { lock.unlock() }
        done += 1
        bytes += count
        report(done)
    }

    func fail(_ error: Error) {
        lock.lock(); defer { lock.unlock() }
        if firstError == nil { firstError = error }
    }
}
