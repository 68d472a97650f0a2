// The strict safetensors reader: valid files, and every malformed header it must refuse.

import XCTest
import ONNXIR
@testable import MANet

final class SafetensorsTests: XCTestCase {
    func file(_ header: String, data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xFF) }
        out += h
        out += data
        return out
    }

    func testReadsTensors() throws {
        let a = TensorData(dims: [2], floats: [1.5, -2])
        let b = TensorData(dims: [], int64s: [7])
        let bytes = file(#"{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                         data: a.bytes + b.bytes)
        let tensors = try Safetensors.parse(bytes)
        XCTAssertEqual(tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(tensors[0].floats, [1.5, -2])
        XCTAssertEqual(tensors[1].int64s, [7])
        XCTAssertEqual(tensors[1].dims, [])
    }

    func assertRefused(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try Safetensors.parse(bytes, file: "x.safetensors"), line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
        }
    }

    func testRefusesMalformedFiles() {
        let eight = [UInt8](repeating: 0, count: 8)
        assertRefused([1, 2, 3], "shorter than the 8-byte header length")
        var long = file("{}", data: [])
        long[0] = 200
        assertRefused(long, "runs past the end of the file")
        assertRefused(file("[1]", data: []), "not a JSON object")
        assertRefused(file("{x", data: []), "not JSON")
        assertRefused(file(#"{"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0]), "unknown dtype F8")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, data: eight), "outside the 8-byte data area")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}}"#, data: eight), "outside")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight), "do not hold F32 [3]")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight), "invalid shape")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                           data: eight), "overlaps")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}"#, data: eight), "unknown keys")
        assertRefused(file(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight), "invalid data_offsets")
    }
}
