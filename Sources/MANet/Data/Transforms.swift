// torchvision's image transforms on 8-bit RGB: Resize (PIL's antialiased bilinear), RandomResizedCrop, RandomHorizontalFlip, ToTensor.

import Foundation
import ManetSupport
import Runtime

/// A crop rectangle in pixels, named as torchvision's `get_params` returns it: (i, j, h, w).
public struct CropBox: Sendable, Equatable {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }
}

/// The deterministic image operations. `resize` is Pillow's `Image.resize(size, BILINEAR)`,
/// which is what torchvision's `Resize` calls on PIL images: a separable triangle filter whose
/// support widens by the downscale factor (antialiasing), computed in Pillow's 8-bit fixed point
/// (22 fractional bits, horizontal pass first, the intermediate rounded to 8 bits). Replaying the
/// same integer arithmetic gives Pillow's bytes; the only possible difference is a coefficient
/// landing exactly on a rounding boundary where C's and Swift's double rounding would have to
/// disagree, which they do not for IEEE doubles, so in practice the outputs are identical
/// (tests compare against a PIL fixture).
public enum ImageOps {
    /// Pillow's fixed-point precision for 8-bit images: 32 - 8 - 2 bits.
    private static let precisionBits = 22

    /// Resizes with Pillow's antialiased bilinear filter (see the type's comment).
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        precondition(width > 0 && height > 0, "resize target must be positive, got \(width)x\(height)")
        let needHorizontal = width != image.width
        let needVertical = height != image.height
        if !needHorizontal && !needVertical { return image }

        let vertical = coefficients(inSize: image.height, outSize: height)
        // Only the input rows the vertical pass reads go through the horizontal pass.
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[2 * (height - 1)] + vertical.bounds[2 * (height - 1) + 1]
        var source = image.pixels
        var sourceWidth = image.width
        var rowOffset = 0
        if needHorizontal {
            let horizontal = coefficients(inSize: image.width, outSize: width)
            source = resampleHorizontal(image.pixels, inWidth: image.width, rows: firstRow..<lastRow,
                                        outWidth: width, coefficients: horizontal)
            sourceWidth = width
            rowOffset = firstRow
        }
        if needVertical {
            let pixels = resampleVertical(source, width: sourceWidth, rowOffset: rowOffset, outHeight: height, coefficients: vertical)
            return RGBImage(width: width, height: height, pixels: pixels)
        }
        return RGBImage(width: width, height: height, pixels: source)
    }

    /// The pixels inside `box` (which must lie inside the image), like PIL's `crop`.
    public static func crop(_ image: RGBImage, _ box: CropBox) -> RGBImage {
        precondition(box.top >= 0 && box.left >= 0 && box.width > 0 && box.height > 0 &&
                     box.top + box.height <= image.height && box.left + box.width <= image.width,
                     "crop \(box) outside a \(image.width)x\(image.height) image")
        var pixels = [UInt8](repeating: 0, count: box.width * box.height * 3)
        image.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<box.height {
                    let from = ((box.top + y) * image.width + box.left) * 3
                    let to = y * box.width * 3
                    for i in 0..<(box.width * 3) { dst[to + i] = src[from + i] }
                }
            }
        }
        return RGBImage(width: box.width, height: box.height, pixels: pixels)
    }

    /// Mirror left-right.
    public static func horizontalFlip(_ image: RGBImage) -> RGBImage {
        var pixels = image.pixels
        let w = image.width
        for y in 0..<image.height {
            for x in 0..<(w / 2) {
                let a = (y * w + x) * 3, b = (y * w + (w - 1 - x)) * 3
                for c in 0..<3 { pixels.swapAt(a + c, b + c) }
            }
        }
        return RGBImage(width: w, height: image.height, pixels: pixels)
    }

    /// ToTensor: planar float32 [3, H, W] in [0, 1] (byte / 255, as `img.float().div(255)`).
    public static func toTensor(_ image: RGBImage) -> Tensor {
        var values = [Float](repeating: 0, count: image.width * image.height * 3)
        values.withUnsafeMutableBufferPointer { writeCHW(image, into: $0.baseAddress!) }
        return Tensor(shape: [3, image.height, image.width], floats: values)
    }

    /// ToTensor into a caller's buffer of `3 * H * W` floats (a slot of a batch tensor).
    public static func writeCHW(_ image: RGBImage, into destination: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height
        image.pixels.withUnsafeBufferPointer { src in
            for i in 0..<plane {
                destination[i] = Float(src[3 * i]) / 255
                destination[plane + i] = Float(src[3 * i + 1]) / 255
                destination[2 * plane + i] = Float(src[3 * i + 2]) / 255
            }
        }
    }

    // MARK: - Pillow's resampling

    /// Per output pixel: `bounds[2k]` = first input index, `bounds[2k+1]` = tap count; `weights`
    /// holds `taps` fixed-point weights per output pixel.
    struct Coefficients {
        var bounds: [Int]
        var weights: [Int]
        var taps: Int
    }

    /// Pillow's `precompute_coeffs` for the bilinear (triangle, support 1) filter, followed by
    /// `normalize_coeffs_8bpc`.
    static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: 2 * outSize)
        var weights = [Int](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let inverseFilterScale = 1.0 / filterScale
        let one = Double(1 << precisionBits)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            // C's (int) cast truncates toward zero; Swift's Int(Double) does the same.
            let xmin = max(Int(center - support + 0.5), 0)
            let xcount = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<xcount {
                let t = abs((Double(x + xmin) - center + 0.5) * inverseFilterScale)
                let w = t < 1 ? 1 - t : 0
                k[x] = w
                total += w
            }
            for x in 0..<taps {
                let w = x < xcount ? (total != 0 ? k[x] / total : k[x]) : 0
                weights[xx * taps + x] = w < 0 ? Int(-0.5 + w * one) : Int(0.5 + w * one)
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = xcount
        }
        return Coefficients(bounds: bounds, weights: weights, taps: taps)
    }

    /// Pillow's `clip8`: the accumulator's integer part, saturated to a byte.
    @inline(__always) private static func clip8(_ value: Int) -> UInt8 {
        if value >= (1 << precisionBits) << 8 { return 255 }
        if value <= 0 { return 0 }
        return UInt8(value >> precisionBits)
    }

    private static func resampleHorizontal(_ pixels: [UInt8], inWidth: Int, rows: Range<Int>, outWidth: Int,
                                           coefficients c: Coefficients) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: rows.count * outWidth * 3)
        let half = 1 << (precisionBits - 1)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { weights in
                    for (outRow, y) in rows.enumerated() {
                        let rowBase = y * inWidth * 3
                        for xx in 0..<outWidth {
                            let xmin = c.bounds[2 * xx], count = c.bounds[2 * xx + 1]
                            var r = half, g = half, b = half
                            for x in 0..<count {
                                let w = weights[xx * c.taps + x]
                                let p = rowBase + (xmin + x) * 3
                                r += Int(src[p]) * w
                                g += Int(src[p + 1]) * w
                                b += Int(src[p + 2]) * w
                            }
                            let o = (outRow * outWidth + xx) * 3
                            dst[o] = clip8(r)
                            dst[o + 1] = clip8(g)
                            dst[o + 2] = clip8(b)
                        }
                    }
                }
            }
        }
        return out
    }

    private static func resampleVertical(_ pixels: [UInt8], width: Int, rowOffset: Int, outHeight: Int,
                                         coefficients c: Coefficients) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outHeight * width * 3)
        let half = 1 << (precisionBits - 1)
        let rowBytes = width * 3
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { weights in
                    for yy in 0..<outHeight {
                        let ymin = c.bounds[2 * yy] - rowOffset, count = c.bounds[2 * yy + 1]
                        for i in 0..<rowBytes {
                            var acc = half
                            for y in 0..<count {
                                acc += Int(src[(ymin + y) * rowBytes + i]) * weights[yy * c.taps + y]
                            }
                            dst[yy * rowBytes + i] = clip8(acc)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// torchvision's `RandomResizedCrop(size, scale, ratio)`: a random area fraction and log-uniform
/// aspect ratio, up to 10 attempts, else a centre crop with the ratio clamped; then `ImageOps.resize`.
public struct RandomResizedCrop: Sendable {
    public var size: Int
    public var scale: ClosedRange<Double>
    public var ratio: ClosedRange<Double>

    public init(size: Int, scale: ClosedRange<Double> = 0.08...1.0, ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0)) {
        precondition(size > 0 && scale.lowerBound > 0 && ratio.lowerBound > 0, "RandomResizedCrop needs positive size, scale and ratio")
        self.size = size
        self.scale = scale
        self.ratio = ratio
    }

    /// torchvision's `get_params`. Python's `round` rounds half to even, so ours does too.
    public func parameters(width: Int, height: Int, using rng: inout Xoshiro256) -> CropBox {
        let area = Double(width * height)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * rng.uniform(scale.lowerBound, scale.upperBound)
            let aspect = exp(rng.uniform(logRatio.lowerBound, logRatio.upperBound))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = rng.nextInt(in: 0...(height - h))
                let left = rng.nextInt(in: 0...(width - w))
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }

    public func apply(_ image: RGBImage, using rng: inout Xoshiro256) -> RGBImage {
        let box = parameters(width: image.width, height: image.height, using: &rng)
        return ImageOps.resize(ImageOps.crop(image, box), width: size, height: size)
    }
}

/// The two pipelines of the authors' recipe. Train: RandomResizedCrop(size) then
/// RandomHorizontalFlip(0.5); test: Resize((size, size)). Both end in ToTensor, done by the
/// loader straight into the batch tensor.
public enum ImageTransform: Sendable, Equatable {
    case train(size: Int)
    case test(size: Int)

    public var size: Int {
        switch self {
        case .train(let size), .test(let size): return size
        }
    }

    /// Applies the pipeline; `rng` is only consumed by `.train`.
    public func apply(_ image: RGBImage, using rng: inout Xoshiro256) -> RGBImage {
        switch self {
        case .train(let size):
            let cropped = RandomResizedCrop(size: size).apply(image, using: &rng)
            // RandomHorizontalFlip(p = 0.5): flip when a uniform draw is below p, as torch.rand(1) < p.
            return rng.nextUnitDouble() < 0.5 ? ImageOps.horizontalFlip(cropped) : cropped
        case .test(let size):
            return ImageOps.resize(image, width: size, height: size)
        }
    }
}
