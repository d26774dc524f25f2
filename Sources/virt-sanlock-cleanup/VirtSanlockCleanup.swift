import ArgumentParser
import CLinux
// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
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
            """ + "\n\n" + exitStatusHelp,
        version: version
    )

    /// The exit statuses as `ExitStatus` describes them, one per line
    /// (`make man` copies them from here into the man page).
    static let exitStatusHelp = "Exit status:\n" + ExitStatus.descriptions.map { "\($0.status): \($0.meaning)" }
        .joined(separator: "\n")

    @OptionGroup var site: SiteOptions
    @OptionGroup var guests: GuestOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var output: OutputOptions

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
        let level: Logger.Level = output.verbose ? .debug : output.quiet ? .error : destination == .journal ? .info : .warning
        LoggingSystem.bootstrap { _ in JanitorLogHandler(destination: destination, logLevel: level) }
        let logger = Logger(label: "virt-sanlock-cleanup")
        let mode = policy.mode
        let (format, quiet) = (output.format, output.quiet)

        let report: RunReport
        let progress: ProgressBar? = destination == .terminal && !quiet ? ProgressBar(label: "deleting") : nil
        var onProgress: (@Sendable (Int, Int) -> Void)?
        if let progress {
            onProgress = { done, total in progress.update(done: done, total: total) }
        }
        let control = RunControl()
        let gate = OutputGate()
        let standardOutput = StandardOutput()
        // The report of a run that stopped without deciding: a log line, the
        // JSON document, the metrics.
        let reportFatal: @Sendable (JanitorError) -> Void = { [self] error in
            // Another janitor at work is not an error: a quiet run stays quiet.
            let level: Logger.Level = error.exitStatus == .busy ? .warning : .error
            logger.log(level: level, "\(error.description); \(mode == .audit ? "nothing audited" : "nothing deleted")")
            if format == .json {
                standardOutput.write(JSONReport.render(fatal: error, mode: mode, leaseDirectory: site.leaseDirectory ?? ""))
                standardOutput.flush()
            }
            if mode == .audit {
                writeAuditMetrics(report: nil, exitCode: error.exitCode, logger: logger)
            } else {
                writeMetrics(report: nil, exitCode: error.exitCode, started: started, logger: logger)
            }
        }
        let signals = SignalWatch(control: control, gate: gate) { signal in
            progress?.finish()
            reportFatal(.interrupted(signal: signal, stage: control.stage))
        }
        if !signals.start() {
            logger.warning("cannot start the signal watch (no thread): SIGTERM, SIGINT and SIGHUP end the run at once")
        }
        if mode == .audit {
            return try audit(logger: logger, destination: destination, gate: gate, output: standardOutput, reportFatal: reportFatal)
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
            JSONReport.write(report) { standardOutput.write($0) }
        case (.text, .journal):
            for line in TextReport.journalLines(report) { logger.log(level: line.level, "\(line.text)", metadata: line.metadata) }
        case (.text, _):
            for lease in report.leases where lease.action == .failed {
                logger.error("\(lease.entry.path.escapingControlCharacters()): \(lease.reason.sentence)")
            }
            if !quiet { standardOutput.write(TextReport.render(report)) }
        }
        standardOutput.flush()
        var exitCode = report.exitCode
        if let failure = standardOutput.failure {
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
    func waitForWatchdog() -> Never {
        while true { Syscall.sleep(seconds: 60) }
    }

    /// The run's configuration: the lock manager's file, then the flags.
    func runConfiguration() throws(JanitorError) -> RunConfiguration {
        let lockManager: LockManagerConfig
        do {
            lockManager = try LockManagerConfig.load(path: site.config)
        } catch {
            throw .configuration(error)
        }
        // The default status directories may be missing (no libvirt, no Xen);
        // one named on the command line must exist: a typo would hide every
        // running and paused guest.
        for directory in guests.statusDirectories {
            guard (try? Syscall.status(ofPath: directory.utf8))?.type == .directory else {
                throw .statusDirectoryMissing(directory)
            }
        }
        return RunConfiguration(
            leaseDirectory: site.leaseDirectory ?? lockManager.diskLeaseDirectory,
            mode: policy.mode,
            jobs: policy.jobs?.value,
            daemonTimeout: policy.daemonTimeout.seconds,
            configuredHostID: lockManager.hostID,
            hostIDOverride: site.hostID?.value,
            statusDirectories: guests.statusDirectories.isEmpty ? RunConfiguration.defaultStatusDirectories : guests.statusDirectories,
            configDirectories: guests.configDirectories.isEmpty ? RunConfiguration.defaultConfigDirectories : guests.configDirectories,
            policy: policy.deletionPolicy,
            autoDiskLeasesOffIn: lockManager.fileExisted && !lockManager.autoDiskLeases ? lockManager.path : nil)
    }

    private func writeMetrics(report: RunReport?, exitCode: Int32, started: ContinuousClock.Instant, logger: Logger) {
        guard let metricsFile = output.metricsFile else { return }
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
