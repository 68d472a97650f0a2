// Resize against Pillow's own output, RandomResizedCrop's sampling rules, flip and ToTensor.

import Foundation
import ManetSupport
import XCTest
import MANet

final class DataTransformTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/data")

    /// Reads a uint8 .npy of shape (H, W, 3), as tools/fixtures/pil_resize_fixture.py writes it.
    private func loadNPY(_ name: String) throws -> RGBImage {
        let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
        XCTAssertEqual(Array(bytes[1...5]), Array("NUMPY".utf8))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.contains("'descr': '|u1'") && header.contains("'fortran_order': False"), header)
        let shapeText = header.split(separator: "(")[1].split(separator: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(shape.count, 3)
        return RGBImage(width: shape[1], height: shape[0], pixels: Array(bytes[(10 + headerLength)...]))
    }

    private func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
        zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    // MARK: - Resize

    func testResizeUpTo224MatchesPillowExactly() throws {
        let input = try ImageCodec.decode(contentsOf: Self.fixtures.appendingPathComponent("resize_input.png"))
        let expected = try loadNPY("resize_224x224.npy")
        let actual = ImageOps.resize(input, width: 224, height: 224)
        XCTAssertEqual([actual.width, actual.height], [224, 224])
        XCTAssertEqual(maxDifference(actual, expected), 0, "max |diff| against PIL's BILINEAR resize")
    }

    func testAntialiasedDownscaleMatchesPillowExactly() throws {
        let input = try ImageCodec.decode(contentsOf: Self.fixtures.appendingPathComponent("resize_input.png"))
        let expected = try loadNPY("resize_40x36.npy")
        let actual = ImageOps.resize(input, width: 40, height: 36)
        XCTAssertEqual([actual.width, actual.height], [40, 36])
        XCTAssertEqual(maxDifference(actual, expected), 0, "max |diff| against PIL's antialiased BILINEAR downscale")
    }

    func testResizeToTheSameSizeIsIdentity() {
        let image = RGBImage(width: 3, height: 2, pixels: Array(0..<18).map { UInt8($0 * 13) })
        XCTAssertEqual(ImageOps.resize(image, width: 3, height: 2), image)
    }

    func testDownscaleByTwoAveragesWithTheTriangleFilter() {
        // 4x1 -> 2x1: support 2, centres at 1 and 3; taps at distances 1.5, 0.5, 0.5, 1.5 (scaled by 1/2)
        // give weights 0.25, 0.75, 0.75, 0.25 (normalised over the taps inside the image).
        let row: [UInt8] = [0, 100, 200, 40]
        let image = RGBImage(width: 4, height: 1, pixels: row.flatMap { [$0, $0, $0] })
        let out = ImageOps.resize(image, width: 2, height: 1)
        // Left: (0*0.75 + 100*0.75 + 200*0.25) / 1.75 = 71.43 -> 71; right: (100*.25 + 200*.75 + 40*.75) / 1.75 = 117.14 -> 117.
        XCTAssertEqual(out.pixels, [71, 71, 71, 117, 117, 117])
    }

    // MARK: - RandomResizedCrop

    func testRandomResizedCropBoxesObeyScaleAndRatio() {
        let crop = RandomResizedCrop(size: 224)
        var rng = Xoshiro256(seed: 3)
        for _ in 0..<500 {
            let box = crop.parameters(width: 100, height: 100, using: &rng)
            XCTAssertGreaterThanOrEqual(box.top, 0)
            XCTAssertGreaterThanOrEqual(box.left, 0)
            XCTAssertLessThanOrEqual(box.top + box.height, 100)
            XCTAssertLessThanOrEqual(box.left + box.width, 100)
            let area = Double(box.width * box.height) / 10_000
            let ratio = Double(box.width) / Double(box.height)
            // Rounding w and h to integers moves area and ratio slightly outside the nominal ranges.
            XCTAssertGreaterThan(area, 0.08 * 0.8)
            XCTAssertLessThanOrEqual(area, 1.0)
            XCTAssertGreaterThan(ratio, 0.75 * 0.85)
            XCTAssertLessThan(ratio, 4.0 / 3.0 * 1.15)
        }
    }

    func testRandomResizedCropFallsBackToAClampedCentreCrop() {
        // A 1000x10 strip: no sampled box fits in 10 attempts, so torchvision's fallback applies:
        // ratio 100 > 4/3 -> h = 10, w = round(10 * 4/3) = 13, centred.
        let crop = RandomResizedCrop(size: 8)
        var rng = Xoshiro256(seed: 1)
        XCTAssertEqual(crop.parameters(width: 1000, height: 10, using: &rng), CropBox(top: 0, left: 493, height: 10, width: 13))
        XCTAssertEqual(crop.parameters(width: 10, height: 1000, using: &rng), CropBox(top: 493, left: 0, height: 13, width: 10))
    }

    func testTrainTransformIsDeterministicGivenTheGenerator() {
        var pixels: [UInt8] = []
        for i in 0..<(60 * 50) { pixels += [UInt8(i % 256), UInt8(i / 60 * 5 % 256), UInt8(i * 7 % 256)] }
        let image = RGBImage(width: 60, height: 50, pixels: pixels)
        var a = Xoshiro256(seed: 11), b = Xoshiro256(seed: 11), c = Xoshiro256(seed: 12)
        let first = ImageTransform.train(size: 32).apply(image, using: &a)
        XCTAssertEqual(first, ImageTransform.train(size: 32).apply(image, using: &b))
        XCTAssertEqual([first.width, first.height], [32, 32])
        XCTAssertNotEqual(first, ImageTransform.train(size: 32).apply(image, using: &c))
        XCTAssertEqual(ImageTransform.test(size: 32).apply(image, using: &a), ImageOps.resize(image, width: 32, height: 32))
    }

    func testTrainTransformFlipsAboutHalfTheTime() {
        // A left-dark, right-bright image: after a flip the left half is brighter.
        var pixels: [UInt8] = []
        for _ in 0..<20 { for x in 0..<20 { pixels += [UInt8(x * 12), UInt8(x * 12), UInt8(x * 12)] } }
        let image = RGBImage(width: 20, height: 20, pixels: pixels)
        var flips = 0
        for seed in 0..<400 {
            var rng = Xoshiro256(seed: UInt64(seed))
            let out = ImageTransform.train(size: 16).apply(image, using: &rng)
            if out[0, 8].0 > out[15, 8].0 { flips += 1 }
        }
        XCTAssertTrue((150...250).contains(flips), "\(flips) flips in 400")
    }

    // MARK: - Flip and ToTensor

    func testHorizontalFlipMirrorsRows() {
        let image = RGBImage(width: 3, height: 1, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(ImageOps.horizontalFlip(image).pixels, [7, 8, 9, 4, 5, 6, 1, 2, 3])
    }

    func testToTensorIsPlanarAndScaledTo01() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 51, 255, 102, 153, 204])
        let tensor = ImageOps.toTensor(image)
        XCTAssertEqual(tensor.shape, [3, 1, 2])
        XCTAssertEqual(tensor.floats, [0, 0.4, 0.2, 0.6, 1, 0.8].map { Float($0) }, accuracy: 1e-7)
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
