// The Winograd path in the runtime: the executor's inference plan takes it, training's forward and
// dX take it and agree with the direct path, and the plan's store of transformed filters.

import Foundation
import Kernels
import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class WinogradPathTests: XCTestCase {
    /// The executor's inference plan takes the Winograd path for a 3x3 Conv (with or without a
    /// BN to fold), matches the plan without it, and recomputes the transform when the weight
    /// is replaced.
    func testExecutorPathAndWeightReplacement() throws {
        let c = 6, m = 5
        let graph = Graph(name: "g",
                          nodes: [Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
                                       attributes: [attr("pads", [1, 1, 1, 1])])],
                          inputs: [ValueInfo.tensor("x", .float, nil)], outputs: [ValueInfo.tensor("y", .float, nil)],
                          initializers: [TensorData(name: "w", dims: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 1)),
                                         TensorData(name: "b", dims: [m], floats: pseudoRandom(m, seed: 2))])
        let model = Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
        let x = Tensor(shape: [2, c, 12, 12], floats: pseudoRandom(2 * c * 144, seed: 3))
        let plain = try Executor(model: model, context: ExecutionContext(threads: 2), options: .none)
        let fast = try Executor(model: model, context: ExecutionContext(threads: 2), options: .inference)
        let direct = try Executor(model: model, context: ExecutionContext(threads: 2), options: [.foldBatchNorm, .fuseRelu])
        XCTAssertNotNil((fast.inferencePlan().steps[0].op as? FusedConv)?.winograd, "3x3 stride-1 Conv takes the Winograd path")
        XCTAssertTrue(direct.inferencePlan().steps[0].op is Conv, "without .winograd the Conv runs as written")
        assertClose(try fast.run(inputs: ["x": x])["y"]!.floats, try plain.run(inputs: ["x": x])["y"]!.floats, rtol: 1e-5, atol: 1e-5)
        let w2 = Tensor(shape: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 4).map { 2 * $0 })
        try plain.setInitializer("w", w2)
        try fast.setInitializer("w", w2)
        assertClose(try fast.run(inputs: ["x": x])["y"]!.floats, try plain.run(inputs: ["x": x])["y"]!.floats, rtol: 1e-5, atol: 1e-5)
    }

    /// In training mode a Conv large enough for the Winograd path takes it for its forward, for
    /// dX (dY convolved with the transposed, flipped filters) and for dW (F(3x3,2x2)): all agree
    /// with the direct path (the same op in inference mode) to float rounding, for symmetric and
    /// asymmetric pads; dB is the direct path's bits. The forward by F(4x4) with
    /// `TrainingWinograd.all` (32 tiles of 4x4, filters not a multiple of 16: not packed), by
    /// F(2x2) with `.lastStage`; dX by F(2x2) with either.
    func testTrainingForwardAndInputGradientMatchDirect() throws {
        for (pads, reach) in [([1, 1, 1, 1], TrainingWinograd.all), ([0, 2, 2, 0], .all),
                              ([1, 1, 1, 1], .lastStage), ([0, 2, 2, 0], .lastStage)] {
            let c = 128, m = 136
            let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
                            attributes: [attr("pads", pads)])
            let op = try Conv(node: node, opset: 17)
            let x = Tensor(shape: [2, c, 16, 15], floats: pseudoRandom(2 * c * 240, seed: 7).map { ($0 + 1) / 2 })
            let w = Tensor(shape: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 8).map { $0 * 0.06 })
            let b = Tensor(shape: [m], floats: pseudoRandom(m, seed: 9))
            var options = RuntimeOptions(threads: 2)
            options.kernels.trainingWinograd = reach
            let training = ExecutionContext(training: true, options: options), inference = ExecutionContext(threads: 2)
            let l = try op.layout(x.shape, w.shape, bias: b.shape)
            let shape = ConvolutionShape(batch: 2, channels: c, filters: m, group: 1, geometry: l.geometry)
            let path = WinogradPath.training(reach: reach), tile: WinogradTile = reach == .all ? .f4x4 : .f2x2
            XCTAssertEqual(path?.tile(for: shape), tile, "\(pads): forward takes the Winograd path")
            XCTAssertEqual(ConvolutionBackward.transposedWinograd(op.shape(l), path)?.1, .f2x2,
                           "\(pads): dX takes the Winograd path")
            let fast = try op.forward([x, w, b], training), direct = try op.forward([x, w, b], inference)
            XCTAssertNotEqual(fast.outputs[0].floats, direct.outputs[0].floats, "different rounding: the paths differ")
            assertClose(fast.outputs[0].floats, direct.outputs[0].floats, rtol: 1e-5, atol: 1e-5)
            let dy = Tensor(shape: direct.outputs[0].shape, floats: pseudoRandom(direct.outputs[0].count, seed: 10))
            let record = ForwardRecord(inputs: [x, w, b], outputs: direct.outputs, saved: nil)
            let gFast = try op.backward([dy], record, needsGradient: [true, true, true], training)
            let gDirect = try op.backward([dy], record, needsGradient: [true, true, true], inference)
            XCTAssertNotEqual(gFast[0]!.floats, gDirect[0]!.floats, "\(pads): dX took a different path")
            assertClose(gFast[0]!.floats, gDirect[0]!.floats, rtol: 1e-5, atol: 1e-5)
            XCTAssertTrue(WinogradWeightGradient.applies(shape, path), "\(pads): dW takes the Winograd path")
            XCTAssertNotEqual(gFast[1]!.floats, gDirect[1]!.floats, "\(pads): dW took a different path")
            // dW is a sum of 480 products per element that cancels in places: held, like the
            // Winograd forward (WinogradTests), to 1e-5 of max |dW|.
            let dWScale = gDirect[1]!.floats.map(abs).max()!
            assertClose(gFast[1]!.floats, gDirect[1]!.floats, rtol: 1e-5, atol: 1e-5 * dWScale)
            XCTAssertEqual(gFast[2]!.floats, gDirect[2]!.floats, "\(pads): dB")
        }
    }

    /// Training's 7x7 planes (MA-Net's last stage) take F(4x4,3x3) for the forward and dX when
    /// the batch has enough tiles (8 images: 32), with the filters packed first (the forward on
    /// 14x14 planes too; F(2x2) there with `TrainingWinograd.lastStage`), F(2x2) everywhere with
    /// `.winograd2`; dW F(3x3,4x4) (F(3x3,2x2) with `KernelOptions.weightGradientF4x4` off). Each
    /// result within 1e-5 of its max
    /// of the direct path's; the same bits on 1, 2 and 3 threads and every instruction set.
    func testTrainingTakesF4x4On7x7Planes() throws {
        let c = 128, m = 128, n = 8
        let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [attr("pads", [1, 1, 1, 1])])
        let op = try Conv(node: node, opset: 17)
        let x = Tensor(shape: [n, c, 7, 7], floats: pseudoRandom(n * c * 49, seed: 17).map { ($0 + 1) / 2 })
        let w = Tensor(shape: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 18).map { $0 * 0.06 })
        let l = try op.layout(x.shape, w.shape, bias: nil)
        let s = op.shape(l)
        XCTAssertEqual(WinogradPath.training()?.tile(for: s), .f4x4)
        XCTAssertEqual(ConvolutionBackward.transposedWinograd(s, WinogradPath.training())?.1, .f4x4)
        XCTAssertEqual(WinogradWeightGradient.tile(s, WinogradPath.training()), .f4x4)
        XCTAssertEqual(WinogradWeightGradient.tile(s, WinogradPath.training(), options: KernelOptions(weightGradientF4x4: false)),
                       .f2x2)
        XCTAssertEqual(WinogradWeightGradient.tile(s, WinogradPath.training(.winograd2)), .f2x2)
        XCTAssertEqual(WinogradPath.training(.winograd2)?.tile(for: s), .f2x2)
        XCTAssertTrue(WinogradPath.training()!.packsFilters(s, tile: .f4x4), "filters packed into 16-row blocks first")
        var wide = s
        wide.geometry = WindowGeometry(input: [14, 14], kernel: [3, 3], strides: [1, 1], padsBegin: [1, 1], padsEnd: [1, 1],
                                       dilations: [1, 1], output: [14, 14])
        XCTAssertEqual(WinogradPath.training()?.tile(for: wide), .f4x4)
        XCTAssertEqual(WinogradPath.training(reach: .lastStage)?.tile(for: wide), .f2x2)
        let training = ExecutionContext(training: true, threads: 2), inference = ExecutionContext(threads: 2)
        let fast = try op.forward([x, w], training), direct = try op.forward([x, w], inference)
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            XCTAssertNotEqual(a, b, "\(what): the paths differ")
            let scale = b.map(abs).max()!
            let worst = zip(a, b).map { abs($0 - $1) }.max()!
            print(String(format: "training F(4x4) 128->128 7x7 x8 %@: max difference from the direct path / max = %.2e",
                         what, worst / scale))
            XCTAssertLessThan(worst / scale, 1e-5, what)
        }
        close(fast.outputs[0].floats, direct.outputs[0].floats, "y")
        let dy = Tensor(shape: direct.outputs[0].shape, floats: pseudoRandom(direct.outputs[0].count, seed: 19))
        let record = ForwardRecord(inputs: [x, w], outputs: direct.outputs, saved: nil)
        let gFast = try op.backward([dy], record, needsGradient: [true, true], training)
        let gDirect = try op.backward([dy], record, needsGradient: [true, true], inference)
        close(gFast[0]!.floats, gDirect[0]!.floats, "dX")
        close(gFast[1]!.floats, gDirect[1]!.floats, "dW")
        // The same bits on 1, 2 and 3 threads and on every instruction set.
        for threads in [1, 3] {
            for isa in [KernelISA.automatic, .avx512, .avx2, .portable] {
                var options = RuntimeOptions(threads: threads)
                options.kernels.isa = isa
                let context = ExecutionContext(training: true, options: options)
                let what = "\(threads) threads, \(isa)"
                XCTAssertEqual(try op.forward([x, w], context).outputs[0].floats.map(\.bitPattern),
                               fast.outputs[0].floats.map(\.bitPattern), "y, \(what)")
                let g = try op.backward([dy], record, needsGradient: [true, true], context)
                XCTAssertEqual(g[0]!.floats.map(\.bitPattern), gFast[0]!.floats.map(\.bitPattern), "dX, \(what)")
                XCTAssertEqual(g[1]!.floats.map(\.bitPattern), gFast[1]!.floats.map(\.bitPattern), "dW, \(what)")
            }
        }
    }

    /// Kept transformed filters give the same bits as filters transformed per call; the store
    /// keeps them only while its budget lasts.
    func testKeptFiltersMatchPerCallTransform() throws {
        let c = 64, m = 64
        let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [attr("pads", [1, 1, 1, 1])])
        let op = try Conv(node: node, opset: 17)
        let x = Tensor(shape: [4, c, 16, 16], floats: pseudoRandom(4 * c * 256, seed: 11))
        let w = Tensor(shape: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 12).map { $0 * 0.06 })
        let l = try op.layout(x.shape, w.shape, bias: nil)
        let filterBytes = 36 * m * c * 4
        let roomy = WinogradPath(tiles: [.f4x4], store: WinogradFilterStore(budgetBytes: filterBytes))
        let perCall = WinogradPath(tiles: [.f4x4])
        let tight = WinogradPath(tiles: [.f4x4], store: WinogradFilterStore(budgetBytes: filterBytes - 1))
        let shape = ConvolutionShape(batch: 4, channels: c, filters: m, group: 1, geometry: l.geometry)
        XCTAssertEqual(roomy.tile(for: shape), .f4x4)
        // Thresholds: F(4x4) from 32 tiles over the batch, F(2x2) from 49. One 16x16 image has
        // 16 and 64: F(2x2); one 12x12 image 9 and 36: direct; two 18 and 72: F(2x2); four 36: F(4x4).
        var one = shape
        one.batch = 1
        XCTAssertEqual(WinogradPath(tiles: [.f4x4, .f2x2]).tile(for: one), .f2x2, "16 F(4x4) tiles, 64 F(2x2)")
        XCTAssertNil(WinogradPath(tiles: [.f4x4]).tile(for: one))
        XCTAssertEqual(WinogradPath(tiles: [.f2x2]).tile(for: one), .f2x2)
        let small = try op.layout([1, c, 12, 12], w.shape, bias: nil)
        let smallShape = ConvolutionShape(batch: 1, channels: c, filters: m, group: 1, geometry: small.geometry)
        XCTAssertNil(WinogradPath(tiles: [.f4x4, .f2x2]).tile(for: smallShape))
        var two = smallShape
        two.batch = 2
        XCTAssertEqual(WinogradPath(tiles: [.f4x4, .f2x2]).tile(for: two), .f2x2, "18 F(4x4) tiles, 72 F(2x2)")
        two.batch = 4
        XCTAssertEqual(WinogradPath(tiles: [.f4x4, .f2x2]).tile(for: two), .f4x4, "36 F(4x4) tiles")
        func run(_ p: WinogradPath) -> [Float] {
            Conv.convolve(x, ConvolutionPlan(filters: .plain(w.floats), winograd: p), bias: nil, l, group: 1, relu: false,
                          count: x.count, ExecutionContext(threads: 2))
        }
        func keptFilters(_ p: WinogradPath) -> [Float]? {
            w.floats.withUnsafeBufferPointer {
                p.keptFilters($0.baseAddress!, filters: m, channels: c, packed: false, tile: .f4x4, threads: 1)
            }
        }
        let reference = run(perCall)
        XCTAssertEqual(run(roomy), reference)
        XCTAssertNotNil(keptFilters(roomy), "fits the budget: kept")
        XCTAssertEqual(run(roomy), reference, "second run from the kept filters")
        XCTAssertEqual(run(tight), reference)
        XCTAssertNil(keptFilters(tight), "one byte over the budget: transformed per call")
        assertClose(reference, try op.forward([x, w], ExecutionContext(threads: 2)).outputs[0].floats, rtol: 1e-4, atol: 1e-4)
    }
}
