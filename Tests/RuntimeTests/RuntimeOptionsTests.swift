// `RuntimeOptions` reaches the plan and the kernels: the convolution algorithm decides the
// Winograd policy of inference plans and training convolutions, the Winograd budget the store,
// and the kernels' schedule choices give the same bits.

import Foundation
import Kernels
import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class RuntimeOptionsTests: XCTestCase {
    func model(channels c: Int, filters m: Int) -> Model {
        let graph = Graph(name: "g",
                          nodes: [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
                                       attributes: [attr("pads", [1, 1, 1, 1])])],
                          inputs: [ValueInfo.tensor("x", .float, nil)], outputs: [ValueInfo.tensor("y", .float, nil)],
                          initializers: [TensorData(name: "w", dims: [m, c, 3, 3], floats: pseudoRandom(m * c * 9, seed: 5).map { $0 * 0.05 })])
        return Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
    }

    /// The algorithm choice sets the fused plan's Winograd tiles (none for `.direct`), and the
    /// minimum-tiles override its thresholds; results agree with the graph as written.
    func testConvolutionAlgorithmReachesThePlan() throws {
        let x = Tensor(shape: [1, 64, 16, 16], floats: pseudoRandom(64 * 256, seed: 6))
        let reference = try Executor(model: model(channels: 64, filters: 64), options: RuntimeOptions(threads: 2)).run(inputs: ["x": x])
        let expected: [ConvolutionAlgorithm: [WinogradTile]?] = [.automatic: [.f4x4, .f2x2], .direct: nil,
                                                                 .winograd2: [.f2x2], .winograd4: [.f4x4]]
        for (algorithm, tiles) in expected {
            var options = RuntimeOptions(threads: 2, optimizations: .inference, convolution: algorithm)
            options.winogradMinimumTiles = 1
            let executor = try Executor(model: model(channels: 64, filters: 64), options: options)
            let fused = try XCTUnwrap(executor.inferencePlan().steps[0].op as? FusedConv)
            XCTAssertEqual(fused.winograd?.tiles, tiles, "\(algorithm)")
            XCTAssertEqual(fused.winograd?.minimumTiles(.f4x4), tiles == nil ? nil : 1, "\(algorithm)")
            assertClose(try executor.run(inputs: ["x": x])["y"]!.floats, reference["y"]!.floats, rtol: 1e-4, atol: 1e-4)
        }
    }

    /// Training convolutions take Winograd F(2x2) for the forward and dX unless the options say
    /// `.direct`; then the training forward is the inference forward's bits.
    func testDirectAlgorithmInTraining() throws {
        let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [attr("pads", [1, 1, 1, 1])])
        let op = try Conv(node: node, opset: 17)
        let x = Tensor(shape: [2, 128, 12, 12], floats: pseudoRandom(2 * 128 * 144, seed: 7))
        let w = Tensor(shape: [128, 128, 3, 3], floats: pseudoRandom(128 * 128 * 9, seed: 8).map { $0 * 0.03 })
        var direct = RuntimeOptions(threads: 2)
        direct.convolution = .direct
        let inference = try op.forward([x, w], ExecutionContext(threads: 2)).outputs[0].floats
        let winograd = try op.forward([x, w], ExecutionContext(training: true, threads: 2)).outputs[0].floats
        let trainingDirect = try op.forward([x, w], ExecutionContext(training: true, options: direct)).outputs[0].floats
        XCTAssertNotEqual(winograd, inference, "the default training path is Winograd")
        XCTAssertEqual(trainingDirect, inference, ".direct: no Winograd in training")
    }

    /// The Winograd budget of the options is the plan's: none kept with 0 bytes, the same bits.
    func testWinogradKeepBudget() throws {
        let x = Tensor(shape: [4, 64, 16, 16], floats: pseudoRandom(4 * 64 * 256, seed: 9))
        var results: [[Float]] = []
        for keep in [0, 1 << 30] {
            var options = RuntimeOptions(threads: 2, optimizations: .inference)
            options.winogradKeepBytes = keep
            let executor = try Executor(model: model(channels: 64, filters: 64), options: options)
            results.append(try executor.run(inputs: ["x": x])["y"]!.floats)
            let fused = try XCTUnwrap(executor.inferencePlan().steps[0].op as? FusedConv)
            let kept = fused.plan.winograd.flatMap { path in
                fused.plan.filters.packedPointer { path.keptFilters($0, filters: 64, channels: 64, packed: true, tile: .f4x4, threads: 1) }
            }
            XCTAssertEqual(kept != nil, keep > 0, "budget \(keep)")
        }
        XCTAssertEqual(results[0], results[1])
    }

    /// Every kernel schedule choice (implicit or unfolded, split by columns or blocks) gives the
    /// default's bits through the executor.
    func testKernelScheduleChoicesGiveTheSameBits() throws {
        let graph = Graph(name: "g",
                          nodes: [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
                                       attributes: [attr("pads", [1, 1, 1, 1]), attr("strides", [2, 2])])],
                          inputs: [ValueInfo.tensor("x", .float, nil)], outputs: [ValueInfo.tensor("y", .float, nil)],
                          initializers: [TensorData(name: "w", dims: [48, 32, 3, 3], floats: pseudoRandom(48 * 32 * 9, seed: 10))])
        let m = Model(irVersion: 8, opsetImports: [OpsetImport(domain: "", version: 17)], graph: graph)
        let x = Tensor(shape: [1, 32, 20, 20], floats: pseudoRandom(32 * 400, seed: 11))
        let base = try Executor(model: m, options: RuntimeOptions(threads: 2, optimizations: .inference)).run(inputs: ["x": x])["y"]!.floats
        for implicit in [true, false] {
            for split in [nil, ConvolutionSplit.columns, .blocks] {
                var options = RuntimeOptions(threads: 2, optimizations: .inference)
                options.kernels.implicitConvolution = implicit
                options.kernels.convolutionSplit = split
                let y = try Executor(model: m, options: options).run(inputs: ["x": x])["y"]!.floats
                XCTAssertEqual(y, base, "implicit \(implicit), split \(String(describing: split))")
            }
        }
    }

    /// The context's convenience init and the options agree; the old initializer maps the
    /// optimizations onto the options.
    func testContextCarriesTheOptions() throws {
        var context = ExecutionContext(training: false, threads: 3, deterministic: true)
        XCTAssertEqual(context.options.threads, 3)
        XCTAssertTrue(context.options.deterministic)
        context.threads = 0
        XCTAssertEqual(context.options.threads, 1, "at least one thread")
        let executor = try Executor(model: model(channels: 4, filters: 4), context: ExecutionContext(threads: 2), options: .inference)
        XCTAssertEqual(executor.context.options.optimizations, .inference)
        XCTAssertEqual(executor.optimizations, .inference)
    }
}

extension ConvolutionPlan.Filters {
    /// Calls `body` with the packed filters' pointer; nil when not packed.
    func packedPointer<R>(_ body: (UnsafePointer<Float>) -> R?) -> R? {
        guard case .packed(let p) = self else { return nil }
        return p.withPointer(body)
    }
}
