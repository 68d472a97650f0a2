// JPEG and PNG decoding through libjpeg-turbo/libpng: every PNG colour type to RGB, and bad files as errors that name the file.

import Foundation
import ManetSupport
import XCTest
import MANet

final class DataCodecTests: XCTestCase {
    /// A 5x3 RGB image with distinct values in every byte.
    private let sample: RGBImage = {
        var pixels: [UInt8] = []
        for y in 0..<3 { for x in 0..<5 { pixels += [UInt8(40 * x + 10), UInt8(70 * y + 5), UInt8(200 - 13 * x - 20 * y)] } }
        return RGBImage(width: 5, height: 3, pixels: pixels)
    }()

    private func decode(_ data: Data, _ name: String = "memory.png") throws -> RGBImage {
        try ImageCodec.decode(data: data, name: name)
    }

    /// Writes `data` to a temporary file and returns its URL.
    private func temporaryFile(_ name: String, _ data: Data) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("manet-codec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    /// Asserts that decoding the file throws a DataError whose text contains the file's path.
    private func assertBadFile(_ name: String, _ data: Data, expecting fragment: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try temporaryFile(name, data)
        XCTAssertThrowsError(try ImageCodec.decode(contentsOf: url), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), "error does not name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.lowercased().contains(fragment.lowercased()), "expected '\(fragment)' in: \(text)", file: file, line: line)
        }
    }

    // MARK: - PNG colour types

    func testRGBPNGRoundTripsExactly() throws {
        let png = try ImageCodec.encodePNG(sample)
        XCTAssertEqual(try decode(png), sample)
    }

    func testGreyPNGBecomesRGBWithEqualChannels() throws {
        let grey: [UInt8] = [0, 17, 128, 200, 255, 3]
        let png = try ImageCodec.encodePNG(rows: grey, width: 3, height: 2, colorType: .grey, bitDepth: 8)
        let image = try decode(png)
        XCTAssertEqual(image.pixels, grey.flatMap { [$0, $0, $0] })
    }

    func testOneBitGreyExpandsTo0And255() throws {
        // 10 pixels per row, MSB first: 1010110000 -> bytes 0b10101100, 0b00000000.
        let png = try ImageCodec.encodePNG(rows: [0b1010_1100, 0b0000_0000], width: 10, height: 1, colorType: .grey, bitDepth: 1)
        let image = try decode(png)
        let expected: [UInt8] = [255, 0, 255, 0, 255, 255, 0, 0, 0, 0]
        XCTAssertEqual(image.pixels, expected.flatMap { [$0, $0, $0] })
    }

    func testGreyAlphaDropsAlpha() throws {
        let png = try ImageCodec.encodePNG(rows: [90, 0, 180, 255], width: 2, height: 1, colorType: .greyAlpha, bitDepth: 8)
        XCTAssertEqual(try decode(png).pixels, [90, 90, 90, 180, 180, 180])
    }

    func testRGBADropsAlphaWithoutCompositing() throws {
        let rgba: [UInt8] = [255, 0, 0, 0, 0, 255, 0, 128, 10, 20, 30, 255]
        let png = try ImageCodec.encodePNG(rows: rgba, width: 3, height: 1, colorType: .rgba, bitDepth: 8)
        XCTAssertEqual(try decode(png).pixels, [255, 0, 0, 0, 255, 0, 10, 20, 30])
    }

    func testSixteenBitKeepsTheHighByte() throws {
        // Big-endian samples 0x12FF, 0xAB00, 0x0101 -> 0x12, 0xAB, 0x01 (as PIL's RGB;16B).
        let png = try ImageCodec.encodePNG(rows: [0x12, 0xFF, 0xAB, 0x00, 0x01, 0x01], width: 1, height: 1, colorType: .rgb, bitDepth: 16)
        XCTAssertEqual(try decode(png).pixels, [0x12, 0xAB, 0x01])
    }

    func testPaletteExpandsToItsColours() throws {
        let palette: [UInt8] = [255, 0, 0, 0, 128, 0, 1, 2, 3]
        // 4-bit indices: 2, 0, 1 (padded) -> bytes 0x20, 0x10.
        let png = try ImageCodec.encodePNG(rows: [0x20, 0x10], width: 3, height: 1, colorType: .palette, bitDepth: 4, palette: palette)
        XCTAssertEqual(try decode(png).pixels, [1, 2, 3, 255, 0, 0, 0, 128, 0])
    }

    // MARK: - JPEG

    func testJPEGRoundTripIsClose() throws {
        // A smooth 64x48 image survives quality 95 within a few levels.
        var pixels: [UInt8] = []
        for y in 0..<48 { for x in 0..<64 { pixels += [UInt8(x * 4), UInt8(y * 5), UInt8((x + y) * 2)] } }
        let image = RGBImage(width: 64, height: 48, pixels: pixels)
        let decoded = try decode(try ImageCodec.encodeJPEG(image, quality: 95), "memory.jpg")
        XCTAssertEqual(decoded.width, 64)
        XCTAssertEqual(decoded.height, 48)
        let maxDiff = zip(decoded.pixels, pixels).map { abs(Int($0) - Int($1)) }.max()!
        XCTAssertLessThanOrEqual(maxDiff, 8)
    }

    func testContentNotExtensionDecidesTheFormat() throws {
        let url = try temporaryFile("actually-a-png.jpg", try ImageCodec.encodePNG(sample))
        XCTAssertEqual(try ImageCodec.decode(contentsOf: url), sample)
    }

    // MARK: - Bad files

    func testTruncatedJPEGIsAnErrorNamingTheFile() throws {
        var pixels: [UInt8] = []
        for i in 0..<(80 * 60) { pixels += [UInt8(i % 251), UInt8(i % 13 * 19), UInt8(i % 7 * 36)] }
        let jpeg = try ImageCodec.encodeJPEG(RGBImage(width: 80, height: 60, pixels: pixels), quality: 90)
        try assertBadFile("truncated.jpg", jpeg.prefix(jpeg.count / 2), expecting: "premature end")
        try assertBadFile("header-only.jpg", jpeg.prefix(20), expecting: "JPEG")
    }

    func testTruncatedAndCorruptPNGAreErrors() throws {
        let png = try ImageCodec.encodePNG(sample)
        try assertBadFile("truncated.png", png.prefix(png.count - 20), expecting: "PNG")
        try assertBadFile("signature-only.png", png.prefix(8), expecting: "PNG")
        var corrupt = [UInt8](png)
        corrupt[20] ^= 0xFF  // inside IHDR: its CRC no longer matches
        try assertBadFile("bad-crc.png", Data(corrupt), expecting: "CRC")
    }

    func testNonImagesAreErrors() throws {
        try assertBadFile("empty.jpg", Data(), expecting: "empty")
        try assertBadFile("notes.png", Data("not an image at all\n".utf8), expecting: "not a JPEG or PNG")
        var rng = Xoshiro256(seed: 7)
        let noise = Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        try assertBadFile("noise.jpg", noise, expecting: "not a JPEG or PNG")
        // JPEG magic followed by garbage.
        try assertBadFile("garbage.jpg", Data([0xFF, 0xD8, 0xFF]) + noise, expecting: "JPEG")
    }

    func testMissingFileNamesThePath() {
        let path = "/nonexistent/manet/face.jpg"
        XCTAssertThrowsError(try ImageCodec.decode(contentsOf: URL(fileURLWithPath: path))) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testDimensionBoundIsCheckedBeforeDecoding() throws {
        let png = try ImageCodec.encodePNG(RGBImage(width: 40, height: 30))
        let jpeg = try ImageCodec.encodeJPEG(RGBImage(width: 40, height: 30))
        for (data, name) in [(png, "big.png"), (jpeg, "big.jpg")] {
            XCTAssertThrowsError(try ImageCodec.decode(data: data, name: name, maxDimension: 32)) { error in
                guard case DataError.imageTooLarge(let path, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(path, name)
            }
            XCTAssertNoThrow(try ImageCodec.decode(data: data, name: name, maxDimension: 40))
        }
    }

    func testEncodersRejectBadArguments() {
        XCTAssertThrowsError(try ImageCodec.encodeJPEG(sample, quality: 0))
        XCTAssertThrowsError(try ImageCodec.encodePNG(rows: [1, 2], width: 3, height: 1, colorType: .rgb, bitDepth: 8))
        XCTAssertThrowsError(try ImageCodec.encodePNG(rows: [0], width: 1, height: 1, colorType: .palette, bitDepth: 8))
    }
}
