// The epoch-level resume check: PyTorch trains 2 epochs and saves the authors' checkpoint,
// `manet train --resume` it for 1 more, against PyTorch's own 3 epochs, within PyTorch's float32 spread.
//
// The committed fixture fixtures/resume_w4 (tools/parity/resume_parity.py make, width 4, 64 px)
// runs in `make test`; a folder of the same layout made at full width is checked when
// MANET_RESUME_PARITY_DIR names it.

import Foundation
@testable import MANet
import ONNXIR
import TestSupport
import XCTest

final class ResumeParityTests: XCTestCase {
    /// reference.json (the fields this test reads).
    struct Reference: Decodable {
        struct Record: Decodable {
            var lr: Double
            var train_loss: Double
            var train_acc: Double
            var test_loss: Double
            var test_acc: Double
        }
        struct Recipe: Decodable { var step_size: Int; var gamma: Double }
        struct Spread: Decodable { var abs_dev: [String: Double]; var tensor_rel_l2: [String: Double] }
        struct Criterion: Decodable { var factor: Double; var floor: Double }
        var width: Int
        var size: Int
        var batch: Int
        var epochs_before: Int
        var epochs: Int
        var recipe: Recipe
        var float32: [Record]
        var float64_epoch3: Record
        var spread: Spread
        var criterion: Criterion
    }

    static func relativeL2(_ a: [Float], _ b: [Double]) -> Double {
        var diff = 0.0, ref = 0.0
        for (x, y) in zip(a, b) { diff += (Double(x) - y) * (Double(x) - y); ref += y * y }
        return ref == 0 ? diff.squareRoot() : (diff / ref).squareRoot()
    }

    /// Runs the resume in `directory` and checks every epoch-3 quantity and reference tensor
    /// against float64 within the spread; prints every distance.
    func check(directory: String, line: UInt = #line) throws {
        let reference = try JSONDecoder().decode(Reference.self, from: try Data(contentsOf: URL(fileURLWithPath: directory + "/reference.json")))
        XCTAssertEqual(reference.criterion.factor, 2)
        XCTAssertEqual(reference.criterion.floor, 1e-6)
        let folder = try TemporaryFolder("manet-resume-parity")
        defer { folder.remove() }
        let run = folder.file("run")
        let r = try runProcess(manetBinary, [
            "train", "--data", directory + "/data", "--resume", directory + "/epoch2.pth.tar",
            "--width", String(reference.width), "--input-size", String(reference.size), "--epochs", String(reference.epochs),
            "--batch-size", String(reference.batch), "--step-size", String(reference.recipe.step_size),
            "--gamma", String(reference.recipe.gamma), "--no-augment", "--no-shuffle", "--plain",
            "--checkpoint-dir", run])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr, line: line)
        XCTAssertTrue(r.stdout.contains("resumes after epoch \(reference.epochs_before)"), r.stdout, line: line)
        let checkpoint = try TrainingCheckpoint.read(path: run + "/checkpoint.pb")
        XCTAssertEqual(checkpoint.epochsCompleted, reference.epochs, line: line)
        let ours = try XCTUnwrap(checkpoint.history.last, line: line)
        XCTAssertEqual(ours.epoch, reference.epochs - 1, line: line)

        let factor = reference.criterion.factor, floor = reference.criterion.floor
        var report: [String] = [], outside: [String] = []
        // The schedule at epoch 3 is PyTorch's (StepLR stepped twice), exactly.
        XCTAssertEqual(ours.learningRate, reference.float32[reference.epochs - 1].lr, line: line)
        let r64 = reference.float64_epoch3
        let quantities: [(String, Double, Double)] = [
            ("train_loss", ours.trainLoss, r64.train_loss), ("train_acc", Double(ours.trainAccuracy), r64.train_acc),
            ("test_loss", ours.testLoss, r64.test_loss), ("test_acc", Double(ours.testAccuracy), r64.test_acc)]
        for (name, value, target) in quantities {
            let distance = abs(value - target), limit = factor * reference.spread.abs_dev[name]! + floor
            report.append("\(name) \(value) vs float64 \(target): |d| \(distance), limit \(limit)")
            if distance > limit { outside.append(name) }
        }
        let expected = try Safetensors.read(path: directory + "/epoch3_float64.safetensors")
        XCTAssertEqual(expected.count, reference.spread.tensor_rel_l2.count, line: line)
        for t in expected {
            let mine = try XCTUnwrap(checkpoint.tensor(t.name)?.floats, t.name, line: line)
            XCTAssertEqual(t.elementType, .double, t.name, line: line)
            let target: [Double] = t.bytes.withUnsafeBytes { raw in
                (0..<(raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
            }
            let distance = Self.relativeL2(mine, target), limit = factor * reference.spread.tensor_rel_l2[t.name]! + floor
            report.append("\(t.name): rel L2 \(distance), limit \(limit)")
            if distance > limit { outside.append(t.name) }
        }
        print("resume parity (\(directory)):\n  " + report.joined(separator: "\n  "))
        XCTAssertTrue(outside.isEmpty, "outside PyTorch's float32 spread: \(outside)\n" + report.joined(separator: "\n"), line: line)
    }

    func testResumedEpochMeetsPyTorchsThirdEpoch() throws {
        try check(directory: Fixtures.path("resume_w4"))
    }

    /// Skipped when MANET_RESUME_PARITY_DIR is unset.
    func testConfiguredDirectory() throws {
        let variable = "MANET_RESUME_PARITY_DIR"
        let directory = ProcessInfo.processInfo.environment[variable] ?? ""
        try XCTSkipIf(directory.isEmpty, "\(variable) is unset: run tools/parity/resume_parity.py make DIR and set \(variable)=DIR")
        try check(directory: directory)
    }
}
