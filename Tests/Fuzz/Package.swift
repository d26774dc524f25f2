// swift-tools-version:6.1
// libFuzzer targets for virt-sanlock-cleanup; see run.sh. A package of its
// own so that `swift build` of the project never needs the fuzzer runtime.
import PackageDescription

/// One executable per fuzz target, each a single file defining
/// `LLVMFuzzerTestOneInput`.
let fuzzTargets = ["FuzzLeader", "FuzzClassifier", "FuzzVirConf", "FuzzGuestXML", "FuzzDuration", "FuzzRender", "FuzzDaemonStatus"]

let package = Package(
    name: "virt-sanlock-cleanup-fuzz",
    dependencies: [
        .package(name: "virt-sanlock-cleanup", path: "../.."),
        // Errno, for the FileSystemError values FuzzRender builds.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(name: "FuzzSupport"),
    ] + fuzzTargets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "Sanlock", package: "virt-sanlock-cleanup"),
                .product(name: "LibXML", package: "virt-sanlock-cleanup"),
                .product(name: "SanlockCleanup", package: "virt-sanlock-cleanup"),
                .product(name: "SystemPackage", package: "swift-system"),
            ])
    },
    swiftLanguageModes: [.v6]
)
