// The allclose comparison: pass/fail counts, worst element, smallest passing tolerances, top-1.

import ONNXIR
import XCTest
@testable import Parity

final class ComparisonTests: XCTestCase {
    func tensor(_ dims: [Int], _ values: [Float]) -> TensorData { TensorData(dims: dims, floats: values) }

    func testIdenticalTensorsPassWithZeroGaps() {
        let t = tensor([2, 2], [1, -2, 3, 0])
        let c = compare(name: "y", actual: t, reference: t, tolerance: .standard)
        XCTAssertTrue(c.passed)
        XCTAssertEqual(c.maxAbsDiff, 0)
        XCTAssertEqual(c.maxRelDiff, 0)
        XCTAssertEqual(c.smallestPassingAtol, 0)
        XCTAssertEqual(c.smallestPassingRtol, 0)
        XCTAssertEqual(c.top1Agreement, .init(agreeing: 2, rows: 2))
    }

    func testMismatchReportsWorstElementAndPassingTolerances() {
        // Element [1, 0] is off by 0.5 on a reference of 4: rel 0.125; element [0, 1] by 1e-4 on 1.
        let reference = tensor([2, 2], [0, 1, 4, 2])
        let actual = tensor([2, 2], [0, 1.0001, 4.5, 2])
        let tol = Tolerance(rtol: 1e-3, atol: 1e-5)
        let c = compare(name: "y", actual: actual, reference: reference, tolerance: tol)
        XCTAssertFalse(c.passed)
        XCTAssertEqual(c.mismatches, 1)
        XCTAssertEqual(c.worstIndex, [1, 0])
        XCTAssertEqual(c.worstActual, 4.5)
        XCTAssertEqual(c.worstReference, 4)
        XCTAssertEqual(c.maxAbsDiff, 0.5)
        XCTAssertEqual(c.maxRelDiff, 0.125)
        XCTAssertEqual(c.smallestPassingAtol, 0.5 - 1e-3 * 4, accuracy: 1e-12)
        XCTAssertEqual(c.smallestPassingRtol, (0.5 - 1e-5) / 4, accuracy: 1e-12)
        // Those tolerances do pass, and a hair less does not.
        XCTAssertTrue(compare(name: "y", actual: actual, reference: reference,
                              tolerance: Tolerance(rtol: tol.rtol, atol: c.smallestPassingAtol * (1 + 1e-9))).passed)
        XCTAssertFalse(compare(name: "y", actual: actual, reference: reference,
                               tolerance: Tolerance(rtol: tol.rtol, atol: c.smallestPassingAtol * 0.999)).passed)
        XCTAssertTrue(compare(name: "y", actual: actual, reference: reference,
                              tolerance: Tolerance(rtol: c.smallestPassingRtol * (1 + 1e-9), atol: tol.atol)).passed)
        // Row 1's argmax moved? No: 4.5 and 4 both lead row 1.
        XCTAssertEqual(c.top1Agreement, .init(agreeing: 2, rows: 2))
    }

    func testZeroReferenceNeedsAtolAndNaNRules() {
        let c = compare(name: "y", actual: tensor([3], [1e-3, .nan, 1]), reference: tensor([3], [0, .nan, 1]), tolerance: .standard)
        XCTAssertEqual(c.mismatches, 1)
        XCTAssertEqual(c.worstIndex, [0])
        XCTAssertEqual(c.smallestPassingRtol, .infinity)
        XCTAssertEqual(c.maxRelDiff, .infinity)
        XCTAssertEqual(c.smallestPassingAtol, Double(Float(1e-3)), accuracy: 1e-12)
        XCTAssertNil(c.top1Agreement)
        let nanVsNumber = compare(name: "y", actual: tensor([1], [.nan]), reference: tensor([1], [0]), tolerance: .standard)
        XCTAssertEqual(nanVsNumber.mismatches, 1)
    }

    func testTop1DisagreementAndShapeMismatch() {
        let c = compare(name: "logits", actual: tensor([2, 3], [0, 1, 0.9, 5, 0, 0]),
                        reference: tensor([2, 3], [0, 0.9, 1, 5, 0, 0]), tolerance: .standard)
        XCTAssertEqual(c.top1Agreement, .init(agreeing: 1, rows: 2))
        let s = compare(name: "y", actual: tensor([2], [1, 2]), reference: tensor([1, 2], [1, 2]), tolerance: .standard)
        XCTAssertFalse(s.passed)
        XCTAssertEqual(s.problem, "shape [2] differs from the reference's [1, 2]")
    }

    func testIntegerOutputsCompareExactlyAgainstOtherIntegerWidths() {
        let ours = TensorData(dims: [2], int64s: [3, -1])
        var bytes: [UInt8] = []
        for v: Int32 in [3, -1] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        let reference = TensorData(elementType: .int32, dims: [2], bytes: bytes)
        XCTAssertTrue(compare(name: "i", actual: ours, reference: reference, tolerance: .strict).passed)
        let float = compare(name: "i", actual: tensor([2], [3, -1]), reference: reference, tolerance: .strict)
        XCTAssertNotNil(float.problem)
    }

    func testMultiIndex() {
        XCTAssertEqual(multiIndex(0, shape: []), [])
        XCTAssertEqual(multiIndex(23, shape: [2, 3, 4]), [1, 2, 3])
        XCTAssertEqual(multiIndex(5, shape: [2, 3, 4]), [0, 1, 1])
    }
}
