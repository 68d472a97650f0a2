// Classifies one image with an ONNX MA-Net through manet's public API and prints the top class
// and its probability. Usage: ManetConsumer MODEL.onnx IMAGE

import Foundation
import MANet

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: ManetConsumer MODEL.onnx IMAGE\n".utf8))
    exit(64)
}
do {
    let classifier = try Classifier(contentsOf: arguments[1])
    let prediction = try classifier.classify(imageAt: arguments[2])
    print("\(prediction.scores[0].index) \(prediction.scores[0].probability)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
