// swift-tools-version:6.0
// libFuzzer entry points, one executable per loader (see `Sources/FuzzTargets` in the main
// package for the harness bodies). Kept out of the main package so that a normal `swift build`
// never needs the fuzzer runtime. Build with `make fuzz`, or:
//   swift build -c release --sanitize fuzzer --sanitize address
import PackageDescription

let targets = ["onnx", "checkpoint", "safetensors", "npy", "tensor", "image", "pth"]

let package = Package(
    name: "manet-fuzz",
    dependencies: [.package(name: "manet", path: "..")],
    targets: targets.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: [.product(name: "FuzzTargets", package: "manet")],
            path: "Sources/fuzz-\(name)")
    },
    swiftLanguageModes: [.v5]
)
