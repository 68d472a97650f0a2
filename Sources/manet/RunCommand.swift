// `manet run`: class probabilities for images or tensors, from an ONNX model in the interpreter.

import ArgumentParser
import Foundation
import ManetSupport
import MANet
import ONNXFormat
import ONNXIR
import Parity
import Runtime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Classify images (or tensors) with an ONNX model in the interpreter.",
        discussion: """
        --input takes a JPEG or PNG image, a folder (its images, recursively, in path order), \
        or a tensor file (.npy, or an ONNX TensorProto .pb) of shape [N, 3, S, S] or [3, S, S]. \
        Images get the test transform: Resize((S, S)) to the model's input size, then values in \
        [0, 1], no normalisation.

        Probabilities come from the model's `probabilities` output if it has one, else from \
        softmax(beta * logits_local + (1 - beta) * logits_global) with beta from the model's \
        metadata (default 0.6), else from the softmax of its only [N, C] output. Class names \
        come from the metadata key `class_names`, else the RAF-DB names for 7 classes, else \
        indices.

        Output: one line per input (file, most probable class, its probability; --top K puts \
        the K most probable on the line, --verbose lists every class under it), then how many \
        inputs went to each class. --json prints the same as one object (`predictions`, \
        `counts`, `skipped`). An image that cannot be decoded stops the command (exit 2) unless \
        --skip-bad-images, which reports it on stderr and goes on.

        EXAMPLES:
          manet run model.onnx --input face.jpg
          manet run model.onnx --input data/test --skip-bad-images
          manet run model.onnx --input batch.npy --json
        """)

    @Argument(help: "The ONNX model.")
    var model: String

    @Option(help: "An image, a folder of images, or a .npy / .pb tensor.")
    var input: String

    @Option(help: "Show the K most probable classes per input (default: 1 on the line; --verbose and --json: all).")
    var top: Int?

    @Flag(help: "List every class's probability under each input.")
    var verbose = false

    @Flag(help: "Report an undecodable image on stderr and go on instead of stopping.")
    var skipBadImages = false

    @Option(help: "Images per interpreter run (a model with a fixed batch dim uses its own; default 8).")
    var batchSize: Int?

    @Option(name: .customLong("batch"), help: .hidden)
    var batchAlias: Int?

    var batch: Int { batchSize ?? batchAlias ?? 8 }

    @Option(help: MemoryLimit.help)
    var maxMemory: MemoryLimit?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
        if batch < 1 { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let predictions: [Prediction]
        let classifier: Classifier
        var skipped: [String] = []
        do {
            classifier = try Classifier(model: try ONNXFile.load(path: model, maxMemory: maxMemory?.bytes), path: model)
            predictions = try predict(classifier, skipped: &skipped)
        } catch let e as CLIError {
            throw e
        } catch let e as FileError {
            throw interopExit(2, e.description)
        } catch let e as ONNXFormatError {
            throw interopExit(2, e.description)
        }
        let shown = predictions.map { p -> Prediction in
            var p = p
            if let top { p.scores = Array(p.scores.prefix(top)) }
            return p
        }
        // Inputs per predicted class, in class order (classes nothing went to included).
        let names = classifier.classNames(count: predictions.first?.scores.count ?? 0)
        var counts = [Int](repeating: 0, count: names.count)
        for p in predictions { if let best = p.top, best.index < counts.count { counts[best.index] += 1 } }
        if json {
            struct Count: Encodable { var index: Int; var name: String; var count: Int }
            struct Report: Encodable {
                var model: String
                var probabilities: String
                var beta: Double?
                var predictions: [Prediction]
                var counts: [Count]
                var skipped: [String]
            }
            var beta: Double? = nil
            if case .fusedLogits = classifier.source { beta = classifier.beta }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            let report = Report(model: model, probabilities: classifier.source.description, beta: beta, predictions: shown,
                                counts: names.indices.map { Count(index: $0, name: names[$0], count: counts[$0]) },
                                skipped: skipped)
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        // One line per input: file, class, probability (the --top K most probable with --top).
        let onLine = top ?? 1
        let width = shown.map(\.input.count).max() ?? 0
        let nameWidth = names.map(\.count).max() ?? 0
        for (p, all) in zip(shown, predictions) {
            let file = p.input.padding(toLength: width, withPad: " ", startingAt: 0)
            let best = p.scores.prefix(onLine).map {
                "\($0.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)) \(String(format: "%.4f", $0.probability))"
            }
            print("\(file)  " + (best.isEmpty ? "-" : best.joined(separator: "  ")))
            if verbose {
                for s in all.scores {
                    print("    \(s.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)) \(String(format: "%.4f", s.probability))")
                }
            }
        }
        let summary = names.indices.map { "\(names[$0]) \(counts[$0])" }.joined(separator: ", ")
        print("\(predictions.count) input\(predictions.count == 1 ? "" : "s")\(skipped.isEmpty ? "" : " (\(skipped.count) skipped)"): \(summary)")
    }

    /// Images under `folder`, recursively, sorted by path.
    func images(in folder: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw FileError(file: folder, reason: "cannot list the folder")
        }
        let extensions: Set<String> = ["jpg", "jpeg", "png"]
        let files = walker.compactMap { $0 as? String }
            .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted()
            .map { (folder as NSString).appendingPathComponent($0) }
        guard !files.isEmpty else { throw FileError(file: folder, reason: "holds no .jpg, .jpeg or .png image") }
        return files
    }

    func predict(_ classifier: Classifier, skipped: inout [String]) throws -> [Prediction] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
            throw FileError(file: input, reason: "no such file or folder")
        }
        let lower = input.lowercased()
        if !isDirectory.boolValue && (lower.hasSuffix(".npy") || lower.hasSuffix(".pb")) {
            return try predictTensor(classifier)
        }
        let files = isDirectory.boolValue ? try images(in: input) : [input]
        let size = classifier.imageSize
        let perRun = classifier.batchSize(preferred: batch)
        var predictions: [Prediction] = []
        var start = 0
        while start < files.count {
            var chunk = Array(files[start..<min(start + perRun, files.count)])
            var values: [Float] = []
            values.reserveCapacity(perRun * 3 * size * size)
            var decoded: [String] = []
            for file in chunk {
                do {
                    values += try classifier.imageTensor(file).floats
                    decoded.append(file)
                } catch {
                    guard skipBadImages else {
                        throw CLIError("\(error)", hint: isDirectory.boolValue ? "--skip-bad-images reports such an image and goes on" : nil)
                    }
                    printError("manet: warning: skipped: \(error)")
                    skipped.append(file)
                }
            }
            start += chunk.count
            chunk = decoded
            if chunk.isEmpty { continue }
            // A fixed batch dim larger than what is left is filled with copies of the last image.
            var rows = chunk.count
            while rows < perRun && classifier.batchSize(preferred: 0) == perRun {
                values += values.suffix(3 * size * size)
                rows += 1
            }
            let probabilities = try classifier.probabilities(Tensor(shape: [rows, 3, size, size], floats: values))
            for (file, row) in zip(chunk, probabilities) {
                predictions.append(classifier.prediction(input: file, probabilities: row))
            }
        }
        guard !predictions.isEmpty else { throw CLIError("\(input): no image could be decoded (\(skipped.count) skipped)") }
        return predictions
    }

    func predictTensor(_ classifier: Classifier) throws -> [Prediction] {
        let data = try ReferenceData.loadTensor(input)
        var tensor: Tensor
        do {
            tensor = try Tensor(data)
        } catch let e as RuntimeError {
            throw FileError(file: input, reason: "\(e)")
        }
        guard tensor.dtype == .float32 else {
            throw FileError(file: input, reason: "holds \(data.elementType) values; images are float")
        }
        // One sample without its batch dim gets one.
        if !classifier.inputDims.isEmpty, tensor.rank == classifier.inputDims.count - 1 {
            tensor = tensor.reshaped([1] + tensor.shape)
        }
        if !classifier.inputDims.isEmpty {
            guard tensor.rank == classifier.inputDims.count else {
                throw FileError(file: input, reason: "shape \(tensor.shape), but the model's input '\(classifier.inputName)' is \(classifier.inputDims)")
            }
            for (axis, (d, n)) in zip(classifier.inputDims, tensor.shape).enumerated() {
                if case .fixed(let expected) = d, expected != n {
                    throw FileError(file: input, reason: "shape \(tensor.shape), but the model's input '\(classifier.inputName)' is \(classifier.inputDims) (dim \(axis): \(n) vs \(expected))")
                }
            }
        }
        let name = (input as NSString).lastPathComponent
        return try classifier.probabilities(tensor).enumerated().map { k, row in
            classifier.prediction(input: "\(name)[\(k)]", probabilities: row)
        }
    }
}
