// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "virt-sanlock-cleanup",
    products: [
        .executable(name: "virt-sanlock-cleanup", targets: ["virt-sanlock-cleanup"]),
        // For the fuzz targets' nested package (Tests/Fuzz), which can only use products.
        .library(name: "SanlockCleanup", targets: ["SanlockCleanup"]),
        .library(name: "Sanlock", targets: ["Sanlock"]),
        .library(name: "LibXML", targets: ["LibXML"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C seams: the only places that see sanlock's, libmd's and libxml2's headers.
        .systemLibrary(
            name: "CSanlock",
            pkgConfig: "libsanlock_client",
            providers: [.apt(["libsanlock-dev"])]
        ),
        .systemLibrary(
            name: "CMD5",
            pkgConfig: "libmd",
            providers: [.apt(["libmd-dev"])]
        ),
        .systemLibrary(
            name: "CLibXML2",
            pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]
        ),
        // What Swift cannot see of glibc (O_DIRECT, dirent's d_name), and the
        // command line as glibc passed it, for when Swift's own copy (read
        // from /proc) is missing.
        // Debian compiles C with glibc's fortified functions (dpkg-buildflags);
        // SwiftPM passes none of those flags, so the release build asks here.
        .target(name: "CLinux", cSettings: [.define("_FORTIFY_SOURCE", to: "2", .when(configuration: .release))]),
        // The one layer that makes system calls: everything above it uses
        // Swift values, swift-system's types and typed errors.
        .target(
            name: "SystemCalls",
            dependencies: [
                "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Swift wrappers above the seams: Swift values and typed errors only.
        .target(
            name: "Sanlock",
            dependencies: [
                "CSanlock",
                "SystemCalls",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "LibXML",
            dependencies: ["CLibXML2", "SystemCalls"]
        ),
        // The janitor itself, one folder per stage.
        .target(
            name: "SanlockCleanup",
            dependencies: [
                "Sanlock",
                "LibXML",
                "SystemCalls",
                .product(name: "SystemPackage", package: "swift-system"),
                "CMD5",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "virt-sanlock-cleanup",
            dependencies: [
                "SanlockCleanup",
                "SystemCalls",
                "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Unit tests (no daemon), one target per module; TestFixtures holds
        // what they and the integration tests share: the sectors sanlock
        // wrote, the guest XML files and the guest XML writer.
        .target(
            name: "TestFixtures",
            dependencies: ["Sanlock"],
            path: "Tests/TestFixtures",
            exclude: ["guests"]
        ),
        .testTarget(
            name: "SystemCallsTests",
            dependencies: ["SystemCalls", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(name: "SanlockTests", dependencies: ["Sanlock", "TestFixtures"]),
        .testTarget(name: "LibXMLTests", dependencies: ["LibXML", "TestFixtures"]),
        .testTarget(
            name: "SanlockCleanupTests",
            dependencies: [
                "SanlockCleanup", "Sanlock", "LibXML", "SystemCalls", "TestFixtures",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            // CSanlock: the behaviour tests call two sanlock functions the
            // janitor never uses (SanlockDirectCalls.swift).
            dependencies: [
                "SanlockCleanup", "Sanlock", "CSanlock", "TestFixtures", .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
