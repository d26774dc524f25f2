import ArgumentParser
import Foundation
import Logging
import SanlockCleanup

@main
struct VirtSanlockCleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "virt-sanlock-cleanup",
        abstract: "Delete libvirt's unused sanlock disk leases, each one under its own lease.",
        discussion: """
            Walks the sanlock lease directory of libvirt's auto disk leases \
            (disk_lease_dir in qemu-sanlock.conf), decides for every entry whether \
            any guest on any host may still use it, and deletes only leases that \
            nobody holds: acquire without waiting, invalidate, unlink, release. \
            Leases held by any host, entries that are not leases, symlinks and \
            directories are never deleted; the report says why each was kept.

            Exit status: 0 the run completed (leases kept because they are in use \
            are not failures); 1 fatal error, nothing deleted (configuration, lease \
            directory, sanlock daemon or lockspace problem); 2 the run completed \
            but some deletions failed; 64 bad command line.
            """,
        version: "0.1.0"
    )

    @Option(name: .long, help: ArgumentHelp("The lock manager configuration to read.", valueName: "path"))
    var config: String = LockManagerConfig.defaultPath

    @Option(name: .customLong("lease-dir"),
            help: ArgumentHelp("The lease directory; overrides disk_lease_dir from the configuration.", valueName: "dir"))
    var leaseDirectory: String?

    @Flag(name: [.customShort("n"), .long], help: "Decide everything, change nothing. Works without the sanlock daemon.")
    var dryRun = false

    @Flag(name: .shortAndLong, help: "Print only errors (as the stock script does).")
    var quiet = false

    @Option(help: "Report format: text or json.")
    var format: ReportFormat = .text

    @Option(name: [.customShort("j"), .long],
            help: ArgumentHelp("Parallel sanlock connections.", valueName: "n"))
    var jobs: Int = RunConfiguration.defaultJobs

    @Flag(name: .shortAndLong, help: "Log each step on stderr.")
    var verbose = false

    mutating func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        if let leaseDirectory, leaseDirectory.isEmpty { throw ValidationError("--lease-dir must not be empty") }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : (quiet ? .error : .warning)
            return handler
        }
        let logger = Logger(label: "virt-sanlock-cleanup")
        let mode: RunConfiguration.Mode = dryRun ? .dryRun : .clean

        let lockManager: LockManagerConfig
        do {
            lockManager = try LockManagerConfig.load(path: config)
        } catch {
            throw fail(.configuration("configuration: \(error)"), mode: mode, leaseDirectory: leaseDirectory ?? "")
        }
        let runConfiguration = RunConfiguration(
            leaseDirectory: leaseDirectory ?? lockManager.diskLeaseDirectory,
            mode: mode,
            jobs: jobs,
            configuredHostID: lockManager.hostID)

        let report: RunReport
        do {
            report = try Janitor(configuration: runConfiguration, logger: logger).run()
        } catch {
            throw fail(error, mode: mode, leaseDirectory: runConfiguration.leaseDirectory)
        }

        for warning in report.warnings { logger.warning("\(warning)") }
        for lease in report.leases where lease.action == .failed {
            logger.error("\(lease.entry.path): \(lease.reason.sentence)")
        }
        switch (format, quiet) {
        case (.json, _): print(JSONReport.render(report), terminator: "")
        case (.text, false): print(TextReport.render(report), terminator: "")
        case (.text, true): break
        }
        if report.exitStatus != .success { throw ExitCode(report.exitStatus.rawValue) }
    }

    /// Reports a fatal error (stderr, and a JSON document when asked for
    /// JSON) and returns the exit code to throw.
    private func fail(_ error: JanitorError, mode: RunConfiguration.Mode, leaseDirectory: String) -> ExitCode {
        FileHandle.standardError.write(Data("virt-sanlock-cleanup: \(error.description); nothing deleted\n".utf8))
        if format == .json {
            print(JSONReport.render(fatal: error, mode: mode, leaseDirectory: leaseDirectory), terminator: "")
        }
        return ExitCode(ExitStatus.fatal.rawValue)
    }
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}
