// The IR's own arithmetic: element sizes, overflow-safe shape maths, typed tensor accessors.

import XCTest
import ONNXIR

final class ShapeMathTests: XCTestCase {
    func testElementCountOfOrdinaryShapes() {
        XCTAssertEqual(ShapeMath.elementCount([]), 1, "a scalar has one element")
        XCTAssertEqual(ShapeMath.elementCount([2, 3, 4]), 24)
        XCTAssertEqual(ShapeMath.elementCount([5, 0, 7]), 0)
    }

    func testNegativeDimsHaveNoCount() {
        XCTAssertNil(ShapeMath.elementCount([2, -1]))
        XCTAssertNil(ShapeMath.byteCount([-3], .float))
    }

    func testOverflowingProductsAreRefusedNotWrapped() {
        // 2^32 * 2^32 wraps to 0 in 64-bit arithmetic; it must be refused instead.
        XCTAssertNil(ShapeMath.elementCount([1 << 32, 1 << 32]))
        XCTAssertNil(ShapeMath.elementCount([Int.max, 2]))
        // The element count fits but the byte count does not.
        XCTAssertEqual(ShapeMath.elementCount([1 << 61]), 1 << 61)
        XCTAssertNil(ShapeMath.byteCount([1 << 61], .double))
    }

    func testByteCountUsesElementSize() {
        XCTAssertEqual(ShapeMath.byteCount([2, 3], .float16), 12)
        XCTAssertEqual(ShapeMath.byteCount([2, 3], .complex128), 96)
        XCTAssertNil(ShapeMath.byteCount([2], .string), "strings have no fixed size")
    }
}

final class ElementTypeTests: XCTestCase {
    func testNumbersAndSizesFollowTensorProtoDataType() {
        XCTAssertEqual(ElementType.float.rawValue, 1)
        XCTAssertEqual(ElementType.int64.rawValue, 7)
        XCTAssertEqual(ElementType.bfloat16.rawValue, 16)
        XCTAssertEqual(ElementType.allCases.count, 16)
        for type in ElementType.allCases where type != .string {
            XCTAssertNotNil(type.byteSize, "\(type) needs a raw_data size")
        }
        XCTAssertEqual(ElementType.bool.byteSize, 1)
        XCTAssertEqual(ElementType.uint32.byteSize, 4)
        XCTAssertEqual(ElementType.complex64.byteSize, 8)
    }
}

final class TensorDataTests: XCTestCase {
    func testFloatsRoundTripThroughLittleEndianBytes() {
        let t = TensorData(name: "w", dims: [2, 2], floats: [1, -2.5, .infinity, 0x1p-149])
        XCTAssertEqual(t.bytes.count, 16)
        XCTAssertEqual(Array(t.bytes[0..<4]), [0x00, 0x00, 0x80, 0x3f], "1.0f little-endian")
        XCTAssertEqual(t.floats, [1, -2.5, .infinity, 0x1p-149])
        XCTAssertNil(t.int64s, "a float tensor has no int64 view")
    }

    func testInt64sRoundTrip() {
        let t = TensorData(dims: [3], int64s: [-1, 0, Int64.max])
        XCTAssertEqual(Array(t.bytes[0..<8]), [UInt8](repeating: 0xff, count: 8))
        XCTAssertEqual(t.int64s, [-1, 0, Int64.max])
        XCTAssertEqual(t.elementCount, 3)
    }

    func testModelOpsetLookupTreatsAiOnnxAsDefaultDomain() {
        let model = Model(opsetImports: [OpsetImport(domain: "ai.onnx", version: 13),
                                         OpsetImport(domain: "com.microsoft", version: 1)],
                          graph: Graph())
        XCTAssertEqual(model.opsetVersion(for: ""), 13)
        XCTAssertEqual(model.opsetVersion(for: "com.microsoft"), 1)
        XCTAssertNil(model.opsetVersion(for: "ai.onnx.ml"))
    }
}
