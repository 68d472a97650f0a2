// The synthetic expression dataset: reproducible images, the image-folder layout it writes, and its refusal to overwrite.

import Foundation
import ManetSupport
import XCTest
import MANet

final class SynthDatasetTests: XCTestCase {
    func testImagesArePureFunctionsOfSeedSplitClassAndIndex() {
        let a = SyntheticDataset.render(split: .train, label: 3, index: 5, size: 48, seed: 9)
        let b = SyntheticDataset.render(split: .train, label: 3, index: 5, size: 48, seed: 9)
        XCTAssertEqual(a.image, b.image)
        XCTAssertEqual(a.jpegQuality, b.jpegQuality)
        XCTAssertTrue((25...95).contains(a.jpegQuality))
        XCTAssertEqual([a.image.width, a.image.height], [48, 48])
        for other in [SyntheticDataset.render(split: .test, label: 3, index: 5, size: 48, seed: 9),
                      SyntheticDataset.render(split: .train, label: 4, index: 5, size: 48, seed: 9),
                      SyntheticDataset.render(split: .train, label: 3, index: 6, size: 48, seed: 9),
                      SyntheticDataset.render(split: .train, label: 3, index: 5, size: 48, seed: 10)] {
            XCTAssertNotEqual(other.image, a.image)
        }
    }

    func testPrototypesDifferInTheActionsThatDefineThem() {
        let neutral = FacialActions.prototype(0)
        XCTAssertEqual(neutral, FacialActions())
        XCTAssertGreaterThan(FacialActions.prototype(1).lipCorner, 0.5)       // happiness smiles
        XCTAssertLessThan(FacialActions.prototype(2).lipCorner, -0.5)         // sadness frowns
        XCTAssertGreaterThan(FacialActions.prototype(3).mouthOpen, 0.5)       // surprise drops the jaw
        XCTAssertGreaterThan(FacialActions.prototype(4).eyeOpen, 1.3)         // fear widens the eyes
        XCTAssertGreaterThan(FacialActions.prototype(5).noseWrinkle, 0.5)     // disgust wrinkles the nose
        XCTAssertGreaterThan(FacialActions.prototype(6).browLower, 0.5)       // anger lowers the brows
        // Samples scatter around the prototype but keep physical limits.
        var rng = Xoshiro256(seed: 4)
        for label in 0..<7 {
            for _ in 0..<50 {
                let s = FacialActions.sample(label: label, using: &rng)
                XCTAssertTrue(s.eyeOpen >= 0.05 && s.mouthOpen >= 0 && s.noseWrinkle >= 0, "\(s)")
            }
        }
    }

    func testNuisanceLevelChangesThePhotoNotTheFaceAndIsBounded() throws {
        // Level 0 is the clean frontal face with the best JPEG; the default (1) degrades it, yet
        // both come from the same generator, so the level is the only difference.
        let clean = SyntheticDataset.render(split: .train, label: 1, index: 2, size: 48, seed: 4, nuisance: 0)
        let moderate = SyntheticDataset.render(split: .train, label: 1, index: 2, size: 48, seed: 4)
        XCTAssertEqual(clean.jpegQuality, 95)
        XCTAssertTrue((40...95).contains(moderate.jpegQuality))
        XCTAssertNotEqual(clean.image, moderate.image)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("manet-synth-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        var options = SyntheticDataset.Options()
        options.trainPerClass = 1
        options.testPerClass = 1
        options.nuisance = 3.5
        XCTAssertThrowsError(try SyntheticDataset.write(to: root, options: options)) { error in
            XCTAssertTrue("\(error)".contains("nuisance"), "\(error)")
        }
    }

    func testWriteMakesALoadableImageFolderAndRefusesToOverwrite() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("manet-synth-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        var options = SyntheticDataset.Options()
        options.trainPerClass = 2
        options.testPerClass = 1
        options.size = 32
        options.seed = 3
        options.npySide = 8
        let reports = Reports()
        let summary = try SyntheticDataset.write(to: root, options: options) { done, total in reports.add(done, total) }
        XCTAssertEqual(summary.trainImages, 14)
        XCTAssertEqual(summary.testImages, 7)
        XCTAssertEqual(reports.done, Array(1...21))
        // Every image was renamed onto its name (one sync per class folder): no temporary is left.
        let leftovers = (FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])

        let (train, test) = try ImageFolderDataset.load(root: root)
        XCTAssertEqual(train.classNames, ImageFolderDataset.rafDBClassNames)
        XCTAssertEqual(train.classCounts, [Int](repeating: 2, count: 7))
        XCTAssertEqual(test.classCounts, [Int](repeating: 1, count: 7))
        let first = try ImageCodec.decode(contentsOf: train.samples[0].path)
        XCTAssertEqual([first.width, first.height], [32, 32])
        XCTAssertEqual(train.samples[0].path.lastPathComponent, "00000.jpg")

        // The .npy side files: uint8 [14, 8, 8, 3] and int64 labels in class order.
        let pixels = try Data(contentsOf: root.appendingPathComponent("train_pixels_8.npy"))
        let header = String(decoding: pixels.prefix(128), as: UTF8.self)
        XCTAssertTrue(header.contains("'shape': (14, 8, 8, 3)"), header)
        XCTAssertEqual((Int(pixels[8]) + 10) % 64, 0, "data must start on a 64-byte boundary")
        XCTAssertEqual(pixels.count, 10 + Int(pixels[8]) + 14 * 8 * 8 * 3)
        let labels = try Data(contentsOf: root.appendingPathComponent("test_labels.npy"))
        let body = labels.suffix(7 * 8)
        XCTAssertEqual(stride(from: 0, to: 56, by: 8).map { Int(body[body.startIndex + $0]) }, Array(0..<7))

        // Same seed, another thread count: identical files.
        let again = root.appendingPathComponent("again")
        options.threads = 1
        try SyntheticDataset.write(to: again, options: options)
        for sample in train.samples {
            let twin = again.appendingPathComponent(sample.path.path.replacingOccurrences(of: root.path + "/", with: ""))
            XCTAssertEqual(try Data(contentsOf: sample.path), try Data(contentsOf: twin))
        }

        XCTAssertThrowsError(try SyntheticDataset.write(to: root, options: options)) { error in
            XCTAssertTrue("\(error)".contains(root.appendingPathComponent("train").path), "\(error)")
        }
        XCTAssertNoThrow(try SyntheticDataset.write(to: root, options: options, replace: true))
    }
}

private final class Reports: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []
    func add(_ done: Int, _ total: Int) { lock.lock(); values.append(done); lock.unlock() }
    var done: [Int] { lock.lock(); defer { lock.unlock() }; return values }
}
