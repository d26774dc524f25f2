import ArgumentParser
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

extension VirtSanlockCleanup {
    /// `--audit`: the report of every active guest's disks; exit status 4
    /// when one is not protected.
    func audit(
        logger: Logger, destination: LogDestination, gate: OutputGate, output standardOutput: StandardOutput,
        reportFatal: @Sendable (JanitorError) -> Void
    ) throws {
        let report: AuditReport
        do throws(JanitorError) {
            report = try Audit(configuration: try runConfiguration(), logger: logger).run()
        } catch {
            guard gate.claim() else { waitForWatchdog() }
            reportFatal(error)
            throw ExitCode(error.exitCode)
        }
        guard gate.claim() else { waitForWatchdog() }

        for warning in report.warnings { logger.warning("\(warning)") }
        switch (output.format, destination) {
        case (.json, _):
            standardOutput.write(AuditJSONReport.render(report))
        case (.text, .journal):
            // Every 5 minutes: the summary, and an error entry per
            // unprotected disk; protected disks only with --verbose.
            logger.info("\(AuditTextReport.hostLine(report.host))")
            for guest in report.guests {
                for disk in guest.disks {
                    let protection = disk.finding.protection
                    logger.log(level: protection.isProtected ? .debug : .error,
                               "guest \(guest.name.escapingControlCharacters()): \(AuditTextReport.diskLine(disk))",
                               metadata: ["protection": "\(protection.rawValue)"])
                }
            }
            logger.info("\(AuditTextReport.summaryLine(report))")
        case (.text, _):
            if !output.quiet {
                standardOutput.write(AuditTextReport.render(report))
            } else {
                for guest in report.guests {
                    for disk in guest.disks where !disk.finding.protection.isProtected {
                        logger.error("guest \(guest.name.escapingControlCharacters()): \(AuditTextReport.diskLine(disk))")
                    }
                }
            }
        }
        standardOutput.flush()
        var exitCode = report.exitStatus.rawValue
        if let failure = standardOutput.failure, failure != EPIPE {
            logger.error("the audit report could not be written to stdout (\(Errno(rawValue: failure)))")
            if exitCode == 0 { exitCode = ExitStatus.reportNotWritten.rawValue }
        }
        writeAuditMetrics(report: report, exitCode: exitCode, logger: logger)
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    func writeAuditMetrics(report: AuditReport?, exitCode: Int32, logger: Logger) {
        guard let metricsFile = output.metricsFile else { return }
        do {
            try MetricsFile.write(MetricsFile.renderAudit(report: report, exitCode: exitCode, now: Date().timeIntervalSince1970),
                                  to: metricsFile)
        } catch {
            logger.error("cannot write metrics: \(error)")
        }
    }
}
