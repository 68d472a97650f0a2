// Class probabilities from an ONNX classifier in the interpreter: what `manet run` computes.
//
// Where the probabilities come from, in order: a `probabilities` output (an export with
// `--fused`); else MA-Net's two heads fused as softmax(beta * logits_local + (1 - beta) *
// logits_global), beta from metadata `beta` or 0.6 (the paper's); else the softmax of the
// model's only 2-D output. Class names: metadata `class_names` (comma-separated), else the
// RAF-DB names when there are 7 classes, else the class indices.

import Foundation
import ManetSupport
import ONNXFormat
import ONNXIR
import Runtime

/// One input's prediction: every class with its probability, most probable first.
public struct Prediction: Codable, Equatable, Sendable {
    public struct Score: Codable, Equatable, Sendable {
        public var index: Int
        public var name: String
        public var probability: Double
    }
    /// The image path, or `file[k]` for row k of a tensor file.
    public var input: String
    public var scores: [Score]
    public var top: Score? { scores.first }
}

public final class Classifier {
    /// The model as the executor keeps it: initializer values live once, in the executor.
    public var model: Model { executor.model }
    public let path: String
    let executor: Executor
    /// The graph input images go to.
    public let inputName: String
    /// The declared input dims (`[batch, 3, S, S]` for MA-Net).
    public let inputDims: [ONNXIR.Dimension]
    public let beta: Double
    public let source: Source

    public enum Source: Equatable {
        case probabilities(output: String)
        case fusedLogits(local: String, global: String)
        case softmax(output: String)

        public var description: String {
            switch self {
            case .probabilities(let o): return "output '\(o)'"
            case let .fusedLogits(l, g): return "softmax(beta * \(l) + (1 - beta) * \(g))"
            case .softmax(let o): return "softmax of output '\(o)'"
            }
        }
    }

    /// The RAF-DB basic-expression classes in the dataset's label order (folders 0..6 of the
    /// authors' layout, as `ImageFolderDataset.rafDBClassNames`).
    static var rafDBClassNames: [String] { ImageFolderDataset.rafDBClassNames }

    /// `optimizations`: the executor's inference plan; `.inference` (BN folded, Conv+Relu and
    /// Add+Relu fused, Winograd, packed filters) is what `manet run` runs and `manet verify`
    /// checks by default.
    public init(model: Model, path: String, optimizations: GraphOptimizations = .inference) throws {
        self.path = path
        let initializers = Set(model.graph.initializers.map(\.name))
        let feeds = model.graph.inputs.filter { !initializers.contains($0.name) }
        guard feeds.count == 1, let input = feeds.first else {
            throw FileError(file: path, reason: "expects one input tensor, the model has \(feeds.count): \(feeds.map(\.name).joined(separator: ", "))")
        }
        inputName = input.name
        if case .tensor(_, let dims?)? = input.type { inputDims = dims } else { inputDims = [] }

        let metadata = Dictionary(model.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        if let text = metadata["beta"] {
            guard let b = Double(text.trimmingCharacters(in: .whitespaces)), b >= 0, b <= 1 else {
                throw FileError(file: path, reason: "metadata beta '\(text)' is not a number in [0, 1]")
            }
            beta = b
        } else {
            beta = 0.6
        }
        let outputs = model.graph.outputs.map(\.name)
        if outputs.contains("probabilities") {
            source = .probabilities(output: "probabilities")
        } else if outputs.contains("logits_local"), outputs.contains("logits_global") {
            source = .fusedLogits(local: "logits_local", global: "logits_global")
        } else {
            let rank2 = model.graph.outputs.filter { info in
                if case .tensor(_, let dims?)? = info.type { return dims.count == 2 }
                return false
            }
            let chosen = rank2.count == 1 ? rank2[0].name : (outputs.count == 1 ? outputs[0] : nil)
            guard let chosen else {
                throw FileError(file: path, reason: "no 'probabilities' output, no 'logits_local' + 'logits_global', and no single [N, C] output among \(outputs.joined(separator: ", "))")
            }
            source = .softmax(output: chosen)
        }
        do {
            executor = try Executor(model: model, options: optimizations)
            executor.freezeForInference()
        } catch let e as RuntimeError {
            throw FileError(file: path, reason: "the interpreter cannot run this model: \(e)")
        }
    }

    /// Square image side from the input's declared `[N, 3, S, S]`, else metadata `input_size`,
    /// else 224 (the recipe's).
    public var imageSize: Int {
        if inputDims.count == 4, case .fixed(let h) = inputDims[2], case .fixed(let w) = inputDims[3], h == w { return h }
        if let text = model.metadata.first(where: { $0.key == "input_size" })?.value, let s = Int(text), s > 0 { return s }
        return 224
    }

    /// The batch size the model takes: its fixed batch dim, or `preferred` when symbolic.
    public func batchSize(preferred: Int) -> Int {
        if let first = inputDims.first, case .fixed(let n) = first { return n }
        return preferred
    }

    /// Names for `count` classes.
    public func classNames(count: Int) -> [String] {
        if let text = model.metadata.first(where: { $0.key == "class_names" })?.value {
            let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if names.count == count { return names }
        }
        if count == Self.rafDBClassNames.count { return Self.rafDBClassNames }
        return (0..<count).map(String.init)
    }

    /// Loads the ONNX model at `path` (external data beside it) and prepares it to classify.
    /// Errors name the file: an unreadable or invalid model (`ONNXFormatError`), or one that is
    /// not a classifier the interpreter can run (`FileError`).
    public convenience init(contentsOf path: String, optimizations: GraphOptimizations = .inference) throws {
        try self.init(model: try ONNXFile.load(path: path), path: path, optimizations: optimizations)
    }

    /// Classifies one JPEG or PNG file with the test transform (Resize, then [0, 1]): every class
    /// with its probability, most probable first.
    public func classify(imageAt file: String) throws -> Prediction {
        let image = try imageTensor(file)
        return prediction(input: file, probabilities: try probabilities(image.reshaped([1] + image.shape))[0])
    }

    /// The test transform: Resize((S, S)) then ToTensor ([0, 1]), as `[3, S, S]`.
    public func imageTensor(_ file: String) throws -> Tensor {
        let image: RGBImage
        do {
            image = try ImageCodec.decode(contentsOf: URL(fileURLWithPath: file))
        } catch let e as DataError {
            throw FileError(file: file, reason: "\(e)")
        }
        // The test pipeline draws no random numbers; the generator only fills its signature.
        var unused = Xoshiro256(seed: 0)
        return ImageOps.toTensor(ImageTransform.test(size: imageSize).apply(image, using: &unused))
    }

    /// Probabilities `[N, C]` for a batch `[N, ...]`.
    public func probabilities(_ batch: Tensor) throws -> [[Double]] {
        let outputs: [String: Tensor]
        do {
            outputs = try executor.run(inputs: [inputName: batch])
        } catch let e as RuntimeError {
            throw FileError(file: path, reason: "running the model: \(e)")
        }
        func rows(_ name: String) throws -> (Int, Int, [Float]) {
            guard let t = outputs[name], t.dtype == .float32, t.rank == 2 else {
                throw FileError(file: path, reason: "output '\(name)' is not a float [N, C] tensor")
            }
            return (t.shape[0], t.shape[1], t.floats)
        }
        switch source {
        case .probabilities(let name):
            let (n, c, values) = try rows(name)
            return (0..<n).map { r in (0..<c).map { Double(values[r * c + $0]) } }
        case .softmax(let name):
            let (n, c, values) = try rows(name)
            return (0..<n).map { r in softmax((0..<c).map { Double(values[r * c + $0]) }) }
        case let .fusedLogits(localName, globalName):
            let (n, c, local) = try rows(localName)
            let (n2, c2, global) = try rows(globalName)
            guard n == n2, c == c2 else {
                throw FileError(file: path, reason: "'\(localName)' [\(n), \(c)] and '\(globalName)' [\(n2), \(c2)] differ in shape")
            }
            // Fused in float32 as the trainer's prediction is, then softmax in double.
            let b = Float(beta)
            return (0..<n).map { r in
                softmax((0..<c).map { Double(b * local[r * c + $0] + (1 - b) * global[r * c + $0]) })
            }
        }
    }

    /// Scores for one probability row, most probable first (ties keep class order).
    public func prediction(input: String, probabilities row: [Double]) -> Prediction {
        let names = classNames(count: row.count)
        let scores = row.enumerated().map { Prediction.Score(index: $0.offset, name: names[$0.offset], probability: $0.element) }
        return Prediction(input: input, scores: scores.sorted { $0.probability > $1.probability || ($0.probability == $1.probability && $0.index < $1.index) })
    }
}

/// A numerically stable softmax (the max is subtracted first).
public func softmax(_ logits: [Double]) -> [Double] {
    guard let m = logits.max(), m.isFinite else { return logits.map { _ in .nan } }
    let e = logits.map { exp($0 - m) }
    let total = e.reduce(0, +)
    return e.map { $0 / total }
}
