// Which plan a parity check runs: by default the optimised one `manet run` executes, with the
// nodes fusion absorbed named; the graph as written on request; both side by side.

import ONNXFormat
import ONNXIR
import Runtime
import TestSupport
import XCTest
@testable import Parity

final class PlanTests: XCTestCase {
    func check() throws -> ParityCheck {
        let path = Fixtures.path("manet_w8_torchscript_op13_bn.onnx")
        return try ParityCheck(model: try ONNXFile.load(path: path), path: path)
    }

    func testTheDefaultPlanIsTheOptimisedOneWithItsFusedNodesNamed() throws {
        let check = try check()
        let asWritten = try check.steps(of: .asWritten)
        let optimized = try check.steps(of: .optimized)
        XCTAssertTrue(asWritten.allSatisfy { $0.absorbed.isEmpty })
        // Every BatchNormalization of MA-Net follows a Conv: all of them are folded away.
        let batchNorms = asWritten.filter { $0.node.opType == "BatchNormalization" }.count
        XCTAssertGreaterThan(batchNorms, 0)
        XCTAssertFalse(optimized.contains { $0.node.opType == "BatchNormalization" })
        XCTAssertEqual(optimized.flatMap(\.absorbed).filter { $0.opType == "BatchNormalization" }.count, batchNorms)
        // Each step as written is a step of the optimised plan or absorbed by exactly one.
        let names = optimized.map(\.node.name) + optimized.flatMap(\.absorbed).map(\.name)
        XCTAssertEqual(names.sorted(), asWritten.map(\.node.name).sorted())
        // A fused Conv writes the Relu's output: the Conv and BN outputs are never computed.
        let fused = try XCTUnwrap(optimized.first { $0.absorbed.map(\.opType) == ["BatchNormalization", "Relu"] })
        XCTAssertEqual(fused.node.opType, "Conv")
        XCTAssertEqual(fused.outputs, fused.absorbed.last!.outputs)
    }

    func testBothPlansAreComparedAndAgainstEachOther() throws {
        let check = try check()
        let set = try XCTUnwrap(ReferenceData.load(Fixtures.path("manet_w8_torchscript_op13_bn")).first)
        let results = try check.compare(set, tolerance: .standard, plans: [.optimized, .asWritten])
        XCTAssertEqual(results.map(\.plan), ["optimized", "as-written", SetResult.plansAgainstEachOther])
        XCTAssertTrue(results.allSatisfy(\.passed))
        // The plans differ by rounding (Winograd, folded weights), not by nothing: the check
        // really runs two plans.
        let cross = results[2].outputs
        XCTAssertTrue(cross.contains { $0.maxAbsDiff > 0 }, "\(cross)")
        XCTAssertTrue(cross.allSatisfy { $0.maxRelDiff < 1e-4 }, "\(cross)")
        XCTAssertEqual(try check.compare(set, tolerance: .standard).map(\.plan), ["optimized"])
    }

    func testKeptValuesHoldWhatThePlanComputesAndRespectTheBudget() throws {
        let check = try check()
        let set = try XCTUnwrap(ReferenceData.load(Fixtures.path("manet_w8_torchscript_op13_bn")).first)
        let optimized = try check.run(set, plan: .optimized, keeping: .all)
        let asWritten = try check.run(set, plan: .asWritten, keeping: .all)
        let steps = try check.steps(of: .optimized)
        // Values of nodes as written that no optimised step writes: the Conv and BN outputs a
        // fused Conv never materialises.
        let absorbedOnly = Set(steps.flatMap { [$0.node] + $0.absorbed }.flatMap(\.outputs).filter { !$0.isEmpty })
            .subtracting(steps.flatMap(\.outputs))
        XCTAssertFalse(absorbedOnly.isEmpty)
        for name in absorbedOnly {
            XCTAssertNil(optimized.values[name], name)
            XCTAssertNotNil(asWritten.values[name], name)
        }
        XCTAssertEqual(Set(asWritten.values.keys), Set(try check.steps(of: .asWritten).flatMap(\.outputs).filter { !$0.isEmpty }))
        // Graph outputs are among the kept values, with the same bits as the outputs.
        for (name, value) in optimized.outputs { XCTAssertEqual(optimized.values[name]?.tensorData(), value) }
        let named = try check.run(set, plan: .asWritten, keeping: .named(Set(absorbedOnly.prefix(2))))
        XCTAssertEqual(Set(named.values.keys), Set(absorbedOnly.prefix(2)))

        XCTAssertThrowsError(try check.run(set, plan: .asWritten, keeping: .all, keptBytesLimit: 100_000)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("budget of 100000 bytes"), text)
        }
    }
}
