import Foundation
@testable import SanlockCleanup
import Testing

@Suite("Exit statuses: described once")
struct ExitStatusTests {
    @Test("The README's table is ExitStatus's descriptions, row for row")
    func readmeTableMatches() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let lines = try String(contentsOf: readme, encoding: .utf8).split(separator: "\n").map(String.init)
        let section = try #require(lines.firstIndex(of: "### Exit status"))
        let header = try #require(lines[section...].firstIndex(of: "| status | meaning |"))
        let rows = lines[(header + 2)...].prefix { $0.hasPrefix("|") }.map { row in
            row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let expected = ExitStatus.descriptions.map { [$0.status, $0.meaning] }
        #expect(rows == expected)
    }

    @Test func statusesAreDistinctAndShellSafe() {
        let codes = ExitStatus.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        // Below 126: the shell's own statuses and 128+N stay unambiguous.
        #expect(codes.allSatisfy { (0..<126).contains($0) })
        #expect(ExitStatus.interrupted(by: 15) == 143)
    }
}
