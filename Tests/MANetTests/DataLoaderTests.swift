// BatchLoader: batch shapes and order, seeded shuffling independent of threads, PyTorch's drop_last, bad-image handling.

import Foundation
import XCTest
import MANet

final class DataLoaderTests: XCTestCase {
    /// 3 classes x 4 images; image k of class c has grey value 20 * (4 * c + k) + 10.
    private func makeDataset() throws -> (DatasetTree, ImageFolderDataset) {
        let tree = try DatasetTree(self)
        for c in 0..<3 {
            for k in 0..<4 { try tree.image("train/\(c)/img\(k).png", value: UInt8(20 * (4 * c + k) + 10), size: 10 + k) }
        }
        return (tree, try ImageFolderDataset(root: tree.root, split: .train))
    }

    private func options(batch: Int, shuffle: Bool, augment: Bool, seed: UInt64 = 5) -> BatchLoaderOptions {
        var options = BatchLoaderOptions(batchSize: batch, inputSize: 8, shuffle: shuffle, augment: augment, seed: seed)
        options.prefetchBatches = 1
        return options
    }

    private func readAll(_ loader: BatchLoader, epoch: Int) throws -> [Batch] {
        let reader = loader.epoch(epoch)
        var batches: [Batch] = []
        while let batch = try reader.next() { batches.append(batch) }
        return batches
    }

    func testUnshuffledBatchesKeepImageFolderOrderAndLastBatchIsSmaller() throws {
        let (_, dataset) = try makeDataset()
        let loader = try BatchLoader(dataset: dataset, options: options(batch: 5, shuffle: false, augment: false))
        let batches = try readAll(loader, epoch: 0)
        XCTAssertEqual(loader.batchesPerEpoch, 3)
        XCTAssertEqual(batches.map(\.count), [5, 5, 2])
        XCTAssertEqual(batches.flatMap(\.sampleIndices), Array(0..<12))
        XCTAssertEqual(batches.flatMap(\.labels), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
        XCTAssertEqual(batches[0].images.shape, [5, 3, 8, 8])
        XCTAssertEqual(batches[2].images.shape, [2, 3, 8, 8])
        // Resize of a flat grey image is flat: every value of image 6 is (20*6+10)/255.
        let plane = 3 * 8 * 8
        let sixth = batches[1].images.floats[plane..<(2 * plane)]
        XCTAssertTrue(sixth.allSatisfy { abs($0 - Float(130) / 255) < 1e-6 }, "\(sixth.prefix(4))")
    }

    func testDropLastDropsTheIncompleteBatch() throws {
        let (_, dataset) = try makeDataset()
        var o = options(batch: 5, shuffle: true, augment: true)
        o.dropLast = true
        let loader = try BatchLoader(dataset: dataset, options: o)
        XCTAssertEqual(try readAll(loader, epoch: 0).map(\.count), [5, 5])
    }

    func testShuffleIsAPermutationSeededByEpochAndIndependentOfThreads() throws {
        let (_, dataset) = try makeDataset()
        let loader = try BatchLoader(dataset: dataset, options: options(batch: 4, shuffle: true, augment: true))
        let epoch0 = try readAll(loader, epoch: 0)
        XCTAssertEqual(epoch0.flatMap(\.sampleIndices).sorted(), Array(0..<12))
        XCTAssertNotEqual(epoch0.flatMap(\.sampleIndices), Array(0..<12))
        XCTAssertNotEqual(loader.order(epoch: 1), loader.order(epoch: 0))

        // Same seed with more prefetch and parallel decoding: identical bits.
        var o = options(batch: 4, shuffle: true, augment: true)
        o.prefetchBatches = 2
        o.decodeThreads = 3
        let again = try readAll(try BatchLoader(dataset: dataset, options: o), epoch: 0)
        XCTAssertEqual(again.map(\.sampleIndices), epoch0.map(\.sampleIndices))
        XCTAssertEqual(again.map(\.images), epoch0.map(\.images))
        XCTAssertEqual(loader.shuffleState(epoch: 3), try BatchLoader(dataset: dataset, options: o).shuffleState(epoch: 3))

        let otherSeed = try BatchLoader(dataset: dataset, options: options(batch: 4, shuffle: true, augment: true, seed: 6))
        XCTAssertNotEqual(otherSeed.order(epoch: 0), loader.order(epoch: 0))
    }

    func testAugmentationChangesPerEpochButNotPerRun() throws {
        let tree = try DatasetTree(self)
        // A textured image so that crops differ.
        var pixels: [UInt8] = []
        for y in 0..<40 { for x in 0..<40 { pixels += [UInt8(x * 6), UInt8(y * 6), UInt8((x * y) % 256)] } }
        let url = tree.root.appendingPathComponent("train/0/t.png")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try ImageCodec.encodePNG(RGBImage(width: 40, height: 40, pixels: pixels)).write(to: url)
        let dataset = try ImageFolderDataset(root: tree.root, split: .train)
        let loader = try BatchLoader(dataset: dataset, options: options(batch: 1, shuffle: true, augment: true))
        let a = try readAll(loader, epoch: 0)[0].images
        XCTAssertEqual(a, try readAll(loader, epoch: 0)[0].images)
        XCTAssertNotEqual(a, try readAll(loader, epoch: 1)[0].images)
        XCTAssertTrue(a.floats.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    func testBadImageThrowsNamingTheFileUnlessSkipped() throws {
        let (tree, _) = try makeDataset()
        try tree.file("train/1/broken.jpg", "this is not a JPEG")
        let dataset = try ImageFolderDataset(root: tree.root, split: .train)
        let broken = tree.root.appendingPathComponent("train/1/broken.jpg").path
        let strict = try BatchLoader(dataset: dataset, options: options(batch: 4, shuffle: false, augment: false))
        XCTAssertThrowsError(try readAll(strict, epoch: 0)) { error in
            XCTAssertTrue("\(error)".contains(broken), "\(error)")
        }

        var o = options(batch: 4, shuffle: false, augment: false)
        o.skipBadImages = true
        let warnings = WarningLog()
        let lenient = try BatchLoader(dataset: dataset, options: o, warn: { warnings.append($0) })
        let reader = lenient.epoch(0)
        var batches: [Batch] = []
        while let batch = try reader.next() { batches.append(batch) }
        XCTAssertEqual(batches.map(\.count), [4, 3, 4, 1])  // broken.jpg sorts first in class 1
        XCTAssertEqual(batches.flatMap(\.skippedPaths), [broken])
        XCTAssertEqual(reader.skippedCount, 1)
        XCTAssertEqual(warnings.lines.count, 1)
        XCTAssertTrue(warnings.lines[0].contains(broken))
        XCTAssertEqual(batches.flatMap(\.labels).count, 12)
    }

    func testDroppingAReaderEarlyStopsItsThread() throws {
        let (_, dataset) = try makeDataset()
        let loader = try BatchLoader(dataset: dataset, options: options(batch: 1, shuffle: true, augment: true))
        for epoch in 0..<20 {
            let reader = loader.epoch(epoch)
            _ = try reader.next()  // then drop it with 11 batches unread
        }
        // Reaching here without a hang is the test; a fresh epoch still reads completely.
        XCTAssertEqual(try readAll(loader, epoch: 0).count, 12)
    }

    func testInvalidOptionsAreErrors() throws {
        let (_, dataset) = try makeDataset()
        XCTAssertThrowsError(try BatchLoader(dataset: dataset, options: options(batch: 0, shuffle: false, augment: false)))
    }
}

/// Collects warnings from the loader's thread.
private final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}
