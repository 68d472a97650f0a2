// Training's 2-D MaxPool path (`maxPool2DForwardArgmax`) against the generic kernel and the
// inference one: the same outputs and the same argmax, with ties, signed zeros, NaN, windows of
// -inf alone and padding.

import Kernels
import TestSupport
import XCTest

final class MaxPoolArgmaxTests: XCTestCase {
    func testSameOutputsAndArgmaxAsTheGenericKernel() {
        let cases: [(size: [Int], kernel: [Int], strides: [Int], pads: [Int], padsEnd: [Int])] = [
            ([112, 112], [3, 3], [2, 2], [1, 1], [1, 1]),   // the stem's pool
            ([7, 9], [2, 2], [2, 2], [0, 0], [1, 1]),       // ceil-mode-like end padding
            ([6, 6], [3, 3], [1, 1], [1, 1], [1, 1]),
            ([5, 8], [3, 2], [2, 3], [1, 0], [0, 2]),
        ]
        for c in cases {
            var output: [Int] = []
            for axis in 0..<2 {
                let padded: Int = c.size[axis] + c.pads[axis] + c.padsEnd[axis]
                output.append((padded - c.kernel[axis]) / c.strides[axis] + 1)
            }
            let g = WindowGeometry(input: c.size, kernel: c.kernel, strides: c.strides, padsBegin: c.pads, padsEnd: c.padsEnd,
                                   dilations: [1, 1], output: output)
            XCTAssertTrue(maxPool2DApplies(g))
            let n = c.size[0] * c.size[1], outs = g.outputPlane
            // Few distinct values (many ties), signed zeros, a NaN and an infinity.
            var x: [Float] = pseudoRandom(n, seed: 11).map { v in (v * 4).rounded() / 4 }
            for i in stride(from: 0, to: n, by: 7) { x[i] = i % 2 == 0 ? 0 : -0.0 }
            x[n / 3] = .nan
            x[n / 3 + 1] = .nan   // two NaNs in a window
            x[n / 2] = -.infinity
            x[2 * n / 3] = .nan   // a NaN where the window's first element is not one
            // A block of -inf in the large plane (away from the NaNs): windows holding nothing
            // else keep their first element.
            if c.size[0] >= 40 { for r in 0..<4 { for col in 0..<20 { x[r * c.size[1] + col] = -.infinity } } }
            var yGeneric = [Float](repeating: 0, count: outs), yFast = yGeneric, yInference = yGeneric
            var aGeneric = [Int32](repeating: 7, count: outs), aFast = aGeneric
            maxPoolForward(x, &yGeneric, &aGeneric, g)
            maxPool2DForwardArgmax(x, &yFast, &aFast, g)
            maxPool2DForward(x, &yInference, g)
            XCTAssertTrue(yFast.elementsEqual(yGeneric) { $0.bitPattern == $1.bitPattern }, "\(c)")
            XCTAssertTrue(yInference.elementsEqual(yGeneric) { $0.bitPattern == $1.bitPattern }, "\(c)")
            XCTAssertEqual(aFast, aGeneric, "\(c)")
            if c.kernel[0] >= c.strides[0] && c.kernel[1] >= c.strides[1] {
                XCTAssertTrue(aGeneric.contains(Int32(n / 3)), "the NaN, in some window, is picked where it lies")
            }
        }
    }
}
