// swift-tools-version:6.0
// A package that depends on manet by version, as another project would: tools/build/consumer.sh
// copies it next to a tagged clone of the repository and fills in MANET_URL and MANET_VERSION.
import PackageDescription

let package = Package(
    name: "ManetConsumer",
    dependencies: [
        .package(url: "MANET_URL", exact: "MANET_VERSION"),
    ],
    targets: [
        .executableTarget(
            name: "ManetConsumer",
            dependencies: [
                .product(name: "MANet", package: "manet"),
                .product(name: "ONNXFormat", package: "manet"),
            ]),
    ]
)
