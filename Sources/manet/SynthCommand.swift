// `manet synth`: writes the procedural seven-class facial-expression dataset in the image-folder layout.

import ArgumentParser
import Foundation
import MANet

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic seven-class facial-expression dataset (DIR/train/0..6, DIR/test/0..6, JPEG).",
        discussion: """
            Faces are drawn from facial-action prototypes of RAF-DB's classes (0 Neutral, 1 Happiness, \
            2 Sadness, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger): brows raised, lowered or inner-raised, \
            eyes wide, narrowed or closed, mouth open, smiling, frowning or pressed, nose wrinkles, lip \
            corners up or down - at random intensities, sometimes blended with another class. Each photo \
            then gets in-the-wild nuisances: pose (roll, scale, shift, yaw), occluders (glasses, \
            sunglasses, hands, masks, random blocks), lighting gradients, background clutter, blur, \
            noise and JPEG compression. --nuisance scales all of them: 1 (default) is moderate, every \
            kind present but the expression readable at 64 pixels; 0 is clean frontal faces; up to 3 \
            is harder (at 1 the JPEG quality is 40-95, at 1.3 and above 25-95).

            Every image is a pure function of (--seed, split, class, index): the same command always \
            writes the same files, whatever the thread count.

            EXAMPLES:
              manet synth --out data
              manet synth --out data --train-per-class 250 --test-per-class 50 --size 64 --seed 1
            """)

    @Option(help: "Output folder; train/ and test/ are created inside it.")
    var out: String

    @Option(help: "Training images per class.")
    var trainPerClass = 300

    @Option(help: "Test images per class.")
    var testPerClass = 60

    @Option(help: "Image side in pixels (square images; RAF-DB's aligned faces are 100).")
    var size = 112

    @Option(help: "Seed of the whole dataset.")
    var seed: UInt64 = 0

    @Option(help: "Nuisance level 0-3: scales pose, occluder and blur rates, lighting, noise and JPEG loss (1 = moderate).")
    var nuisance = 1.0

    @Option(help: "Rendering threads (the output does not depend on it).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Also write DIR/{train,test}_pixels_<N>.npy (images decoded back and resized to NxN) and DIR/{train,test}_labels.npy, for numpy-only baselines such as tools/parity/linear_baseline.py. 0 = off.")
    var npySide = 0

    @Flag(help: "Replace existing DIR/train and DIR/test (they are deleted first).")
    var overwrite = false

    /// The old spelling of --overwrite (docs/CLI.md: one name for one meaning).
    @Flag(name: .customLong("force"), help: .hidden)
    var force = false

    func validate() throws {
        guard trainPerClass > 0, testPerClass > 0 else { throw ValidationError("--train-per-class and --test-per-class must be positive") }
        guard (16...1024).contains(size) else { throw ValidationError("--size must be 16-1024 pixels") }
        guard nuisance.isFinite, (0...3).contains(nuisance) else { throw ValidationError("--nuisance must be 0-3") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        guard (0...256).contains(npySide) else { throw ValidationError("--npy-side must be 0-256") }
    }

    func run() throws {
        var options = SyntheticDataset.Options()
        options.trainPerClass = trainPerClass
        options.testPerClass = testPerClass
        options.size = size
        options.seed = seed
        options.threads = threads
        options.npySide = npySide
        options.nuisance = nuisance
        signal(SIGXFSZ, SIG_IGN)  // a file-size limit is an EFBIG error naming the file, not a kill
        try OutputPath.checkFolder(out, what: "--out")
        let root = URL(fileURLWithPath: out)
        let total = 7 * (trainPerClass + testPerClass)
        print("synth: writing \(7 * trainPerClass) train and \(7 * testPerClass) test images (\(size)x\(size), seed \(seed), nuisance \(nuisance)) to \(root.path)")
        // A live counter on a terminal; otherwise a line every 10%, so logs stay short.
        let live = isatty(STDOUT_FILENO) != 0
        let step = max(1, total / 10)
        let summary = try SyntheticDataset.write(to: root, options: options, replace: overwrite || force) { done, total in
            if live {
                FileHandle.standardOutput.write(Data("\rsynth: \(done)/\(total) images".utf8))
                if done == total { FileHandle.standardOutput.write(Data("\n".utf8)) }
            } else if done % step == 0 || done == total {
                print("synth: \(done)/\(total) images")
                fflush(stdout)
            }
        }
        print(String(format: "synth: done in %.1f s (%.0f images/s, %.1f MB)", summary.seconds,
                     Double(total) / max(summary.seconds, 1e-9), Double(summary.bytes) / 1e6))
    }
}
