// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sanlock
import SystemCalls

/// `--audit`: proves, for every guest libvirt runs or keeps paused here, that
/// each disk is protected by its lease. Changes nothing. The site (as for a
/// cleaning run) → a reading (`AuditReading.take`: the daemon's tokens, the
/// guests, the file at each lease path) → the judgement of each disk
/// (`Snapshot.assemble`, pure) → readings settled → the report model. This
/// is the only place that wires them.
public struct Audit: Sendable {
    public let configuration: RunConfiguration
    public let logger: Logger
    /// How long to wait before reading again a guest that looked unprotected
    /// (see `run`).
    var settleDelay: Double = 0.5
    /// Readings at most (see `run`).
    static let maximumReadings = 4

    public init(configuration: RunConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Throws when the audit cannot know: no daemon to ask, a status file
    /// that cannot be read.
    public func run(control: RunControl = RunControl()) throws(JanitorError) -> AuditReport {
        let started = Date()
        let clock = ContinuousClock.now
        var findings = RunFindings(cleaning: false)
        let site = try Site.open(configuration, control: control, logger: logger, findings: &findings)
        let facts = AuditSiteFacts(site: site, configuration: configuration)
        func reading() throws(JanitorError) -> Snapshot {
            let reading = try AuditReading.take(at: site, configuration)
            logger.debug("audit reading", metadata: [
                "guests": "\(reading.guests.count)", "tokens": "\(reading.status.tokens.count)",
                "host_id": "\(site.thisHostID.map(String.init) ?? "none")",
            ])
            return Snapshot.assemble(reading, facts)
        }
        var snapshot = try reading()
        // libvirt changes a guest's leases and its status file one after the
        // other (pause: release, then write "paused"; resume: acquire, then
        // write "running"), and the audit reads the two at different
        // instants. A disk that looks unprotected is read again once libvirt
        // had time to finish, and reported unprotected only when every
        // reading that saw it agrees (`Snapshot.settled`); while this host
        // keeps acquiring its lease between readings (a guest pausing and
        // resuming), it is read again, up to `maximumReadings` in all.
        var readings = 1
        while readings < Self.maximumReadings, !snapshot.unsettled(afterFirst: readings == 1).isEmpty {
            logger.debug("a disk looks unprotected: reading everything again", metadata: [
                "delay_s": "\(settleDelay)", "disks": "\(snapshot.unsettled(afterFirst: readings == 1).count)",
                "reading": "\(readings + 1)",
            ])
            Syscall.sleep(seconds: settleDelay)
            snapshot = Snapshot.settled(first: snapshot, second: try reading(), delay: settleDelay)
            readings += 1
        }
        for guest in snapshot.guests {
            for disk in guest.disks {
                logger.debug("\(guest.name.escapingControlCharacters()) \(disk.target?.escapingControlCharacters() ?? "-")",
                             metadata: ["protection": "\(disk.finding.protection.rawValue)"])
            }
        }
        return AuditReport(
            leaseDirectory: site.directory.path, host: snapshot.host, guests: snapshot.guests,
            unaccountedLeases: snapshot.unaccounted, warnings: findings.warnings + snapshot.warnings,
            startedAt: started, duration: (ContinuousClock.now - clock).seconds)
    }
}
