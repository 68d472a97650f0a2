// Replays the fuzzing corpus through the same harness bodies libFuzzer runs (`FuzzTargets`): every
// input under fixtures/fuzz-regressions/<target>/ (each one crashed, hung or leaked once) and
// every seed that `Fuzz/seeds.txt` selects, and the generated seeds. A regression crashes the test process.

import Foundation
import ManetSupport
import XCTest
import FuzzTargets
import ONNXFormat
import ONNXIR
import MANet
import Parity
import TestSupport

final class FuzzRegressionTests: XCTestCase {
    /// `Fuzz/seeds.txt` as (target, suffix, max bytes).
    static func seedRules() throws -> [(target: FuzzTarget, suffix: String, maxBytes: Int)] {
        let text = try String(contentsOfFile: Fixtures.packageRoot.appendingPathComponent("Fuzz/seeds.txt").path, encoding: .utf8)
        return try text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.isEmpty || fields[0].hasPrefix("#") { return nil }
            guard fields.count == 3, let target = FuzzTarget(rawValue: String(fields[0])), let max = Int(fields[2]) else {
                throw NSError(domain: "seeds.txt", code: 1, userInfo: [NSLocalizedDescriptionKey: "bad line: \(line)"])
            }
            return (target, String(fields[1]), max)
        }
    }

    /// Every file directly under `fixtures/<folder>/<target>/`.
    static func files(in folder: String, _ target: FuzzTarget) -> [String] {
        let dir = Fixtures.path("\(folder)/\(target.rawValue)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    /// The seed files of `target`: fixtures by suffix and size, as `Fuzz/seeds.txt` says.
    static func seeds(_ target: FuzzTarget) throws -> [String] {
        var result: [String] = []
        for rule in try seedRules() where rule.target == target {
            for path in Fixtures.files(withSuffix: rule.suffix) where !path.contains("/fuzz-regressions/") {
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
                if let size, size <= rule.maxBytes, !result.contains(path) { result.append(path) }
            }
        }
        return result
    }

    func replay(_ target: FuzzTarget, minimumSeeds: Int) throws {
        let seeds = try Self.seeds(target)
        let generated = try target.generatedSeeds()
        XCTAssertGreaterThanOrEqual(seeds.count + generated.count, minimumSeeds, "seeds for \(target)")
        for seed in generated { target.run(seed.bytes) }
        let regressions = Self.files(in: "fuzz-regressions", target)
        for path in seeds + regressions {
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path), path)
            target.run([UInt8](bytes))
        }
    }

    func testONNX() throws { try replay(.onnx, minimumSeeds: 20) }
    func testCheckpoint() throws { try replay(.checkpoint, minimumSeeds: 1) }
    func testSafetensors() throws { try replay(.safetensors, minimumSeeds: 2) }
    func testNPY() throws { try replay(.npy, minimumSeeds: 2) }
    func testTensor() throws { try replay(.tensor, minimumSeeds: 20) }
    func testImage() throws { try replay(.image, minimumSeeds: 3) }
    func testPTH() throws { try replay(.pth, minimumSeeds: 10) }

    /// A Conv with a zero stride made libonnx's shape inference divide by zero (SIGFPE) in both
    /// the checker and `inferShapes`; the C layer now refuses it first, naming the node.
    func testZeroStrideIsRefusedBeforeLibonnxDividesByIt() throws {
        let model = try ONNXFile.load(path: Fixtures.path("fuzz-regressions/onnx/sigfpe-conv-stride-zero.onnx"))
        XCTAssertEqual(ONNXFile.verdict(model), .invalid("ONNX checker: node 'Conv_0' (Conv): strides must be positive, got 0"))
        XCTAssertThrowsError(try ONNXFile.inferShapes(model)) { error in
            XCTAssertTrue("\(error)".contains("node 'Conv_0' (Conv): strides must be positive, got 0"), "\(error)")
        }
    }

    /// Every regression folder names a real target (a typo would silently replay nothing).
    func testRegressionFoldersNameTargets() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.path("fuzz-regressions"))) ?? []
        for name in names where !name.hasPrefix(".") && name != "README" {
            XCTAssertNotNil(FuzzTarget(rawValue: name), "fixtures/fuzz-regressions/\(name) is not a fuzz target")
        }
    }

    /// The generated seeds are valid inputs (a seed the loader refuses only exercises its error path).
    func testGeneratedSeedsDecode() throws {
        for seed in try FuzzTarget.checkpoint.generatedSeeds() {
            XCTAssertEqual(try TrainingCheckpoint.decode(seed.bytes).classNames, ["a", "b"], seed.name)
        }
        for seed in try FuzzTarget.safetensors.generatedSeeds() {
            XCTAssertEqual(try Safetensors.parse(seed.bytes).count, 3, seed.name)
        }
        for seed in try FuzzTarget.npy.generatedSeeds() { XCTAssertEqual(try NPY.decode(seed.bytes).dims, [2, 3], seed.name) }
        let images = try FuzzTarget.image.generatedSeeds()
        XCTAssertEqual(images.count, 5)
        for seed in images {
            let image = try ImageCodec.decode(data: Data(seed.bytes), name: seed.name)
            XCTAssertEqual([image.width, image.height], [5, 4], seed.name)
        }
    }
}
