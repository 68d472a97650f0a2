// Attributes shared by Conv and the windowed pools (kernel, strides, pads, dilations, auto_pad)
// and the output-size arithmetic ONNX defines for them.

import Kernels
import ONNXIR

/// ONNX's `auto_pad`.
enum AutoPad: String {
    case notSet = "NOTSET", sameUpper = "SAME_UPPER", sameLower = "SAME_LOWER", valid = "VALID"
}

/// The window attributes of one Conv / MaxPool / AveragePool node, as written in the node;
/// `resolve` turns them into a concrete `WindowGeometry` for an input size.
struct WindowAttributes {
    let label: NodeLabel
    /// `nil` for Conv when the node leaves it to the weight's shape.
    var kernelShape: [Int]?
    var strides: [Int]?
    var pads: [Int]?
    var dilations: [Int]?
    var autoPad: AutoPad
    var ceilMode: Bool

    /// Reads `kernel_shape`, `strides`, `pads`, `dilations`, `auto_pad` and (for pools)
    /// `ceil_mode` from `reader`, checking values that do not depend on the input.
    init(_ reader: inout AttributeReader, label: NodeLabel, readCeilMode: Bool, readDilations: Bool = true) throws {
        self.label = label
        kernelShape = try reader.ints("kernel_shape")
        strides = try reader.ints("strides")
        pads = try reader.ints("pads")
        dilations = readDilations ? try reader.ints("dilations") : nil
        let autoPadName = try reader.string("auto_pad", default: "NOTSET")
        guard let autoPad = AutoPad(rawValue: autoPadName) else {
            throw reader.fail("auto_pad", "unsupported value '\(autoPadName)' (NOTSET, SAME_UPPER, SAME_LOWER or VALID)")
        }
        self.autoPad = autoPad
        ceilMode = readCeilMode ? (try reader.int("ceil_mode", default: 0)) != 0 : false
        if let k = kernelShape, k.contains(where: { $0 < 1 }) { throw reader.fail("kernel_shape", "values must be >= 1, got \(k)") }
        if let s = strides, s.contains(where: { $0 < 1 }) { throw reader.fail("strides", "values must be >= 1, got \(s)") }
        if let d = dilations, d.contains(where: { $0 < 1 }) { throw reader.fail("dilations", "values must be >= 1, got \(d)") }
        if let p = pads, p.contains(where: { $0 < 0 }) { throw reader.fail("pads", "values must be >= 0, got \(p)") }
        if let p = pads, p.count % 2 != 0 { throw reader.fail("pads", "needs begin and end values for each spatial dim, got \(p.count) values") }
        if autoPad != .notSet, let p = pads, p.contains(where: { $0 != 0 }) {
            throw reader.fail("pads", "cannot be combined with auto_pad \(autoPad.rawValue)")
        }
    }

    /// The geometry for spatial input dims `input` and kernel `kernel` (from `kernel_shape`
    /// or the weight). Errors name the attribute whose length or value does not fit.
    func resolve(input: [Int], kernel: [Int]) throws -> WindowGeometry {
        let r = input.count
        guard r >= 1 && r <= 3 else {
            throw label.error("\(r) spatial dims are not supported (1, 2 or 3)")
        }
        func list(_ name: String, _ value: [Int]?, _ fill: Int) throws -> [Int] {
            guard let value else { return [Int](repeating: fill, count: r) }
            guard value.count == r else {
                throw label.attributeError(name, "has \(value.count) values for \(r) spatial dims")
            }
            return value
        }
        guard kernel.count == r else {
            throw label.attributeError("kernel_shape", "has \(kernel.count) values for \(r) spatial dims")
        }
        let strides = try list("strides", self.strides, 1)
        let dilations = try list("dilations", self.dilations, 1)
        var begin = [Int](repeating: 0, count: r), end = begin
        if let pads {
            guard pads.count == 2 * r else {
                throw label.attributeError("pads", "has \(pads.count) values for \(r) spatial dims (needs \(2 * r))")
            }
            begin = Array(pads[0..<r])
            end = Array(pads[r...])
        }
        var output = [Int](repeating: 0, count: r)
        for i in 0..<r {
            let extent = (kernel[i] - 1) * dilations[i] + 1
            switch autoPad {
            case .sameUpper, .sameLower:
                // Output ceil(in / stride); the padding needed for that is split evenly, the odd
                // one going to the end (UPPER) or the beginning (LOWER).
                output[i] = (input[i] + strides[i] - 1) / strides[i]
                let total = max(0, (output[i] - 1) * strides[i] + extent - input[i])
                let small = total / 2
                (begin[i], end[i]) = autoPad == .sameUpper ? (small, total - small) : (total - small, small)
            case .valid:
                begin[i] = 0; end[i] = 0
                fallthrough
            case .notSet:
                let span = input[i] + begin[i] + end[i] - extent
                guard span >= 0 else {
                    throw label.error("window extent \(extent) is larger than the padded input (\(input[i] + begin[i] + end[i])) on spatial dim \(i)")
                }
                if ceilMode {
                    var n = (span + strides[i] - 1) / strides[i] + 1
                    // A last window starting in the end padding is dropped (PyTorch and ONNX agree).
                    if (n - 1) * strides[i] >= input[i] + begin[i] { n -= 1 }
                    output[i] = n
                } else {
                    output[i] = span / strides[i] + 1
                }
            }
        }
        return WindowGeometry(input: input, kernel: kernel, strides: strides, padsBegin: begin,
                              padsEnd: end, dilations: dilations, output: output)
    }

    /// Spatial output dims for shape inference (`nil` where the input dim is unknown).
    func outputDims(input: [Int?], kernel: [Int]) throws -> [Int?] {
        guard input.allSatisfy({ $0 != nil }) else {
            // Validates attribute lengths against the rank before indexing them per dim.
            _ = try resolve(input: input.map { $0 ?? 1 << 30 }, kernel: kernel)
            // Per-dim arithmetic needs only that dim; resolve each known dim on its own.
            return try input.enumerated().map { i, d -> Int? in
                guard let d else { return nil }
                var single = self
                single.kernelShape = nil
                single.strides = strides.map { [$0[i]] }
                single.dilations = dilations.map { [$0[i]] }
                single.pads = pads.map { [$0[i], $0[i + input.count]] }
                let g = try single.resolve(input: [d], kernel: [kernel[i]])
                return g.outW
            }
        }
        let g = try resolve(input: input.map { $0! }, kernel: kernel)
        let all = [g.outD, g.outH, g.outW]
        return Array(all[(3 - input.count)...]).map { $0 }
    }
}

extension WindowGeometry {
    /// Spatial output dims of the spatial rank `rank`.
    func outputDims(rank: Int) -> [Int] {
        Array([outD, outH, outW][(3 - rank)...])
    }
}
