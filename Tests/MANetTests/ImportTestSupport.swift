// Shared by the import and export tests: run a checkpoint through the trainer's evaluation path, compare with references.

import Foundation
import MANet
import ManetSupport
import ONNXFormat
import Runtime
import TestSupport
import XCTest

/// The trainer's inference-mode logits for `checkpoint` on `input` (the Executor on the builder graph).
func trainerLogits(_ checkpoint: TrainingCheckpoint, input: Tensor) throws -> (local: Tensor, global: Tensor) {
    var options = TrainingOptions()
    options.width = checkpoint.width
    options.numClasses = checkpoint.numClasses
    options.inputSize = checkpoint.inputSize
    options.beta = checkpoint.beta
    let model = try MANetModel.build(numClasses: checkpoint.numClasses, width: checkpoint.width,
                                     inputSize: checkpoint.inputSize, seed: 12345)
    let trainer = try Trainer(model: model, options: options, classNames: checkpoint.classNames,
                              generator: Xoshiro256(seed: 1), dataSeed: 2)
    try trainer.load(checkpoint, resume: false)
    return try trainer.predict(images: input)
}

/// A fixture's test_data_set_0: the input and PyTorch's two outputs (local, global).
func fixtureReference(_ folder: String) throws -> (input: Tensor, local: Tensor, global: Tensor) {
    let dir = Fixtures.path(folder + "/test_data_set_0")
    func load(_ name: String) throws -> Tensor { try Tensor(ONNXFile.loadTensor(path: dir + "/" + name)) }
    return (try load("input_0.pb"), try load("output_0.pb"), try load("output_1.pb"))
}

/// Row-wise argmax of [N, C] logits.
func top1(_ t: Tensor) -> [Int] {
    let c = t.shape[1]
    return (0..<t.shape[0]).map { row in
        let slice = t.floats[(row * c)..<((row + 1) * c)]
        return slice.indices.max { slice[$0] < slice[$1] }! - row * c
    }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// The project's inference parity rule: max |diff| <= 1e-5 * max(1, max|ref|) and the same top-1.
/// Returns the max abs diff per output, for the log.
@discardableResult
func assertMatchesReference(_ actual: (local: Tensor, global: Tensor), _ ref: (input: Tensor, local: Tensor, global: Tensor),
                            label: String, file: StaticString = #filePath, line: UInt = #line) -> (Float, Float) {
    XCTAssertEqual(actual.local.shape, ref.local.shape, label, file: file, line: line)
    XCTAssertEqual(actual.global.shape, ref.global.shape, label, file: file, line: line)
    for (name, a, r) in [("logits_local", actual.local, ref.local), ("logits_global", actual.global, ref.global)] {
        let scale = max(1, r.floats.map(abs).max() ?? 0)
        assertClose(a.floats, r.floats, rtol: 0, atol: 1e-5 * scale, "\(label) \(name)", file: file, line: line)
        XCTAssertEqual(top1(a), top1(r), "\(label) \(name) top-1", file: file, line: line)
    }
    let dl = maxAbsDiff(actual.local.floats, ref.local.floats), dg = maxAbsDiff(actual.global.floats, ref.global.floats)
    print("parity \(label): logits_local max|diff| \(dl), logits_global max|diff| \(dg)")
    return (dl, dg)
}
