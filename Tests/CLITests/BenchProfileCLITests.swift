// `manet bench --train --profile`: the training step's time per operator, forward and backward,
// and the trainer's own phases.

import Foundation
import TestSupport
import XCTest

final class BenchProfileCLITests: XCTestCase {
    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: manetBinary) else {
            throw InspectCLITests.MissingBinary(path: manetBinary)
        }
    }

    func testTrainingProfileNamesForwardBackwardAndUpdate() throws {
        let result = try runManet(["bench", "--train", "--width", "4", "--input-size", "64", "--batch-size", "2",
                                   "--iterations", "1", "--warmup", "0", "--threads", "2", "--profile"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("training step, MA-Net width 4"), result.stdout)
        for row in ["  Conv wall", "  Conv backward wall", "  BatchNormalization backward wall", "  Relu backward wall",
                    "  (SGD update) wall", "  (loss) wall", "  (gradient sums) wall",
                    "  Conv k7x7 s2 3->4 64x64 direct backward wall"] {
            XCTAssertTrue(result.stderr.contains(row), "no '\(row)' in:\n\(result.stderr)")
        }
    }

    /// Each convolution row names the path the call took: training's wide planes (>= 1024
    /// outputs) read their input in place, forward, dX and dW ("implicit").
    func testTrainingProfileNamesTheInPlacePath() throws {
        let result = try runManet(["bench", "--train", "--width", "4", "--input-size", "224", "--batch-size", "2",
                                   "--iterations", "1", "--warmup", "0", "--threads", "2", "--profile"])
        XCTAssertEqual(result.status, 0, result.stderr)
        for row in ["  Conv k3x3 s1 4->4 56x56 implicit wall", "  Conv k3x3 s1 4->4 56x56 dX implicit dW implicit backward wall",
                    "  Conv k3x3 s1 32->32 7x7 direct wall"] {
            XCTAssertTrue(result.stderr.contains(row), "no '\(row)' in:\n\(result.stderr)")
        }
    }
}
