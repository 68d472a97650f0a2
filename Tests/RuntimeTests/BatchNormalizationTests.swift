// BatchNormalization: inference, training (batch statistics, running-stat update with
// PyTorch's unbiased variance), ONNX training_mode outputs, errors, gradients.

import ONNXIR
@testable import Runtime
import TestSupport
import XCTest

final class BatchNormalizationTests: XCTestCase {
    // x: [1, 2, 1, 3]; channel 0 = 1, 2, 3 and channel 1 = 4, 6, 8.
    let x = Tensor(shape: [1, 2, 1, 3], floats: [1, 2, 3, 4, 6, 8])
    let scale = TensorData(name: "scale", dims: [2], floats: [1, 2])
    let bias = TensorData(name: "B", dims: [2], floats: [0, 1])

    func model(mean: [Float], variance: [Float], outputs: [String] = ["y"], attributes: [Attribute] = [], opset: Int64 = 15) -> Model {
        oneNodeModel("BatchNormalization", inputs: ["x", "scale", "B", "mean", "var"], outputs: outputs,
                     attributes: [attr("epsilon", Float(0))] + attributes, opset: opset,
                     initializers: [scale, bias, TensorData(name: "mean", dims: [2], floats: mean), TensorData(name: "var", dims: [2], floats: variance)])
    }

    func testInference() throws {
        let executor = try Executor(model: model(mean: [2, 6], variance: [1, 4]))
        assertClose(try executor.run(inputs: ["x": x])["y"]!.floats, [-1, 0, 1, -1, 1, 3])
    }

    func testTrainingUsesBatchStatisticsAndUpdatesRunningStats() throws {
        let executor = try Executor(model: model(mean: [0, 0], variance: [1, 1]), context: ExecutionContext(training: true, threads: 2))
        let y = try executor.forward(inputs: ["x": x]).outputs["y"]!
        // Biased batch variance normalises: 2/3 and 8/3.
        assertClose(y.floats, [-1.2247449, 0, 1.2247449, -1.4494897, 1, 3.4494897])
        // running = 0.9 * running + 0.1 * batch, with the unbiased variance (1 and 4), as PyTorch.
        assertClose(executor.initializer("mean")!.floats, [0.2, 0.6])
        assertClose(executor.initializer("var")!.floats, [1.0, 1.3])
    }

    func testTrainingModeAttributeOutputs() throws {
        let executor = try Executor(model: model(mean: [0, 0], variance: [1, 1], outputs: ["y", "rm", "rv"], attributes: [attr("training_mode", 1)]))
        let out = try executor.run(inputs: ["x": x])
        assertClose(out["y"]!.floats, [-1.2247449, 0, 1.2247449, -1.4494897, 1, 3.4494897])
        assertClose(out["rm"]!.floats, [0.2, 0.6])
        // ONNX defines these outputs with the batch's biased variance.
        assertClose(out["rv"]!.floats, [0.96666667, 1.1666667])
        // Not training: the initializers stay.
        XCTAssertEqual(executor.initializer("mean")!.floats, [0, 0])
    }

    func testErrors() {
        XCTAssertEqual(errorText { _ = try Executor(model: self.model(mean: [0, 0], variance: [1, 1], outputs: ["y", "m"], opset: 9)) },
                       "node node (BatchNormalization): the training outputs of opset 9 (mean, var, saved_mean, saved_var) are not supported; use opset 14+ training_mode")
        XCTAssertEqual(errorText { _ = try Executor(model: self.model(mean: [0, 0], variance: [1, 1], attributes: [attr("spatial", 0)], opset: 7)) },
                       "node node (BatchNormalization): attribute 'spatial': only spatial=1 (per-channel statistics) is supported")
        let bad = Tensor(shape: [1, 3, 1, 2], floats: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(errorText { _ = try Executor(model: self.model(mean: [0, 0], variance: [1, 1])).run(inputs: ["x": bad]) },
                       "node node (BatchNormalization): scale has shape [2], expected [3]")
    }

    func testGradients() throws {
        let x = Tensor(shape: [3, 2, 2, 3], floats: pseudoRandom(36, seed: 11))
        let s = Tensor(shape: [2], floats: [0.7, -1.3]), b = Tensor(shape: [2], floats: [0.2, 0.5])
        let m = Tensor(shape: [2], floats: [0.1, -0.2]), v = Tensor(shape: [2], floats: [0.8, 1.5])
        let inputs = [("x", x), ("scale", s), ("B", b), ("mean", m), ("var", v)]
        // Training: nonlinear in x through the batch statistics; step 1e-2 keeps the O(h^2)
        // truncation error well under the tolerance.
        try checkGradients("BatchNormalization", inputs, training: true, constantInputs: ["mean", "var"], step: 1e-2)
        try checkGradients("BatchNormalization", inputs, training: false, constantInputs: ["mean", "var"], step: 0.5)
    }
}
