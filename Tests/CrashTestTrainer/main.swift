// A test-only program (no product, not installed): trains as `manet train` does, through the
// MANet library, and kills itself with SIGKILL inside its first checkpoint write, between the
// complete temporary file and its rename — the moment a kill from outside can hardly aim at.
// Tests/CLITests/CrashSafetyTests.swift resumes what it leaves with the real `manet train`.
//
// Usage: CrashTestTrainer DATA DIR EPOCHS WIDTH INPUT-SIZE BATCH-SIZE SEED
// Resumes from DIR/checkpoint.pb when there is one, else starts afresh (log DIR/log.txt, one
// thread, every step logged). Exits 3 if the run ends without writing a checkpoint.

import Foundation
import MANet

let arguments = CommandLine.arguments
guard arguments.count == 8, let epochs = Int(arguments[3]), let width = Int(arguments[4]), let inputSize = Int(arguments[5]),
      let batchSize = Int(arguments[6]), let seed = UInt64(arguments[7]) else {
    FileHandle.standardError.write(Data("usage: CrashTestTrainer DATA DIR EPOCHS WIDTH INPUT-SIZE BATCH-SIZE SEED\n".utf8))
    exit(64)
}
let data = arguments[1], dir = arguments[2], latest = dir + "/checkpoint.pb"
do {
    let (trainSet, testSet) = try ImageFolderDataset.load(root: URL(fileURLWithPath: data))
    var options = TrainingOptions()
    options.width = width
    options.numClasses = trainSet.classNames.count
    options.inputSize = inputSize
    options.seed = seed
    options.recipe.epochs = epochs
    options.recipe.batchSize = batchSize
    options.printFrequency = 1
    options.threads = 1
    options.logPath = dir + "/log.txt"
    options.checkpointDirectory = dir
    let log = try LogWriter(path: options.logPath)
    let trainer: Trainer
    if FileManager.default.fileExists(atPath: latest) {
        let checkpoint = try TrainingCheckpoint.read(path: latest)
        trainer = try Trainer(resuming: checkpoint, options: options, classNames: trainSet.classNames)
        _ = try log.truncate(to: checkpoint.logLength)
    } else {
        trainer = try Trainer(options: options, classNames: trainSet.classNames)
    }
    let recipe = trainer.options.recipe
    let train = try BatchLoader(dataset: trainSet, options: BatchLoaderOptions(
        batchSize: recipe.batchSize, inputSize: trainer.options.inputSize, shuffle: recipe.shuffle, augment: recipe.augment, seed: trainer.dataSeed))
    let test = try BatchLoader(dataset: testSet, options: BatchLoaderOptions(
        batchSize: recipe.batchSize, inputSize: trainer.options.inputSize, shuffle: false, augment: false, seed: trainer.dataSeed))
    trainer.beforeCheckpointRename = { _ in _ = raise(SIGKILL) }
    try trainer.run(train: train, test: test, log: log)
    exit(3)
} catch {
    FileHandle.standardError.write(Data("CrashTestTrainer: \(error)\n".utf8))
    exit(2)
}
