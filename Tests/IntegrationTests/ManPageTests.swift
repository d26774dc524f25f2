import Foundation
import Testing

/// The man page is generated from the command-line definition (`make man`);
/// these tests fail when the two drift apart.
@Suite("The man page matches the command line")
struct ManPageTests {
    static let page = OperationsTests.repository + "/man/virt-sanlock-cleanup.8"

    struct Option: Hashable, CustomStringConvertible {
        var long: String
        var short: String?
        var help: String
        var description: String { "--\(long)" }
    }

    /// What swift-argument-parser says the options are.
    static func cliOptions() async throws -> [Option] {
        let dump = try await Command.run([JanitorBinary.binary, "--experimental-dump-help"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let command = try #require(root["command"] as? [String: Any])
        let arguments = try #require(command["arguments"] as? [[String: Any]])
        return arguments.compactMap { argument in
            let names = argument["names"] as? [[String: String]] ?? []
            guard let long = names.first(where: { $0["kind"] == "long" })?["name"] else { return nil }
            return Option(long: long, short: names.first(where: { $0["kind"] == "short" })?["name"],
                          help: argument["abstract"] as? String ?? "")
        }
    }

    static func section(_ name: String, of lines: [String]) -> [String] {
        guard let start = lines.firstIndex(of: ".Sh \(name)") else { return [] }
        let rest = lines[(start + 1)...]
        return Array(rest.prefix { !$0.hasPrefix(".Sh ") })
    }

    @Test func everyOptionIsDocumentedAndNothingElse() async throws {
        let lines = try String(contentsOfFile: Self.page, encoding: .utf8).split(separator: "\n").map(String.init)
        let cli = try await Self.cliOptions()
        let synopsis = Set(Self.section("SYNOPSIS", of: lines).compactMap { line -> String? in
            guard line.hasPrefix(".Op Fl -") else { return nil }
            return line.split(separator: " ")[2].dropFirst().description
        })
        #expect(synopsis == Set(cli.map(\.long)), "SYNOPSIS differs from the command line: run make man")

        let options = Self.section("OPTIONS", of: lines)
        var documented: [String: (short: String?, help: String)] = [:]
        for (index, line) in options.enumerated() where line.hasPrefix(".It Fl ") {
            let words = line.split(separator: " ").map(String.init)
            let long = try #require(words.first { $0.hasPrefix("-") && $0.count > 2 }).dropFirst().description
            let short = words.count > 2 && words[2].count == 1 ? words[2] : nil
            documented[long] = (short, index + 1 < options.count ? options[index + 1] : "")
        }
        #expect(Set(documented.keys) == Set(cli.map(\.long)), "OPTIONS differs from the command line: run make man")
        for option in cli {
            let entry = try #require(documented[option.long], "\(option) missing from OPTIONS")
            #expect(entry.short == option.short, "\(option): short name")
            #expect(entry.help == option.help, "\(option): help text changed, run make man")
        }
    }

    @Test func manReadsItWithoutWarnings() async throws {
        try #require(Command.exists("man"), "man-db is needed")
        let result = try await Command.run(["man", "-l", "--warnings", Self.page], environment: ["MANPAGER": "cat", "PAGER": "cat"])
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(result.stdout.contains("THE LAST-HOLDER RULE"))
    }
}
