// Gemm and MatMul: inline products, broadcasting, failure texts, gradients.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class LinearAlgebraTests: XCTestCase {
    let a = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
    let b = Tensor(shape: [3, 2], floats: [1, 0, 0, 1, 1, 1])

    func testGemm() throws {
        // [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
        assertClose(try runNode("Gemm", [("a", a), ("b", b)])["y"]!.floats, [4, 5, 10, 11])
        let c = Tensor(shape: [2], floats: [1, -1])
        assertClose(try runNode("Gemm", [("a", a), ("b", b), ("c", c)], attributes: [attr("alpha", Float(2)), attr("beta", Float(3))])["y"]!.floats,
                    [11, 7, 23, 19])
        // transA and transB: A^T [3, 2] x B^T [2, 3].
        let y = try runNode("Gemm", [("a", a), ("b", b)], attributes: [attr("transA", 1), attr("transB", 1)])["y"]!
        XCTAssertEqual(y.shape, [3, 3])
        assertClose(y.floats, [1, 4, 5, 2, 5, 7, 3, 6, 9])
        let column = Tensor(shape: [2, 1], floats: [10, 20])
        assertClose(try runNode("Gemm", [("a", a), ("b", b), ("c", column)])["y"]!.floats, [14, 15, 30, 31])
    }

    func testMatMulShapes() throws {
        assertClose(try runNode("MatMul", [("a", a), ("b", b)])["y"]!.floats, [4, 5, 10, 11])
        // 1-D on either side: the promoted dim is dropped.
        let v = Tensor(shape: [3], floats: [1, 1, 1])
        let av = try runNode("MatMul", [("a", a), ("b", v)])["y"]!
        XCTAssertEqual(av.shape, [2])
        assertClose(av.floats, [6, 15])
        let va = try runNode("MatMul", [("a", v), ("b", b)])["y"]!
        XCTAssertEqual(va.shape, [2])
        assertClose(va.floats, [2, 2])
        // Batched broadcast: [2, 1, 2, 3] x [3, 3, 2] -> [2, 3, 2, 2].
        let a4 = Tensor(shape: [2, 1, 2, 3], floats: (0..<12).map(Float.init))
        let b3 = Tensor(shape: [3, 3, 2], floats: (0..<18).map { Float($0 % 5) })
        let y = try runNode("MatMul", [("a", a4), ("b", b3)])["y"]!
        XCTAssertEqual(y.shape, [2, 3, 2, 2])
        var expected: [Float] = []
        for i in 0..<2 { for j in 0..<3 { for r in 0..<2 { for c in 0..<2 {
            var s: Float = 0
            for k in 0..<3 { s += a4.floats[i * 6 + r * 3 + k] * b3.floats[j * 6 + k * 2 + c] }
            expected.append(s)
        }}}}
        assertClose(y.floats, expected)
    }

    func testErrors() {
        XCTAssertEqual(errorText { _ = try runNode("Gemm", [("a", self.a), ("b", self.a)]) },
                       "node node (Gemm): inner dims differ: op(A) is [2, 3], op(B) is [2, 3] (transA 0, transB 0)")
        XCTAssertEqual(errorText { _ = try runNode("Gemm", [("a", self.a), ("b", self.b), ("c", Tensor(shape: [3], floats: [1, 2, 3]))]) },
                       "node node (Gemm): C of shape [3] does not broadcast to [2, 2]")
        XCTAssertEqual(errorText { _ = try runNode("Gemm", [("a", self.a), ("b", self.b)], attributes: [attr("broadcast", 1)]) },
                       "node node (Gemm): attribute 'broadcast': unknown attribute for Gemm")
        XCTAssertEqual(errorText { _ = try runNode("MatMul", [("a", Tensor(shape: [2, 2, 3], floats: [Float](repeating: 0, count: 12))), ("b", Tensor(shape: [3, 3, 1], floats: [Float](repeating: 0, count: 9)))]) },
                       "node node (MatMul): batch dims of A [2, 2, 3] and B [3, 3, 1] do not broadcast")
    }

    func testGradients() throws {
        let a = Tensor(shape: [3, 4], floats: pseudoRandom(12, seed: 21))
        let bt = Tensor(shape: [5, 4], floats: pseudoRandom(20, seed: 22))
        let c = Tensor(shape: [5], floats: pseudoRandom(5, seed: 23))
        try checkGradients("Gemm", [("a", a), ("b", bt), ("c", c)], attributes: [attr("transB", 1), attr("alpha", Float(1.5)), attr("beta", Float(0.5))], step: 0.5)
        let at = Tensor(shape: [4, 3], floats: pseudoRandom(12, seed: 24))
        let b = Tensor(shape: [4, 5], floats: pseudoRandom(20, seed: 25))
        try checkGradients("Gemm", [("a", at), ("b", b), ("c", Tensor(shape: [3, 1], floats: [1, 2, 3]))], attributes: [attr("transA", 1)], step: 0.5)
        let a3 = Tensor(shape: [2, 1, 3, 4], floats: pseudoRandom(24, seed: 26))
        let b3 = Tensor(shape: [3, 4, 2], floats: pseudoRandom(24, seed: 27))
        try checkGradients("MatMul", [("a", a3), ("b", b3)], step: 0.5)
        try checkGradients("MatMul", [("a", Tensor(shape: [2, 3, 4], floats: pseudoRandom(24, seed: 28))), ("b", Tensor(shape: [4], floats: pseudoRandom(4, seed: 29)))], step: 0.5)
        try checkGradients("MatMul", [("a", Tensor(shape: [4], floats: pseudoRandom(4, seed: 30))), ("b", b3)], step: 0.5)
        try checkGradients("MatMul", [("a", Tensor(shape: [2, 3, 4], floats: pseudoRandom(24, seed: 31))), ("b", b)], step: 0.5)
    }
}
