// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sanlock

/// One run of the janitor: inventory → decision → removal → report, each
/// stage in its own folder. This is the only place that wires them.
public struct Janitor: Sendable {
    public let configuration: RunConfiguration
    public let logger: Logger
    public let control: RunControl

    public init(configuration: RunConfiguration, logger: Logger, control: RunControl = RunControl()) {
        self.configuration = configuration
        self.logger = logger
        self.control = control
    }

    /// Runs the janitor. Throws only for fatal conditions, before anything
    /// was deleted: when it cannot be sure, it deletes nothing.
    public func run(progress: (@Sendable (Int, Int) -> Void)? = nil) throws(JanitorError) -> RunReport {
        let started = Date()
        let clock = ContinuousClock.now
        let cleaning = configuration.mode == .clean
        var findings = RunFindings(cleaning: cleaning)

        // Inventory.
        let site = try Site.open(configuration, control: control, logger: logger, findings: &findings)
        let inventory = try Inventory.gather(
            at: site, configuration, control: control, logger: logger, findings: &findings)
        try RetirementCheck.check(
            retiredHosts: configuration.policy.retiredHosts, hosts: inventory.hosts, thisHostID: site.thisHostID,
            findings: &findings)

        // Decision.
        control.enter(.deciding)
        let context = DecisionContext(
            lockspace: LockspaceFacts(site: site, hosts: inventory.hosts),
            guests: GuestIndex(inventory.guests), policy: configuration.policy, now: Date().timeIntervalSince1970)
        let verdicts = Decision.verdicts(for: inventory.entries, in: context)
        for (entry, verdict) in zip(inventory.entries, verdicts) {
            logger.debug("\(entry.name.escaped): \(verdict.disposition.rawValue): \(verdict.reason.sentence)", metadata: [
                "verdict": "\(verdict.disposition.rawValue)", "reason": "\(verdict.reason.code)",
            ])
        }

        // Removal.
        var outcomes = [RemovalOutcome?](repeating: nil, count: inventory.entries.count)
        if cleaning {
            control.enter(.removingLeases)
            let candidates = verdicts.indices.filter { verdicts[$0].disposition == .delete }
            let thisHost = site.thisHostID.map { id in (id: id, generation: context.lockspace.thisGeneration) }
            let removal = RemovalRun(
                remover: LeaseRemover(
                    directory: site.directory, hosts: inventory.hosts, thisHost: thisHost, classifier: site.classifier),
                jobs: configuration.jobs(daemonWorkers: site.sanlock.workerThreads), control: control,
                onOutcome: { [logger] entry, outcome in
                    logger.debug("\(entry.name.escaped): \(outcome.summary)", metadata: outcome.metadata)
                })
            let results = removal.remove(
                candidates.map { (inventory.entries[$0], inventory.files[$0]) }, progress: progress)
            for (index, outcome) in zip(candidates, results) { outcomes[index] = outcome }
        }
        withExtendedLifetime(site.runLock) {}

        // Report.
        control.enter(.reporting)
        let (leases, outOfScope) = LeaseReport.lines(
            entries: inventory.entries, verdicts: verdicts, outcomes: outcomes, mode: configuration.mode,
            guests: context.guests, hostNames: site.hostNames, hosts: inventory.hosts)
        return RunReport(
            mode: configuration.mode,
            interruptedBy: control.signalNumber,
            leaseDirectory: site.directory.path,
            thisHostID: site.thisHostID,
            daemon: site.sanlock.availability,
            leases: leases,
            outOfScope: outOfScope,
            retiredHosts: configuration.policy.retiredHosts.sorted(),
            warnings: findings.warnings,
            startedAt: started,
            duration: (ContinuousClock.now - clock).seconds)
    }
}
