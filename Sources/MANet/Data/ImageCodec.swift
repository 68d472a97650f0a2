// Decodes JPEG/PNG files to RGBImage and encodes RGBImage to JPEG/PNG through the C shim over libjpeg-turbo and libpng.

import Foundation
import _CImageCodec

/// PNG colour types as the PNG specification numbers them (for writing test fixtures).
public enum PNGColorType: Int32, Sendable {
    case grey = 0
    case rgb = 2
    case palette = 3
    case greyAlpha = 4
    case rgba = 6
}

/// The image decoders and encoders. Decoders sniff the content (never trust the extension),
/// refuse dimensions above `maxDimension` before allocating, and turn every library failure into
/// a `DataError` naming the file, so a corrupt image can never crash a training run.
public enum ImageCodec {
    /// The default bound on width and height: 16384 px (768 MiB of RGB), far above any face crop.
    public static let defaultMaxDimension = 16384

    /// Decodes the JPEG or PNG file at `url` to 8-bit RGB.
    public static func decode(contentsOf url: URL, maxDimension: Int = defaultMaxDimension) throws -> RGBImage {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw DataError.unreadable(path: url.path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data: data, name: url.path, maxDimension: maxDimension)
    }

    /// Decodes JPEG or PNG bytes; `name` is used in error messages.
    public static func decode(data: Data, name: String, maxDimension: Int = defaultMaxDimension) throws -> RGBImage {
        precondition(maxDimension > 0, "maxDimension must be positive")
        let bytes = [UInt8](data.prefix(8))
        let isJPEG = bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
        let isPNG = bytes == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard isJPEG || isPNG else {
            let reason = data.isEmpty ? "the file is empty" : "not a JPEG or PNG file (unrecognised signature)"
            throw DataError.badImage(path: name, reason: reason)
        }
        var image = ic_image()
        var message = [CChar](repeating: 0, count: 256)
        let code: Int32 = data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress
            return isJPEG
                ? ic_decode_jpeg(base, raw.count, Int32(clamping: maxDimension), &image, &message, message.count)
                : ic_decode_png(base, raw.count, Int32(clamping: maxDimension), &image, &message, message.count)
        }
        let kind = isJPEG ? "JPEG" : "PNG"
        let reason = "\(kind): " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch Int(code) {
        case Int(IC_OK):
            break
        case Int(IC_ERR_TOO_LARGE):
            throw DataError.imageTooLarge(path: name, reason: reason)
        default:
            throw DataError.badImage(path: name, reason: reason)
        }
        defer { ic_free(image.pixels) }
        let width = Int(image.width), height = Int(image.height)
        let pixels = [UInt8](UnsafeBufferPointer(start: image.pixels, count: width * height * 3))
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Encodes an image as a baseline JPEG (quality 1-100, 4:2:0).
    public static func encodeJPEG(_ image: RGBImage, quality: Int = 90) throws -> Data {
        guard (1...100).contains(quality) else { throw DataError.invalidOption("JPEG quality must be 1-100, got \(quality)") }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = image.pixels.withUnsafeBufferPointer {
            ic_encode_jpeg($0.baseAddress, Int32(image.width), Int32(image.height), Int32(quality), &out, &size, &message, message.count)
        }
        return try takeEncoded(code: code, out: out, size: size, message: message)
    }

    /// Encodes an RGB image as an 8-bit RGB PNG.
    public static func encodePNG(_ image: RGBImage) throws -> Data {
        try encodePNG(rows: image.pixels, width: image.width, height: image.height, colorType: .rgb, bitDepth: 8)
    }

    /// Encodes raw PNG rows of any colour type and bit depth (rows packed as PNG stores them,
    /// 16-bit samples big-endian). `palette` holds RGB triples for `.palette`.
    public static func encodePNG(rows: [UInt8], width: Int, height: Int, colorType: PNGColorType, bitDepth: Int,
                                 palette: [UInt8] = []) throws -> Data {
        let channels: Int
        switch colorType {
        case .grey, .palette: channels = 1
        case .greyAlpha: channels = 2
        case .rgb: channels = 3
        case .rgba: channels = 4
        }
        let rowBytes = (width * channels * bitDepth + 7) / 8
        guard width > 0, height > 0, rows.count == rowBytes * height, palette.count % 3 == 0 else {
            throw DataError.encodeFailed(reason: "PNG rows: expected \(rowBytes * height) bytes for \(width)x\(height), got \(rows.count)")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = rows.withUnsafeBufferPointer { rowBuffer in
            palette.withUnsafeBufferPointer { paletteBuffer in
                ic_encode_png(rowBuffer.baseAddress, Int32(width), Int32(height), colorType.rawValue, Int32(bitDepth),
                              paletteBuffer.baseAddress, Int32(palette.count / 3), &out, &size, &message, message.count)
            }
        }
        return try takeEncoded(code: code, out: out, size: size, message: message)
    }

    private static func takeEncoded(code: Int32, out: UnsafeMutablePointer<UInt8>?, size: Int, message: [CChar]) throws -> Data {
        guard Int(code) == Int(IC_OK), let out else {
            throw DataError.encodeFailed(reason: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { ic_free(out) }
        return Data(bytes: out, count: size)
    }
}
