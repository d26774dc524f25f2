import ArgumentParser
import CLinux
import Foundation
import Logging
import SanlockCleanup
import SystemCalls
import SystemPackage

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
            directory, sanlock daemon or lockspace problem, unreadable guest status \
            XML); 2 the run completed but some deletions failed; 3 another janitor is \
            working on this lease directory; 5 the run completed but its report could \
            not be written to standard output; 64 bad command line; 128+N interrupted \
            by signal N (the lease in hand is finished first).
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

    @Option(name: .customLong("status-dir"),
            help: ArgumentHelp(
                "A directory of libvirt status XML (running and paused guests), which must exist; repeatable. Default: /run/libvirt/qemu and /run/libvirt/libxl.",
                valueName: "dir"))
    var statusDirectories: [String] = []

    @Option(name: .customLong("config-dir"),
            help: ArgumentHelp(
                "A directory of persistent guest definitions, to name the disks of stopped guests; repeatable. Default: /etc/libvirt/qemu and /etc/libvirt/libxl.",
                valueName: "dir"))
    var configDirectories: [String] = []

    @Option(name: .customLong("host-id"),
            help: ArgumentHelp("This host's sanlock host id, when the daemon cannot tell (overrides host_id).", valueName: "n"))
    var hostID: UInt64?

    @Flag(name: .customLong("any-host"),
          help: "Delete free leases whichever host held them last, as the stock script does. Unsafe on a lease directory shared by several hosts: a guest paused on another host looks exactly like an abandoned lease.")
    var anyHost = false

    @Option(name: .customLong("retired-host"),
            help: ArgumentHelp(
                "Purge the leases last held by host N, which has left for good (refused while N is live); repeatable.",
                valueName: "n"))
    var retiredHosts: [UInt64] = []

    @Option(name: .customLong("min-age"),
            help: ArgumentHelp("Keep leases changed more recently than this (e.g. 30m, 2h, 0).", valueName: "duration"))
    var minimumAge: String = "1h"

    @Option(name: .customLong("metrics-file"),
            help: ArgumentHelp(
                "Write node_exporter textfile-collector metrics to this file (atomically), e.g. /var/lib/prometheus/node-exporter/virt-sanlock-cleanup.prom.",
                valueName: "path"))
    var metricsFile: String?

    @Flag(name: .shortAndLong, help: "Log each step on stderr.")
    var verbose = false

    mutating func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        if let leaseDirectory, leaseDirectory.isEmpty { throw ValidationError("--lease-dir must not be empty") }
        for id in [hostID].compactMap({ $0 }) + retiredHosts where !(1...LockManagerConfig.maximumHostID).contains(id) {
            throw ValidationError("host ids are between 1 and \(LockManagerConfig.maximumHostID), not \(id)")
        }
        do {
            _ = try DurationText.seconds(minimumAge)
        } catch {
            throw ValidationError("--min-age: \(error)")
        }
        if anyHost, !retiredHosts.isEmpty { throw ValidationError("--any-host and --retired-host cannot be combined") }
    }

    /// SIGPIPE is ignored before anything else runs: a reader that goes away
    /// (`| head`), or a sanlock daemon that dies while libsanlock_client
    /// writes to its socket (it sends without MSG_NOSIGNAL), must not kill a
    /// run between two steps of a deletion. Writes then fail with EPIPE.
    ///
    /// The arguments come from what glibc passed to the process, not from
    /// `CommandLine.arguments`, which the Swift runtime reads from /proc and
    /// leaves empty when that read fails: parsed from nothing, `--dry-run`
    /// would become a cleaning run with every default.
    static func main() {
        Syscall.ignoreSignal(SIGPIPE)
        SignalWatch.blockHandledSignals()
        let count = vsc_argument_count()
        guard count > 0 else {
            let message = "virt-sanlock-cleanup: error: cannot read the command line; nothing done\n"
            try? FileDescriptor.standardError.writeFully(message.utf8)
            Syscall.exit(ExitStatus.fatal.rawValue)
        }
        let arguments = (1..<count).map { index in
            vsc_argument(index).map { String(cString: $0) } ?? ""
        }
        main(arguments)
    }

    func run() throws {
        let started = ContinuousClock.now
        let destination = LogDestination.detect(environment: ProcessInfo.processInfo.environment)
        // Under systemd every action is a journal line; elsewhere stderr only
        // carries what needs attention.
        let level: Logger.Level = verbose ? .debug : quiet ? .error : destination == .journal ? .info : .warning
        LoggingSystem.bootstrap { _ in JanitorLogHandler(destination: destination, logLevel: level) }
        let logger = Logger(label: "virt-sanlock-cleanup")
        let mode: RunConfiguration.Mode = dryRun ? .dryRun : .clean

        let report: RunReport
        let progress: ProgressBar? = destination == .terminal && !quiet ? ProgressBar(label: "deleting") : nil
        var onProgress: (@Sendable (Int, Int) -> Void)?
        if let progress {
            onProgress = { done, total in progress.update(done: done, total: total) }
        }
        let control = RunControl()
        let gate = OutputGate()
        let output = StandardOutput()
        // The report of a run that stopped without deciding: a log line, the
        // JSON document, the metrics.
        let reportFatal: @Sendable (JanitorError) -> Void = { [self] error in
            // Another janitor at work is not an error: a quiet run stays quiet.
            let level: Logger.Level = error.exitStatus == .busy ? .warning : .error
            logger.log(level: level, "\(error.description); nothing deleted")
            if format == .json {
                output.write(JSONReport.render(fatal: error, mode: mode, leaseDirectory: leaseDirectory ?? ""))
                output.flush()
            }
            writeMetrics(report: nil, exitCode: error.exitCode, started: started, logger: logger)
        }
        let signals = SignalWatch(control: control, gate: gate) { signal in
            progress?.finish()
            reportFatal(.interrupted(signal: signal, stage: control.stage))
        }
        if !signals.start() {
            logger.warning("cannot start the signal watch (no thread): SIGTERM, SIGINT and SIGHUP end the run at once")
        }
        do throws(JanitorError) {
            let configuration = try runConfiguration()
            report = try Janitor(configuration: configuration, logger: logger, control: control)
                .run(progress: onProgress)
            progress?.finish()
        } catch {
            progress?.finish()
            guard gate.claim() else { waitForWatchdog() }
            reportFatal(error)
            throw ExitCode(error.exitCode)
        }
        // From here on the watchdog no longer ends the process early.
        guard gate.claim() else { waitForWatchdog() }

        for warning in report.warnings { logger.warning("\(warning)") }
        if let signal = report.interruptedBy {
            logger.warning("interrupted by signal \(signal): the leases not yet attempted were kept")
        }
        switch (format, destination) {
        case (.json, _):
            JSONReport.write(report) { output.write($0) }
        case (.text, .journal):
            for line in TextReport.journalLines(report) { logger.log(level: line.level, "\(line.text)") }
        case (.text, _):
            for lease in report.leases where lease.action == .failed {
                logger.error("\(lease.entry.path.escapingControlCharacters()): \(lease.reason.sentence)")
            }
            if !quiet { output.write(TextReport.render(report)) }
        }
        output.flush()
        var exitCode = report.exitCode
        if let failure = output.failure {
            // A reader that left (| head) is not an error; a report lost to
            // EIO or a full disk is, when nothing else went wrong.
            let lost = failure != EPIPE
            logger.log(level: lost ? .error : .warning,
                       "the report could not be written to stdout (\(Errno(rawValue: failure))); the deletions are as the metrics say")
            if lost, exitCode == 0 { exitCode = ExitStatus.reportNotWritten.rawValue }
        }
        writeMetrics(report: report, exitCode: exitCode, started: started, logger: logger)
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    /// The watchdog is ending the process (see `SignalWatch`).
    private func waitForWatchdog() -> Never {
        while true { Syscall.sleep(seconds: 60) }
    }

    /// The run's configuration: the lock manager's file, then the flags.
    private func runConfiguration() throws(JanitorError) -> RunConfiguration {
        let lockManager: LockManagerConfig
        do {
            lockManager = try LockManagerConfig.load(path: config)
        } catch {
            throw .configuration("configuration: \(error)")
        }
        // The default status directories may be missing (no libvirt, no Xen);
        // one named on the command line must exist: a typo would hide every
        // running and paused guest.
        for directory in statusDirectories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw .configuration("--status-dir \(directory.escapingControlCharacters()): no such directory; without it its guests would go unseen")
            }
        }
        return RunConfiguration(
            leaseDirectory: leaseDirectory ?? lockManager.diskLeaseDirectory,
            mode: dryRun ? .dryRun : .clean,
            jobs: jobs,
            configuredHostID: lockManager.hostID,
            hostIDOverride: hostID,
            statusDirectories: statusDirectories.isEmpty ? GuestInventory.defaultStatusDirectories : statusDirectories,
            configDirectories: configDirectories.isEmpty ? GuestInventory.defaultConfigDirectories : configDirectories,
            policy: DeletionPolicy(
                anyHost: anyHost, retiredHosts: Set(retiredHosts),
                minimumAge: (try? DurationText.seconds(minimumAge)) ?? DeletionPolicy.defaultMinimumAge))
    }

    private func writeMetrics(report: RunReport?, exitCode: Int32, started: ContinuousClock.Instant, logger: Logger) {
        guard let metricsFile else { return }
        let text = MetricsFile.render(
            report: report, exitCode: exitCode, now: Date().timeIntervalSince1970,
            duration: (ContinuousClock.now - started).seconds,
            lastSuccess: MetricsFile.lastSuccess(in: metricsFile))
        do {
            try MetricsFile.write(text, to: metricsFile)
        } catch {
            logger.error("cannot write metrics: \(error)")
        }
    }
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}
