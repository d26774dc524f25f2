import Foundation
import Testing

/// The version is written once, in debian/changelog, the package's version;
/// `make version` copies it into the command (Sources/virt-sanlock-cleanup/
/// Version.swift). This fails when the two differ.
@Suite("--version is debian/changelog's version")
struct VersionTests {
    /// The version of the changelog's first entry, as dpkg-parsechangelog
    /// reads it: "virt-sanlock-cleanup (0.1.0) unstable; urgency=medium".
    static func changelogVersion() throws -> String {
        let changelog = try String(contentsOfFile: OperationsTests.repository + "/debian/changelog", encoding: .utf8)
        let first = try #require(changelog.split(separator: "\n").first)
        let open = try #require(first.firstIndex(of: "(")), close = try #require(first.firstIndex(of: ")"))
        return String(first[first.index(after: open)..<close])
    }

    @Test func versionIsTheChangelogs() async throws {
        let version = try Self.changelogVersion()
        #expect(!version.isEmpty)
        let result = try await Command.run([JanitorBinary.binary, "--version"])
        #expect(result.stdout == version + "\n", "--version says \(result.stdout), debian/changelog \(version): run make version")
    }
}
