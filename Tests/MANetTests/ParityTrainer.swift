// The trainer as the PyTorch training references set it up (fixtures/training_w8 and the
// full-width or spread runs of tools/parity): shared by TrainingParityTests and
// TrainingSpreadParityTests.

import Foundation
import ManetSupport
import ONNXIR
import XCTest
@testable import MANet

/// The reference's SGD settings, as its meta.json names them.
struct ParityOptimizer: Decodable {
    var lr: Double
    var momentum: Double
    var weight_decay: Double
}

/// The builder's graph for 7 classes with every initializer replaced by the reference's tensor of
/// that name (which must have the builder's dims).
func parityModel(width: Int, inputSize: Int, weights: [String: TensorData]) throws -> Model {
    var model = try MANetModel.build(numClasses: 7, width: width, inputSize: inputSize)
    model.graph.initializers = try model.graph.initializers.map { t in
        let w = try XCTUnwrap(weights[t.name], "the reference's weights lack \(t.name)")
        XCTAssertEqual(w.dims, t.dims, t.name)
        return TensorData(name: t.name, elementType: w.elementType, dims: w.dims, bytes: w.bytes)
    }
    return model
}

/// A trainer over `parityModel` with the reference's beta and SGD settings, fixed generators, and
/// PyTorch's BatchNormalization counters where the reference's state_dict left them.
func parityTrainer(width: Int, inputSize: Int, beta: Double, optimizer: ParityOptimizer,
                   weights: [String: TensorData]) throws -> Trainer {
    var options = TrainingOptions()
    options.width = width
    options.numClasses = 7
    options.inputSize = inputSize
    options.beta = beta
    options.recipe.learningRate = optimizer.lr
    options.recipe.momentum = optimizer.momentum
    options.recipe.weightDecay = optimizer.weight_decay
    let trainer = try Trainer(model: try parityModel(width: width, inputSize: inputSize, weights: weights), options: options,
                              classNames: ImageFolderDataset.rafDBClassNames, generator: Xoshiro256(seed: 1), dataSeed: 0)
    try trainer.loadStateDict(Array(weights.values))
    return trainer
}
