// `manet import SRC -o CKPT`: a PyTorch-trained MA-Net (ONNX or safetensors) or a checkpoint -> a trainable checkpoint.

import ArgumentParser
import Foundation
import MANet

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a PyTorch-trained MA-Net (ONNX export, safetensors or torch.save .pth) into a trainable checkpoint.",
        discussion: """
            SRC may be an ONNX file from either PyTorch exporter (BatchNormalization kept: mapped by \
            initializer name; folded into the convolutions: imported with identity BatchNorm layers \
            holding the folded bias), a safetensors state_dict (with or without DataParallel's \
            `module.` prefix), a torch.save file (.pth / .pth.tar, zip or legacy format: a state_dict at the \
            top level or under state_dict, model, model_state_dict or net; storages tagged cuda:N are \
            read on the CPU; nothing in the pickle is ever run: other objects are kept opaque and \
            named), or a manet checkpoint. Width and class count are read from the \
            tensors' shapes. Missing, unexpected and mis-shaped keys are reported in one error, \
            the cause first (a stem of another width), a few keys of each kind (all with --verbose). \
            With --num-classes different from the source's heads (12666 for the authors' MS-Celeb \
            pre-training, 8 for AffectNet-8), fc_1 and fc_2 are re-initialised as nn.Linear does.
            Exit status: 0 on success, 2 (message on stderr) on any error.

            EXAMPLES:
              manet import model.onnx -o imported.pb
              manet import state_dict.safetensors -o imported.pb --num-classes 7
              manet import Pretrained_on_MSCeleb.pth.tar -o start.pb --num-classes 7
            """)

    @Argument(help: "The source: .onnx, .safetensors, .pth / .pth.tar, or a manet checkpoint .pb.") var source: String
    @Option(name: .shortAndLong, help: "The checkpoint to write (.pb).") var output: String
    @Option(help: "Class count of the result (default: the source's; another count re-initialises the heads).") var numClasses: Int?
    @Option(help: "Stem width the source must have (default: read from conv1.weight).") var width: Int?
    @Option(help: "Input side stored in the checkpoint (default: the ONNX input's, else 224).") var inputSize: Int?
    @Option(help: "Seed for re-initialised heads and the checkpoint's generators.") var seed: UInt64 = 0
    @Option(help: MemoryLimit.help) var maxMemory: MemoryLimit?
    @Flag(help: "List every missing, unexpected or mis-shaped key (default: a few of each).") var verbose = false

    func run() throws {
        do {
            try OutputPath.checkFile(output, what: "--output")
            let options = ImportOptions(numClasses: numClasses, width: width, inputSize: inputSize, seed: seed,
                                        maxBytes: maxMemory?.bytes)
            // Written as it is read, one tensor at a time (the weights are never whole in memory).
            let c = try ModelImporter.importModel(path: source, options: options, writingTo: output)
            print("imported \(source) (\(try ModelImporter.format(ofFile: source).rawValue)): MA-Net width \(c.width), "
                  + "\(c.numClasses) classes, input \(c.inputSize)x\(c.inputSize), \(c.stateDictCount) state_dict entries, "
                  + "\(c.floatCount) floats")
            for note in c.notes { print("note: \(note)") }
            print("wrote \(output)")
        } catch let error as CLIError {
            throw error
        } catch let error as ImportError {
            throw CLIError(error, verbose: verbose)
        } catch {
            throw interopExit(2, "\(error)")
        }
    }
}
