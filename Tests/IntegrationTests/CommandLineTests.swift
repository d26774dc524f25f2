import Foundation
import Testing

/// The mode is one choice (a cleaning run, `--dry-run`, `--audit`), and an
/// option that does not apply to it is a usage error naming it, never
/// silently ignored. No daemon needed: the command line is checked first.
@Suite("The command line: one mode, and only the options that apply to it")
struct CommandLineTests {
    @Test("An option that does not apply to the mode is exit status 64, naming it", arguments: [
        (["--audit", "--dry-run"], "--dry-run"),
        (["--audit", "-n"], "-n"),
        (["--audit", "--min-age", "1h"], "--min-age"),
        (["--audit", "--retired-host", "3"], "--retired-host"),
        (["--audit", "--any-host"], "--any-host"),
        (["--audit", "--jobs", "2"], "--jobs"),
        (["--dry-run", "--jobs", "2"], "--jobs"),
        (["--any-host", "--retired-host", "2"], "--retired-host"),
    ])
    func optionsThatDoNotApply(_ arguments: [String], _ named: String) async throws {
        let result = try await Command.run([JanitorBinary.binary, "--config", "/nonexistent"] + arguments, check: false)
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(named), "\(arguments): \(result.stderr)")
    }

    @Test("Each mode alone is accepted as it always was", arguments: [[], ["-n"], ["--dry-run"], ["--audit"]])
    func eachModeAlone(_ arguments: [String]) async throws {
        // No lease directory: a fatal error (1), not a usage error (64).
        let result = try await Command.run(
            [JanitorBinary.binary, "--config", "/nonexistent", "--lease-dir", "/nonexistent/leases"] + arguments, check: false)
        #expect(result.status == 1, "\(arguments): \(result.stderr)")
    }
}
