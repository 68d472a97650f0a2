// Small valid inputs for the loaders that have no small committed fixture (a checkpoint, a JPEG,
// PNGs of other colour types, safetensors and `.npy` of several dtypes), made with the toolkit's own
// writers. `make fuzz` adds them to the seed corpus (see `Fuzz/run.sh`), and the
// replay test runs them through the harnesses.

import Foundation
import ManetSupport
import ONNXIR
import MANet
import Parity
import PyTorchFormat

extension FuzzTarget {
    /// The generated seeds of this target, as (file name, bytes).
    public func generatedSeeds() throws -> [(name: String, bytes: [UInt8])] {
        let w = TensorData(name: "fc.weight", dims: [2, 3], floats: [0.5, -1, 2, 0, 1e-3, 3])
        let b = TensorData(name: "fc.bias", dims: [2], floats: [0.1, -0.1])
        let n = TensorData(name: "bn.num_batches_tracked", dims: [], int64s: [7])
        switch self {
        case .onnx, .tensor:
            return []
        case .checkpoint:
            var recipe = TrainingRecipe()
            recipe.epochs = 2
            let checkpoint = TrainingCheckpoint(
                width: 8, numClasses: 2, inputSize: 16, beta: 0.5, classNames: ["a", "b"], stateDict: [w, b, n],
                momentumBuffers: [w, b], epochsCompleted: 1, learningRate: 0.01, bestAccuracy: 50, bestEpoch: 0,
                history: [EpochRecord(epoch: 0, learningRate: 0.01, trainLoss: 0.7, trainAccuracy: 50, testLoss: 0.69,
                                      testAccuracy: 50, seconds: 1)],
                seed: 1, dataSeed: 2, generatorState: [1, 2, 3, 4], recipe: recipe)
            return [("small.ckpt", try checkpoint.encoded())]
        case .pth:
            let (pickle, _) = try TorchSave.pickle(.dict([(.string("state_dict"), .orderedDict([("w", .tensor(w)), ("n", .tensor(n))]))]))
            return [("small_pickle.pkl", pickle)]
        case .safetensors:
            return [("small.safetensors", try SafetensorsWriter.serialize([w, b, n], metadata: ["format": "pt"]))]
        case .npy:
            return [("float32.npy", try NPY.encode(TensorData(dims: [2, 3], floats: [1, 2, 3, 4, 5, 6]))),
                    ("int64.npy", try NPY.encode(TensorData(dims: [2, 3], int64s: [1, -2, 3, -4, 5, -6])))]
        case .image:
            let pixels = (0..<(5 * 4 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 41) }
            let image = RGBImage(width: 5, height: 4, pixels: pixels)
            let grey = (0..<20).map { UInt8($0 * 12) }
            let rgba = (0..<80).map { UInt8(truncatingIfNeeded: $0 &* 29) }
            let indexed = (0..<20).map { UInt8($0 % 4) }
            let palette: [UInt8] = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]
            return [
                ("rgb.jpg", [UInt8](try ImageCodec.encodeJPEG(image, quality: 80))),
                ("rgb.png", [UInt8](try ImageCodec.encodePNG(image))),
                ("grey.png", [UInt8](try ImageCodec.encodePNG(rows: grey, width: 5, height: 4, colorType: .grey, bitDepth: 8))),
                ("rgba.png", [UInt8](try ImageCodec.encodePNG(rows: rgba, width: 5, height: 4, colorType: .rgba, bitDepth: 8))),
                ("palette.png", [UInt8](try ImageCodec.encodePNG(rows: indexed, width: 5, height: 4, colorType: .palette,
                                                                 bitDepth: 8, palette: palette))),
            ]
        }
    }

    /// For the libFuzzer entry points: writes this target's generated seeds into `folder` (before
    /// libFuzzer reads its corpus folders); nothing when `folder` is nil or empty. The entry
    /// points pass `$MANET_FUZZ_SEEDS` (see `Fuzz/run.sh`).
    public func writeGeneratedSeeds(to folder: String?) {
        guard let folder, !folder.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for seed in try generatedSeeds() {
                try Data(seed.bytes).write(to: URL(fileURLWithPath: folder + "/generated-" + seed.name))
            }
        } catch {
            FileHandle.standardError.write(Data("fuzz: cannot write generated seeds to \(folder): \(error)\n".utf8))
        }
    }
}
