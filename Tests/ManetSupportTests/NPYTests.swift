// The .npy reader and writer: round trips, numpy's own files, and every malformed-header case.

import Foundation
import ONNXIR
import TestSupport
import XCTest
@testable import ManetSupport

final class NPYTests: XCTestCase {
    /// A v1 file built by hand from the format description, independent of `NPY.encode`.
    func handMade(descr: String, fortran: Bool = false, shape: String, data: [UInt8],
                  version: UInt8 = 1, lengthOverride: Int? = nil) -> [UInt8] {
        var header = Array("{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }".utf8)
        header += [0x0A]
        let n = lengthOverride ?? header.count
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        out += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]
        return out + header + data
    }

    func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    func testReadsHandMadeFilesOfEveryVersion() throws {
        for version: UInt8 in [1, 2, 3] {
            let bytes = handMade(descr: "<f4", shape: "(2, 3)", data: floatBytes([1, 2, 3, 4, 5, -6.5]), version: version)
            let t = try NPY.decode(bytes)
            XCTAssertEqual(t.elementType, .float)
            XCTAssertEqual(t.dims, [2, 3])
            XCTAssertEqual(t.floats, [1, 2, 3, 4, 5, -6.5])
        }
        // A 1-tuple shape, a scalar, and a byte-order-free uint8.
        XCTAssertEqual(try NPY.decode(handMade(descr: "<f4", shape: "(2,)", data: floatBytes([1, 2]))).dims, [2])
        XCTAssertEqual(try NPY.decode(handMade(descr: "<f4", shape: "()", data: floatBytes([7]))).dims, [])
        let u8 = try NPY.decode(handMade(descr: "|u1", shape: "(3,)", data: [0, 128, 255]))
        XCTAssertEqual(u8.elementType, .uint8)
        XCTAssertEqual(u8.bytes, [0, 128, 255])
    }

    func testRoundTripsEveryType() throws {
        let types: [(ElementType, Int)] = [(.float, 4), (.double, 8), (.int32, 4), (.int64, 8), (.uint8, 1), (.bool, 1)]
        for (type, size) in types {
            let dims = [2, 1, 3]
            let bytes = (0..<(6 * size)).map { UInt8(type == .bool ? ($0 / size) % 2 : ($0 * 37) % 251) }
            let t = TensorData(elementType: type, dims: dims, bytes: type == .bool ? (0..<6).map { UInt8($0 % 2) } : bytes)
            let encoded = try NPY.encode(t)
            // numpy aligns the data on 64 bytes.
            XCTAssertEqual((encoded.count - t.bytes.count) % 64, 0, "\(type)")
            XCTAssertEqual(try NPY.decode(encoded), t, "\(type)")
        }
    }

    func testMalformedFilesAreErrorsNamingTheFile() {
        func reason(_ bytes: [UInt8]) -> String? {
            do {
                _ = try NPY.decode(bytes, file: "x.npy")
                return nil
            } catch let e as FileError {
                XCTAssertEqual(e.file, "x.npy")
                return e.reason
            } catch {
                return "unexpected \(error)"
            }
        }
        let good = handMade(descr: "<f4", shape: "(2,)", data: floatBytes([1, 2]))
        XCTAssertNil(reason(good))

        var badMagic = good
        badMagic[1] = UInt8(ascii: "M")
        XCTAssertEqual(reason(badMagic)?.hasPrefix("not a .npy file (bad magic"), true)
        XCTAssertEqual(reason(Array(good.prefix(5)))?.hasPrefix("not a .npy file"), true)

        let pastEnd = handMade(descr: "<f4", shape: "(2,)", data: [], lengthOverride: 60000)
        XCTAssertEqual(reason(pastEnd)?.hasPrefix("header length 60000 runs past the end of the file"), true, reason(pastEnd) ?? "")

        let short = handMade(descr: "<f4", shape: "(3,)", data: floatBytes([1, 2]))
        XCTAssertEqual(reason(short), "data is 8 bytes but shape [3] of <f4 needs 12")
        let long = handMade(descr: "<f4", shape: "(1,)", data: floatBytes([1, 2]))
        XCTAssertEqual(reason(long), "data is 8 bytes but shape [1] of <f4 needs 4")

        let fortran = handMade(descr: "<f4", fortran: true, shape: "(1, 2)", data: floatBytes([1, 2]))
        XCTAssertEqual(reason(fortran)?.hasPrefix("fortran_order is True"), true)

        XCTAssertEqual(reason(handMade(descr: ">f4", shape: "(2,)", data: floatBytes([1, 2])))?.contains("big-endian"), true)
        XCTAssertEqual(reason(handMade(descr: "<f2", shape: "(2,)", data: [0, 0, 0, 0]))?.hasPrefix("unsupported dtype '<f2'"), true)
        XCTAssertEqual(reason(handMade(descr: "<f4", shape: "(-1,)", data: []))?.contains("negative"), true)
        XCTAssertEqual(reason(handMade(descr: "|b1", shape: "(2,)", data: [1, 7])), "bool data holds byte 7 (only 0 and 1 are booleans)")

        var version9 = good
        version9[6] = 9
        XCTAssertEqual(reason(version9), "unsupported .npy format version 9.0 (1, 2 and 3 are read)")

        // Header text problems: missing key, extra key, not a dict, garbage.
        func withHeader(_ text: String) -> [UInt8] {
            let header = Array((text + "\n").utf8)
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header + floatBytes([1, 2])
        }
        XCTAssertEqual(reason(withHeader("{'descr': '<f4', 'shape': (2,), }"))?.hasPrefix("header keys must be exactly"), true)
        XCTAssertEqual(reason(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"))?.hasPrefix("header keys must be exactly"), true)
        XCTAssertEqual(reason(withHeader("[1, 2]"))?.hasPrefix("malformed header"), true)
        XCTAssertEqual(reason(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) "))?.hasPrefix("malformed header (expected '}' at offset"), true)
        XCTAssertEqual(reason(withHeader("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}"))?.hasPrefix("malformed header (unexpected token 'Maybe')"), true)
        // Nesting is bounded: a header of thousands of '(' once recursed until the stack overflowed
        // (found while writing the fuzz harness; fixtures/fuzz-regressions/npy/ holds the 60,000-deep one).
        XCTAssertEqual(reason(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 40)))?
            .hasPrefix("malformed header (containers nested more than 16 deep)"), true)
    }

    func testReadFileErrorsNameThePath() {
        XCTAssertThrowsError(try NPY.read(path: "/nonexistent/input_0.npy")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/input_0.npy: cannot read the file")
        }
    }

    /// Files written by numpy itself, when the tools venv is available (`make test` sets it).
    func testReadsAndWritesWhatNumpyDoes() throws {
        let python = try XCTUnwrap(TestEnvironment.value("MANET_PYTHON"), "MANET_PYTHON not set: run through make test")
        let folder = try TemporaryFolder("npy")
        defer { folder.remove() }
        let script = """
        import numpy as np, sys
        d = sys.argv[1]
        np.save(d + '/f4.npy', np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
        np.save(d + '/i8.npy', np.array([[-3], [2**40]], dtype=np.int64))
        np.save(d + '/b1.npy', np.array([True, False, True]))
        np.save(d + '/f8.npy', np.array(2.5))
        np.lib.format.write_array(open(d + '/v2.npy', 'wb'), np.ones((2,), dtype=np.int32), version=(2, 0))
        np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
        a = np.load(d + '/ours.npy'); assert a.dtype == np.float32 and a.shape == (3, 1), (a.dtype, a.shape)
        assert (a.ravel() == [0.5, -1, 3]).all(), a
        """
        try NPY.write(TensorData(dims: [3, 1], floats: [0.5, -1, 3]), to: folder.file("ours.npy"))
        let result = try runProcess(python, ["-c", script, folder.path])
        XCTAssertEqual(result.status, 0, result.stderr)

        let f4 = try NPY.read(path: folder.file("f4.npy"))
        XCTAssertEqual(f4.dims, [2, 3])
        XCTAssertEqual(f4.floats, [0, 0.25, 0.5, 0.75, 1, 1.25])
        XCTAssertEqual(try NPY.read(path: folder.file("i8.npy")).int64s, [-3, 1 << 40])
        XCTAssertEqual(try NPY.read(path: folder.file("b1.npy")).bytes, [1, 0, 1])
        let f8 = try NPY.read(path: folder.file("f8.npy"))
        XCTAssertEqual(f8.dims, [])
        XCTAssertEqual(f8.bytes, withUnsafeBytes(of: (2.5 as Double).bitPattern.littleEndian, Array.init))
        XCTAssertEqual(try NPY.read(path: folder.file("v2.npy")).bytes, [1, 0, 0, 0, 1, 0, 0, 0])  // int32 ones
        XCTAssertThrowsError(try NPY.read(path: folder.file("fortran.npy"))) { error in
            XCTAssertTrue("\(error)".contains("fortran.npy: fortran_order is True"), "\(error)")
        }
    }
}
