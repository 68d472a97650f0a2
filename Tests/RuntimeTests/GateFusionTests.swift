// CBAM's gate fusions (`GraphOptimizations.fuseGates`): which steps they take, which they must
// leave alone, and the same bits as the graph as written on 1, 2 and 3 threads.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class GateFusionTests: XCTestCase {
    func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    /// Bits with every NaN as one: a sum of two NaNs (or of inf and -inf, whose NaN has another
    /// sign) returns the payload of whichever operand the compiled add puts first, which the
    /// source order does not fix (the Add as written returned the product's NaN for Add(r, p)).
    /// Maxima keep their payloads (`exact`).
    func bitsAnyNaN(_ v: [Float]) -> [UInt32] { v.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern } }


    func model(_ nodes: [Node], inputs: [String], outputs: [String]) -> Model {
        let graph = Graph(name: "g", nodes: nodes, inputs: inputs.map { ValueInfo.tensor($0, .float, nil) },
                          outputs: outputs.map { ValueInfo.tensor($0, .float, nil) }, initializers: [])
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    /// The fused plan's results against the graph as written, bit for bit, on 1, 2 and 3
    /// threads; returns the fused plan's step operators.
    @discardableResult
    func check(_ m: Model, _ feeds: [String: Tensor], _ message: String = "", exact: Set<String> = [],
               file: StaticString = #filePath, line: UInt = #line) throws -> [any Operator] {
        var ops: [any Operator] = []
        for threads in 1...3 {
            let context = ExecutionContext(threads: threads)
            let plain = try Executor(model: m, context: context, options: .none)
            let fused = try Executor(model: m, context: context, options: .inference)
            let want = try plain.run(inputs: feeds), got = try fused.run(inputs: feeds)
            XCTAssertEqual(got.keys.sorted(), want.keys.sorted(), file: file, line: line)
            for (name, t) in want {
                XCTAssertEqual(got[name]?.shape, t.shape, "\(message) \(name)", file: file, line: line)
                let compare = exact.contains(name) ? bits : bitsAnyNaN
                XCTAssertEqual(compare(got[name]?.floats ?? []), compare(t.floats), "\(message) \(name), \(threads) threads",
                               file: file, line: line)
            }
            ops = fused.inferencePlan().steps.map(\.op)
        }
        return ops
    }

    func reduce(_ op: String, _ x: String, _ y: String, axes: [Int] = [1]) -> Node {
        Node(name: y, opType: op, inputs: [x], outputs: [y], attributes: [attr("axes", axes), attr("keepdims", 1)])
    }

    // MARK: GlobalAveragePool + GlobalMaxPool

    func testGlobalPoolsOfOneTensorInOneStep() throws {
        let gap = Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["a"])
        let gmp = Node(name: "gmp", opType: "GlobalMaxPool", inputs: ["x"], outputs: ["m"])
        // 22 planes: two groups of eight and six alone; 1200 planes of 41 split over threads.
        for shape in [[2, 11, 7, 7], [1, 24, 49], [3, 400, 41, 1], [1, 3, 1, 1]] {
            let x = Tensor(shape: shape, floats: specialValues(shape.reduce(1, *), seed: 3))
            for nodes in [[gap, gmp], [gmp, gap]] {
                let ops = try check(model(nodes, inputs: ["x"], outputs: ["a", "m"]), ["x": x], "\(shape)", exact: ["m"])
                XCTAssertEqual(ops.count, 1)
                XCTAssertTrue(ops.first is FusedGlobalPools)
            }
        }
    }

    /// Planes of one NaN, of -0 then +0, of -inf alone: what GlobalMaxPool picks, bit for bit.
    func testGlobalPoolsEdgeValues() throws {
        let gap = Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["a"])
        let gmp = Node(name: "gmp", opType: "GlobalMaxPool", inputs: ["x"], outputs: ["m"])
        let nan2 = Float(bitPattern: 0x7FC0_1234)
        let planes: [[Float]] = [[-0.0, 0, -1], [0, -0.0, -1], [-.infinity, -.infinity, -.infinity], [1, .nan, nan2],
                                 [1, nan2, .nan], [-2, .infinity, 3], [-1, -0.0, 0], [5, 5, -5], [0, 0, -0.0]]
        let x = Tensor(shape: [1, planes.count, 3], floats: planes.flatMap { $0 })
        try check(model([gap, gmp], inputs: ["x"], outputs: ["a", "m"]), ["x": x], exact: ["a", "m"])
    }

    func testGlobalPoolsOfDifferentTensorsNotFused() throws {
        let nodes = [Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["a"]),
                     Node(name: "gmp", opType: "GlobalMaxPool", inputs: ["z"], outputs: ["m"])]
        let x = Tensor(shape: [1, 9, 4, 4], floats: pseudoRandom(144, seed: 4))
        let ops = try check(model(nodes, inputs: ["x", "z"], outputs: ["a", "m"]), ["x": x, "z": x])
        XCTAssertFalse(ops.contains { $0 is FusedGlobalPools })
    }

    // MARK: ReduceMax + ReduceMean + Concat

    func testChannelPoolsAndConcatInOneStep() throws {
        // 15-position planes take Reduction's per-element walk, 49 its runs; 300 x 110 split over threads.
        for shape in [[2, 13, 7, 7], [1, 5, 3, 5], [2, 300, 10, 11], [1, 1, 4, 4]] {
            let x = Tensor(shape: shape, floats: specialValues(shape.reduce(1, *), seed: 5))
            for maxFirst in [true, false] {
                let nodes = [reduce("ReduceMax", "x", "mx"), reduce("ReduceMean", "x", "mn"),
                             Node(name: "cat", opType: "Concat", inputs: maxFirst ? ["mx", "mn"] : ["mn", "mx"], outputs: ["y"],
                                  attributes: [attr("axis", 1)])]
                let ops = try check(model(nodes, inputs: ["x"], outputs: ["y"]), ["x": x], "\(shape) \(maxFirst)")
                XCTAssertEqual(ops.count, 1)
                XCTAssertTrue(ops.first is FusedChannelPools)
            }
        }
    }

    /// A Concat on another axis takes the step but runs the three operators as written.
    func testChannelPoolsOtherConcatAxis() throws {
        let nodes = [reduce("ReduceMax", "x", "mx"), reduce("ReduceMean", "x", "mn"),
                     Node(name: "cat", opType: "Concat", inputs: ["mx", "mn"], outputs: ["y"], attributes: [attr("axis", 2)])]
        let x = Tensor(shape: [2, 6, 5, 3], floats: pseudoRandom(180, seed: 6))
        try check(model(nodes, inputs: ["x"], outputs: ["y"]), ["x": x])
    }

    func testChannelPoolsNotFusedWhenAReductionIsNeededElsewhere() throws {
        let x = Tensor(shape: [1, 6, 4, 4], floats: pseudoRandom(96, seed: 7))
        let cat = Node(name: "cat", opType: "Concat", inputs: ["mx", "mn"], outputs: ["y"], attributes: [attr("axis", 1)])
        let cases: [([Node], [String])] = [
            ([reduce("ReduceMax", "x", "mx"), reduce("ReduceMean", "x", "mn"), cat], ["y", "mn"]),  // a graph output
            ([reduce("ReduceMax", "x", "mx"), reduce("ReduceMean", "x", "mn"), cat,
              Node(name: "r", opType: "Relu", inputs: ["mx"], outputs: ["q"])], ["y", "q"]),  // read by another node
            ([reduce("ReduceMax", "x", "mx"), reduce("ReduceMean", "z", "mn"), cat], ["y"]),  // different tensors
            ([reduce("ReduceMax", "x", "mx", axes: [2]), reduce("ReduceMean", "x", "mn", axes: [2]),
              Node(name: "cat", opType: "Concat", inputs: ["mx", "mn"], outputs: ["y"], attributes: [attr("axis", 2)])], ["y"]),
            ([reduce("ReduceMax", "x", "mx"), reduce("ReduceMax", "x", "mn"), cat], ["y"]),  // not max and mean
        ]
        for (nodes, outputs) in cases {
            let ops = try check(model(nodes, inputs: ["x", "z"], outputs: outputs), ["x": x, "z": x])
            XCTAssertFalse(ops.contains { $0 is FusedChannelPools }, "\(nodes.map(\.opType)) -> \(outputs)")
        }
    }

    // MARK: Mul -> Add (-> Relu)

    func mulAdd(productFirst: Bool, relu: Bool) -> [Node] {
        var nodes = [Node(name: "mul", opType: "Mul", inputs: ["a", "b"], outputs: ["p"]),
                     Node(name: "add", opType: "Add", inputs: productFirst ? ["p", "r"] : ["r", "p"], outputs: ["s"])]
        if relu { nodes.append(Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"])) }
        return nodes
    }

    func testMulAddInOneStep() throws {
        for (shape, bShapes) in [([2, 6, 10, 9], [[2, 1, 10, 9], [2, 6, 1, 1], [2, 6, 10, 9], [1]]),
                                 ([3, 40, 20, 21], [[3, 1, 20, 21], [3, 40, 1, 1]]),  // split over threads
                                 ([2, 3, 3, 5], [[2, 1, 3, 5], [1, 3, 1, 1]])] {  // runs of fewer than 16
            let n = shape.reduce(1, *)
            // r's NaNs carry another payload than the product's.
            let a = Tensor(shape: shape, floats: specialValues(n, seed: 8))
            let r = Tensor(shape: shape, floats: specialValues(n, seed: 9).map { $0.isNaN ? Float(bitPattern: 0x7FC0_1234) : $0 })
            for bShape in bShapes {
                let b = Tensor(shape: bShape, floats: pseudoRandom(bShape.reduce(1, *), seed: 10))
                for productFirst in [true, false] {
                    for relu in [true, false] {
                        let m = model(mulAdd(productFirst: productFirst, relu: relu), inputs: ["a", "b", "r"], outputs: [relu ? "y" : "s"])
                        let ops = try check(m, ["a": a, "b": b, "r": r], "\(shape) b \(bShape) \(productFirst) \(relu)")
                        XCTAssertEqual(ops.count, 1)
                        XCTAssertEqual((ops.first as? FusedMulAdd)?.relu, relu)
                    }
                }
            }
        }
    }

    /// An Add that broadcasts the product or the other operand takes the step but runs Mul and
    /// Add as written.
    func testMulAddWithBroadcastingAdd() throws {
        let a = Tensor(shape: [2, 4, 5, 5], floats: pseudoRandom(200, seed: 11))
        for (bShape, rShape) in [([2, 4, 5, 5], [1]), ([2, 4, 5, 5], [2, 4, 1, 1]), ([1], [2, 4, 5, 5])] {
            let a2 = bShape == [1] ? Tensor(shape: [2, 1, 5, 5], floats: pseudoRandom(50, seed: 12)) : a
            let b = Tensor(shape: bShape, floats: pseudoRandom(bShape.reduce(1, *), seed: 13))
            let r = Tensor(shape: rShape, floats: pseudoRandom(rShape.reduce(1, *), seed: 14))
            for relu in [true, false] {
                try check(model(mulAdd(productFirst: true, relu: relu), inputs: ["a", "b", "r"], outputs: [relu ? "y" : "s"]),
                          ["a": a2, "b": b, "r": r], "b \(bShape) r \(rShape)")
            }
        }
    }

    func testMulAddNotFusedWhenTheProductIsNeeded() throws {
        let t = Tensor(shape: [1, 3, 4, 4], floats: pseudoRandom(48, seed: 15))
        let feeds = ["a": t, "b": t, "r": t]
        // The product is also a graph output, or also read by another node.
        for (extra, outputs) in [([Node](), ["s", "p"]),
                                 ([Node(name: "neg", opType: "Relu", inputs: ["p"], outputs: ["q"])], ["s", "q"])] {
            let ops = try check(model(mulAdd(productFirst: true, relu: false) + extra, inputs: ["a", "b", "r"], outputs: outputs), feeds)
            XCTAssertFalse(ops.contains { $0 is FusedMulAdd })
        }
    }

    /// CBAM's gates as MA-Net's export writes them, with a residual Add and Relu: every fusion
    /// at once, the same bits as the graph as written.
    func testCBAMBlock() throws {
        let nodes = [
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["ga"]),
            Node(name: "gmp", opType: "GlobalMaxPool", inputs: ["x"], outputs: ["gm"]),
            Node(name: "gadd", opType: "Add", inputs: ["ga", "gm"], outputs: ["gs"]),
            Node(name: "gsig", opType: "Sigmoid", inputs: ["gs"], outputs: ["gate"]),
            Node(name: "gmul", opType: "Mul", inputs: ["x", "gate"], outputs: ["g"]),
            reduce("ReduceMax", "g", "mx"), reduce("ReduceMean", "g", "mn"),
            Node(name: "cat", opType: "Concat", inputs: ["mx", "mn"], outputs: ["c"], attributes: [attr("axis", 1)]),
            reduce("ReduceMean", "c", "sp"),
            Node(name: "ssig", opType: "Sigmoid", inputs: ["sp"], outputs: ["spatial"]),
            Node(name: "smul", opType: "Mul", inputs: ["g", "spatial"], outputs: ["o"]),
            Node(name: "res", opType: "Add", inputs: ["o", "x"], outputs: ["s"]),
            Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"]),
        ]
        for shape in [[1, 512, 7, 7], [2, 70, 9, 9]] {
            let x = Tensor(shape: shape, floats: pseudoRandom(shape.reduce(1, *), seed: 16).map { ($0 * 8).rounded() / 8 })
            let ops = try check(model(nodes, inputs: ["x"], outputs: ["y"]), ["x": x], "\(shape)")
            XCTAssertEqual(ops.filter { $0 is FusedGlobalPools }.count, 1)
            XCTAssertEqual(ops.filter { $0 is FusedChannelPools }.count, 1)
            XCTAssertEqual(ops.compactMap { ($0 as? FusedMulAdd)?.relu }, [true])
            XCTAssertEqual(ops.count, 8)
        }
    }

    /// Off without `.fuseGates`.
    func testOffWithoutTheOption() throws {
        let nodes = [Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["a"]),
                     Node(name: "gmp", opType: "GlobalMaxPool", inputs: ["x"], outputs: ["m"])]
        var options = GraphOptimizations.inference
        options.remove(.fuseGates)
        let e = try Executor(model: model(nodes, inputs: ["x"], outputs: ["a", "m"]), context: ExecutionContext(threads: 1),
                             options: options)
        XCTAssertEqual(e.inferencePlan().steps.count, 2)
    }
}
