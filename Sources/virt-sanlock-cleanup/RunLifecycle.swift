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
import ArgumentParser
import Logging
import SanlockCleanup
import SystemCalls
import SystemPackage

/// What a mode hands back to the lifecycle: its report, written the way the
/// output options ask, and its metrics.
protocol ModeReport: Sendable {
    var warnings: [RunWarning] { get }
    /// The exit code before any trouble writing the report.
    var exitCode: Int32 { get }
    /// Writes the report to standard output, or as journal lines.
    func write(format: ReportFormat, destination: LogDestination, quiet: Bool, logger: Logger, output: StandardOutput)
    /// The metrics file's text; `report` nil for a run that stopped.
    static func metrics(_ report: Self?, exitCode: Int32, now: Double, duration: Double, metricsFile: String) -> String
}

/// One run of the command, whatever the mode: the log set up for where
/// stderr goes, the signal watch, the one writer of the final output, the
/// fatal report, a report that stdout could not take, the exit code and
/// the metrics file.
struct RunLifecycle {
    let mode: RunConfiguration.Mode
    let output: OutputOptions
    /// As given on the command line, for a fatal JSON report.
    let leaseDirectory: String
    let logger: Logger
    let destination: LogDestination
    let control = RunControl()
    private let gate = OutputGate()
    private let standardOutput = StandardOutput()
    private let started = ContinuousClock.now
    /// On a terminal, for deletions that take a while.
    let progress: ProgressBar?

    init(mode: RunConfiguration.Mode, output: OutputOptions, leaseDirectory: String) {
        self.mode = mode
        self.output = output
        self.leaseDirectory = leaseDirectory
        destination = LogDestination.detect(environment: ProcessInfo.processInfo.environment)
        // Under systemd every action is a journal line; elsewhere stderr only
        // carries what needs attention.
        let level: Logger.Level = output.verbose ? .debug : output.quiet ? .error : destination == .journal ? .info : .warning
        LoggingSystem.bootstrap { [destination] _ in JanitorLogHandler(destination: destination, logLevel: level) }
        logger = Logger(label: "virt-sanlock-cleanup")
        progress = destination == .terminal && !output.quiet && mode == .clean ? ProgressBar(label: "deleting") : nil
    }

    /// Runs `produce` under the signal watch and writes what it gives; throws
    /// the exit code when it is not 0.
    func perform<Report: ModeReport>(_ produce: () throws(JanitorError) -> Report) throws {
        let signals = SignalWatch(control: control, gate: gate) { [self] signal in
            progress?.finish()
            reportFatal(.interrupted(signal: signal, stage: control.stage), Report.self)
        }
        if !signals.start() {
            logger.warning("cannot start the signal watch (no thread): SIGTERM, SIGINT and SIGHUP end the run at once")
        }
        let report: Report
        do throws(JanitorError) {
            report = try produce()
            progress?.finish()
        } catch {
            progress?.finish()
            guard gate.claim() else { waitForWatchdog() }
            reportFatal(error, Report.self)
            throw ExitCode(error.exitCode)
        }
        // From here on the watchdog no longer ends the process early.
        guard gate.claim() else { waitForWatchdog() }
        for warning in report.warnings { logger.warning("\(warning)") }
        report.write(format: output.format, destination: destination, quiet: output.quiet, logger: logger, output: standardOutput)
        standardOutput.flush()
        var exitCode = report.exitCode
        if let failure = standardOutput.failure {
            // A reader that left (| head) is not an error; a report lost to
            // EIO or a full disk is, when nothing else went wrong.
            let lost = failure != EPIPE
            if mode == .audit {
                if lost { logger.error("the audit report could not be written to stdout (\(Errno(rawValue: failure)))") }
            } else {
                logger.log(level: lost ? .error : .warning,
                           "the report could not be written to stdout (\(Errno(rawValue: failure))); the deletions are as the metrics say")
            }
            if lost, exitCode == 0 { exitCode = ExitStatus.reportNotWritten.rawValue }
        }
        writeMetrics(report, Report.self, exitCode: exitCode)
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    /// The report of a run that stopped without deciding: a log line, the
    /// JSON document, the metrics.
    private func reportFatal<Report: ModeReport>(_ error: JanitorError, _ type: Report.Type) {
        // Another janitor at work is not an error: a quiet run stays quiet.
        let level: Logger.Level = error.exitStatus == .busy ? .warning : .error
        logger.log(level: level, "\(error.description); \(mode == .audit ? "nothing audited" : "nothing deleted")")
        if output.format == .json {
            standardOutput.write(JSONReport.render(fatal: error, mode: mode, leaseDirectory: leaseDirectory))
            standardOutput.flush()
        }
        writeMetrics(nil, type, exitCode: error.exitCode)
    }

    private func writeMetrics<Report: ModeReport>(_ report: Report?, _ type: Report.Type, exitCode: Int32) {
        guard let metricsFile = output.metricsFile else { return }
        let text = Report.metrics(report, exitCode: exitCode, now: Date().timeIntervalSince1970,
                                  duration: (ContinuousClock.now - started).seconds, metricsFile: metricsFile)
        do {
            try MetricsFile.write(text, to: metricsFile)
        } catch {
            logger.error("cannot write metrics: \(error)")
        }
    }

    /// The watchdog is ending the process (see `SignalWatch`).
    private func waitForWatchdog() -> Never {
        while true { Syscall.sleep(seconds: 60) }
    }
}

extension RunReport: ModeReport {
    func write(format: ReportFormat, destination: LogDestination, quiet: Bool, logger: Logger, output: StandardOutput) {
        if let signal = interruptedBy {
            logger.warning("interrupted by signal \(signal): the leases not yet attempted were kept")
        }
        switch (format, destination) {
        case (.json, _):
            JSONReport.write(self) { output.write($0) }
        case (.text, .journal):
            for line in TextReport.journalLines(self) { logger.log(level: line.level, "\(line.text)", metadata: line.metadata) }
        case (.text, _):
            for lease in leases where lease.action == .failed {
                logger.error("\(lease.entry.path.escapingControlCharacters()): \(lease.reason.sentence)")
            }
            if !quiet { output.write(TextReport.render(self)) }
        }
    }

    static func metrics(_ report: RunReport?, exitCode: Int32, now: Double, duration: Double, metricsFile: String) -> String {
        MetricsFile.render(report: report, exitCode: exitCode, now: now, duration: duration,
                           lastSuccess: MetricsFile.lastSuccess(in: metricsFile))
    }
}

extension AuditReport: ModeReport {
    var exitCode: Int32 { exitStatus.rawValue }

    func write(format: ReportFormat, destination: LogDestination, quiet: Bool, logger: Logger, output: StandardOutput) {
        switch (format, destination) {
        case (.json, _):
            output.write(AuditJSONReport.render(self))
        case (.text, .journal):
            // Every 5 minutes: the summary, and an error entry per
            // unprotected disk; protected disks only with --verbose.
            logger.info("\(AuditTextReport.hostLine(host))")
            for guest in guests {
                for disk in guest.disks {
                    let protection = disk.finding.protection
                    logger.log(level: protection.isProtected ? .debug : .error,
                               "guest \(guest.name.escapingControlCharacters()): \(AuditTextReport.diskLine(disk))",
                               metadata: ["protection": "\(protection.rawValue)"])
                }
            }
            logger.info("\(AuditTextReport.summaryLine(self))")
        case (.text, _):
            if !quiet {
                output.write(AuditTextReport.render(self))
            } else {
                for guest in guests {
                    for disk in guest.disks where !disk.finding.protection.isProtected {
                        logger.error("guest \(guest.name.escapingControlCharacters()): \(AuditTextReport.diskLine(disk))")
                    }
                }
            }
        }
    }

    static func metrics(_ report: AuditReport?, exitCode: Int32, now: Double, duration: Double, metricsFile: String) -> String {
        MetricsFile.renderAudit(report: report, exitCode: exitCode, now: now)
    }
}
