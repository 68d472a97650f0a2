// swift-tools-version:6.0
// The MA-Net / ONNX toolkit. Targets follow the data flow (see README, "Targets"):
// C layer -> IR -> ONNX bridge -> kernels -> runtime -> MA-Net -> CLI.
import PackageDescription

let package = Package(
    name: "manet",
    products: [
        .executable(name: "manet", targets: ["manet"]),
        /// MA-Net: the builder, the trainer, checkpoints, data, export and import, `Classifier`.
        .library(name: "MANet", targets: ["MANet"]),
        /// The ONNX graph interpreter: tensors, operators, `Executor`.
        .library(name: "Runtime", targets: ["Runtime"]),
        /// ONNX files in and out, the checker, shape inference.
        .library(name: "ONNXFormat", targets: ["ONNXFormat"]),
        /// ONNX concepts as Swift values.
        .library(name: "ONNXIR", targets: ["ONNXIR"]),
        /// The shared helpers: `FileError`, `AtomicFile`, the seeded generators, `.npy`.
        .library(name: "ManetSupport", targets: ["ManetSupport"]),
        /// The fuzz harness bodies, for the libFuzzer package in `Fuzz/`.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // `swift package generate-documentation` (DocC); a command plugin, linked into nothing.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // MARK: - Public API

        /// ONNX concepts as Swift value types: model, graph, node, attribute, tensor. No I/O.
        .target(name: "ONNXIR"),
        /// One of each small helper the other targets share: the `{file, reason}` error, atomic
        /// file writing (fsync, rename, fsync of the folder; one syncfs for a batch), the seeded generators (SplitMix64,
        /// xoshiro256**) and the NumPy `.npy` codec.
        .target(name: "ManetSupport", dependencies: ["ONNXIR", "_CSystem"]),
        /// Reads and writes ONNX files (external data included), runs the ONNX checker and
        /// shape inference, through the C layer. The only Swift code that knows protobuf exists.
        .target(name: "ONNXFormat", dependencies: ["ONNXIR", "ManetSupport", "_CONNX"]),
        /// PyTorch's `torch.save` files (zip archive and legacy stream) in and out, over a pickle
        /// machine that executes nothing. Knows no model.
        .target(name: "PyTorchFormat", dependencies: ["ONNXIR", "ManetSupport", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        /// Tensors, operators (one file each: attributes, shapes, forward, backward), the
        /// operator registry and the graph executor.
        .target(name: "Runtime", dependencies: ["ONNXIR", "Kernels"]),
        /// MA-Net as an IR graph, its training (loss, SGD, StepLR, checkpoints, logs) and data
        /// (image folders, transforms, the synthetic dataset).
        .target(name: "MANet", dependencies: ["ONNXIR", "ManetSupport", "ONNXFormat", "PyTorchFormat", "Runtime", "_CImageCodec"]),
        /// Parity checks: reads reference tensors (ONNX test-data `.pb`, NumPy `.npy`), runs the
        /// interpreter and compares outputs as numpy.allclose does; onnxruntime as a reference.
        .target(name: "Parity", dependencies: ["ONNXIR", "ManetSupport", "ONNXFormat", "Runtime"]),
        /// The fuzz harness bodies: one function per untrusted-input loader (bytes in, errors
        /// swallowed), shared by the libFuzzer executables in `Fuzz/` and the replay test.
        .target(name: "FuzzTargets", dependencies: ["ONNXIR", "ManetSupport", "ONNXFormat", "PyTorchFormat", "Runtime", "MANet", "Parity"]),
        /// The `manet` command line.
        .executableTarget(
            name: "manet",
            dependencies: [
                "ONNXIR", "ManetSupport", "ONNXFormat", "Runtime", "Kernels", "MANet", "Parity",
                // `manet env` only: OpenBLAS's build and core, the kernel variants chosen.
                "_COpenBLAS", "_CKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Implementation details

        /// CPU compute on raw float buffers (GEMM, im2col, pooling, ...). Knows nothing of graphs.
        .target(name: "Kernels", dependencies: ["_COpenBLAS", "_CKernels"]),
        /// Vectorised C kernels (Winograd transforms), built for AVX-512, AVX2 and baseline
        /// x86-64 with the CPU's best picked at load time.
        .target(name: "_CKernels"),
        /// C API over libonnx / libprotobuf (C++ inside, plain C outside).
        .target(
            name: "_CONNX",
            cxxSettings: [
                .define("ONNX_NAMESPACE", to: "onnx"),
                .define("ONNX_ML", to: "1"),
            ],
            linkerSettings: [
                .linkedLibrary("onnx"),
                .linkedLibrary("onnx_proto"),
                .linkedLibrary("protobuf"),
            ]),
        /// OpenBLAS's CBLAS (Debian libopenblas-dev).
        .systemLibrary(name: "_COpenBLAS"),
        /// System calls Swift's Glibc module leaves out (syncfs), as plain C functions.
        .target(name: "_CSystem"),
        /// JPEG and PNG decode/encode over libjpeg-turbo and libpng (Debian libjpeg-dev,
        /// libpng-dev), in C because both libraries report errors by longjmp.
        .target(name: "_CImageCodec", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),

        // MARK: - Unit test bundles

        .testTarget(name: "ONNXIRTests", dependencies: ["ONNXIR", "TestSupport"]),
        .testTarget(name: "ManetSupportTests", dependencies: ["ManetSupport", "ONNXIR", "TestSupport"]),
        .testTarget(name: "ONNXFormatTests", dependencies: ["ONNXFormat", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "_CKernels", "TestSupport"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Kernels", "_CKernels", "ONNXFormat", "TestSupport"]),
        .testTarget(name: "MANetTests", dependencies: ["MANet", "ManetSupport", "Runtime", "ONNXFormat", "PyTorchFormat", "TestSupport"]),
        .testTarget(name: "PyTorchFormatTests", dependencies: ["PyTorchFormat", "ONNXIR", "TestSupport"]),
        .testTarget(name: "ParityTests", dependencies: ["Parity", "ONNXIR", "ONNXFormat", "Runtime", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["ManetSupport", "MANet", "TestSupport"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets", "ManetSupport", "TestSupport"]),
        /// Shared test helpers: `assertClose`, fixture paths, running the `manet` binary.
        .target(name: "TestSupport", dependencies: ["ONNXIR"], path: "Tests/TestSupport"),
        /// A test-only program for the crash-safety tests (no product, not installed): trains
        /// through the MANet library and kills itself inside its first checkpoint write.
        .executableTarget(name: "CrashTestTrainer", dependencies: ["MANet"], path: "Tests/CrashTestTrainer"),
    ],
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
