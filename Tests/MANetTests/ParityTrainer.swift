// The trainer as the PyTorch training references set it up (fixtures/training_w8 and the
// full-width or spread runs of tools/parity): shared by TrainingParityTests and
// TrainingSpreadParityTests.

import Foundation
import ManetSupport
import ONNXFormat
import ONNXIR
import Runtime
import TestSupport
import XCTest
@testable import MANet

/// The reference's SGD settings, as its meta.json names them.
struct ParityOptimizer: Decodable {
    var lr: Double
    var momentum: Double
    var weight_decay: Double
}

/// One batch of a training reference (an entry of its meta.json `batches`): the images as a
/// TensorProto file (`input`) or as torch.rand's output regenerated here (`input_rand`: what
/// `torch.rand(shape, generator=torch.Generator().manual_seed(seed))` gives after `skip` earlier
/// draws on that generator, checked against the SHA-256 of PyTorch's float32 bytes), and the labels'
/// file.
struct ParityBatch: Decodable {
    struct TorchRand: Decodable {
        var seed: UInt32
        var skip: Int
        var shape: [Int]
        var sha256: String
    }
    var input: String?
    var input_rand: TorchRand?
    var target: String

    func images(in directory: String) throws -> Tensor {
        if let input { return try Tensor(try ONNXFile.loadTensor(path: directory + "/" + input)) }
        let r = try XCTUnwrap(input_rand, "a batch of \(directory)/meta.json has neither input nor input_rand")
        var generator = TorchCPUGenerator(seed: r.seed)
        generator.skip(r.skip)
        let values = generator.rand(r.shape.reduce(1, *))
        let bytes = values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
        let digest = sha256Hex(bytes)
        guard digest == r.sha256 else {
            throw ReferenceError(description: "\(directory): torch.rand(\(r.shape)) of seed \(r.seed) after \(r.skip) draws "
                                 + "regenerated with SHA-256 \(digest), but PyTorch's has \(r.sha256)")
        }
        return Tensor(shape: r.shape, floats: values)
    }

    func labels(in directory: String) throws -> [Int] {
        try XCTUnwrap(try ONNXFile.loadTensor(path: directory + "/" + target).int64s).map { Int($0) }
    }
}

struct ReferenceError: Error, CustomStringConvertible { var description: String }

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
