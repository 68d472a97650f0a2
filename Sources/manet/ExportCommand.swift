// `manet export CKPT -o model.onnx`: a trained checkpoint -> ONNX (or a safetensors state_dict, or the authors' .pth.tar).

import ArgumentParser
import Foundation
import MANet

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint's inference graph to ONNX, or its state_dict to safetensors or a .pth.tar.",
        discussion: """
            The graph has input `input` [batch, 3, S, S] (values in 0..1, no normalisation) and \
            outputs `logits_local` and `logits_global`; --fused adds `logits` (beta * local + \
            (1 - beta) * global) and `probabilities` (softmax). BatchNormalization is kept unless \
            --fold-bn. metadata_props carry class_names, beta, input_size, input_range and the \
            producer. The ONNX checker and full shape inference run before the file is written \
            (atomically). --format safetensors writes the PyTorch state_dict instead, keys as the \
            authors' model (load_state_dict(strict=True) accepts it). --format pth writes the \
            authors' training checkpoint in torch.save's zip format: epoch, state_dict (keys with \
            DataParallel's `module.` unless --no-module-prefix), best_acc and optimizer (SGD state \
            with the momentum buffers, parameters numbered in model.parameters() order); \
            torch.load(weights_only=True) reads it and torch.optim.SGD.load_state_dict takes its \
            optimizer, and `manet train --resume` continues from it.
            Exit status: 0 on success, 2 (message on stderr) on any error.

            EXAMPLES:
              manet export runs/train-1/model_best.pb -o model.onnx --fused
              manet export model_best.pb -o model.onnx --opset 13 --fold-bn
              manet export model_best.pb -o model.safetensors --format safetensors
              manet export runs/train-1/checkpoint.pb -o checkpoint.pth.tar --format pth
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case onnx, safetensors, pth
    }

    @Argument(help: "The checkpoint (.pb) to export.") var checkpoint: String
    @Option(name: .shortAndLong, help: "The file to write (replaced atomically; a folder or a non-regular file is refused).") var output: String
    @Option(help: "ONNX opset, 13 to 17.") var opset = 17
    @Flag(help: "Add the fused `logits` and `probabilities` outputs.") var fused = false
    @Flag(help: "Fold BatchNormalization into the preceding convolutions.") var foldBn = false
    @Flag(help: "Write initializers of 1 KB and more to <output>.data beside the model (stored location: that bare file name, relative to the model's folder).") var externalData = false
    @Option(help: "onnx, safetensors or pth.") var format: Format = .onnx
    @Flag(help: "With --format pth: state_dict keys without DataParallel's `module.` prefix.") var noModulePrefix = false

    func validate() throws {
        guard (13...17).contains(opset) else { throw ValidationError("--opset \(opset): opset \(opset) is not supported for export: choose 13 to 17") }
        if format != .onnx && (fused || foldBn || externalData || opset != 17) {
            throw ValidationError("--fused, --fold-bn, --external-data and --opset apply to --format onnx only")
        }
        if format != .pth && noModulePrefix { throw ValidationError("--no-module-prefix applies to --format pth only") }
    }

    func run() throws {
        signal(SIGXFSZ, SIG_IGN)  // a file-size limit is an EFBIG error naming the file, not a kill
        do {
            // The model file and, with --external-data, `<output>.data` beside it (its location
            // inside the model is that bare file name, relative to the model's folder).
            try OutputPath.checkFile(output, what: "--output")
            if externalData { try OutputPath.checkFile(output + ".data", what: "external data file") }
            let ckpt = try CheckpointInput.read(checkpoint, option: "")
            switch format {
            case .safetensors:
                try MANetExporter.exportSafetensors(ckpt, file: checkpoint, to: output)
                print("wrote \(output): state_dict of MA-Net width \(ckpt.width), \(ckpt.numClasses) classes "
                      + "(\(ckpt.stateDict.count) tensors)")
            case .pth:
                try PyTorchTrainingState.write(ckpt, file: checkpoint, to: output, modulePrefix: !noModulePrefix)
                print("wrote \(output): the authors' checkpoint layout (torch.save zip) of MA-Net width \(ckpt.width), "
                      + "\(ckpt.numClasses) classes: epoch \(ckpt.epochsCompleted), state_dict of \(ckpt.stateDict.count) tensors"
                      + (noModulePrefix ? "" : " (`module.` keys)") + ", best_acc \(ckpt.bestAccuracy), optimizer with "
                      + "\(ckpt.momentumBuffers.count) momentum buffers")
            case .onnx:
                let options = ExportOptions(opset: opset, fused: fused, foldBatchNorm: foldBn, externalData: externalData)
                let model = try MANetExporter.export(ckpt, file: checkpoint, to: output, options: options)
                let bn = model.graph.nodes.filter { $0.opType == "BatchNormalization" }.count
                print("wrote \(output): MA-Net width \(ckpt.width), \(ckpt.numClasses) classes, input [batch, 3, "
                      + "\(ckpt.inputSize), \(ckpt.inputSize)], opset \(opset), \(model.graph.nodes.count) nodes, "
                      + "\(bn) BatchNormalization\(foldBn ? " (folded)" : ""), outputs "
                      + model.graph.outputs.map(\.name).joined(separator: ", "))
                print("checked: ONNX checker and shape inference passed")
                if externalData { print("wrote \(output).data") }
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw interopExit(2, "\(error)")
        }
    }
}
