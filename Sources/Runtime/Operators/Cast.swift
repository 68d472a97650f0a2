// Cast: converts between the element types the runtime holds exactly (float32 and the integer
// and bool types, all stored as int64); double, float16, bfloat16, strings, complex and 8-bit
// floats are refused at load because the runtime would not hold them as their own type.

import ONNXIR

public struct Cast: Operator {
    let label: NodeLabel
    let target: ElementType

    /// Range of each integer target (bool is 0 or 1 after `!= 0`).
    static func range(_ type: ElementType) -> ClosedRange<Int64>? {
        switch type {
        case .int8: return Int64(Int8.min)...Int64(Int8.max)
        case .uint8: return 0...Int64(UInt8.max)
        case .int16: return Int64(Int16.min)...Int64(Int16.max)
        case .uint16: return 0...Int64(UInt16.max)
        case .int32: return Int64(Int32.min)...Int64(Int32.max)
        case .uint32: return 0...Int64(UInt32.max)
        // uint64 values above Int64.max cannot be stored in the runtime's int64.
        case .uint64: return 0...Int64.max
        case .int64: return Int64.min...Int64.max
        default: return nil
        }
    }

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        guard let to = try reader.int("to") else { throw reader.fail("to", "required attribute is missing") }
        guard let type = Int32(exactly: to).flatMap(ElementType.init(rawValue:)),
              type == .float || type == .bool || Cast.range(type) != nil else {
            let name = Int32(exactly: to).flatMap(ElementType.init(rawValue:))?.description ?? "type \(to)"
            throw reader.fail("to", "casting to \(name) is not supported: the runtime computes in float32 and int64 and casts only to float, bool and integer types up to 64 bits")
        }
        target = type
        // Both only affect float8 (and float8e8m0) targets, which are refused above.
        if opset >= 19 {
            let saturate = try reader.int("saturate", default: 1)
            guard saturate == 0 || saturate == 1 else { throw reader.fail("saturate", "must be 0 or 1, got \(saturate)") }
        }
        if opset >= 24 {
            let mode = try reader.string("round_mode", default: "up")
            guard ["up", "down", "nearest"].contains(mode) else { throw reader.fail("round_mode", "unknown mode '\(mode)'") }
        }
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        if let folded = try foldConstants(inputs) { return folded }
        return [ValueShape(dtype: target == .float ? .float32 : .int64, dims: x.dims)]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.required(inputs, 0)
        if target == .float {
            // int64 -> float rounds to nearest, as C and numpy do.
            return ForwardResult([x.dtype == .float32 ? x : Tensor(shape: x.shape, floats: x.ints.map { Float($0) })])
        }
        if target == .bool {
            return ForwardResult([Tensor(shape: x.shape, ints: x.dtype == .float32 ? x.floats.map { $0 != 0 ? 1 : 0 } : x.ints.map { $0 != 0 ? 1 : 0 })])
        }
        let range = Cast.range(target)!
        var values = [Int64](repeating: 0, count: x.count)
        // Out-of-range values have no defined result in ONNX (C would wrap or trap); refuse them.
        if x.dtype == .float32 {
            for (i, f) in x.floats.enumerated() {
                let t = f.rounded(.towardZero)
                // Int64(exactly:) is nil for NaN, infinities and anything beyond int64.
                guard let v = Int64(exactly: t), range.contains(v) else {
                    throw label.error("value \(f) at index \(i) does not fit \(target)")
                }
                values[i] = v
            }
        } else {
            for (i, v) in x.ints.enumerated() {
                guard range.contains(v) else { throw label.error("value \(v) at index \(i) does not fit \(target)") }
                values[i] = v
            }
        }
        return ForwardResult([Tensor(shape: x.shape, ints: values)])
    }

    // float -> float passes dy through; casts to integers cut the gradient.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32, target == .float else { return [nil] }
        return [Tensor(shape: x.shape, floats: gradient(gradOutputs, 0, shape: x.shape))]
    }
}
