// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Sanlock

/// Everything one run found, decided and did.
public struct RunReport: Sendable {
    public var mode: RunConfiguration.Mode
    /// The signal that stopped the deletions early, if one did.
    public var interruptedBy: Int32?
    public var leaseDirectory: String
    var thisHostID: UInt64?
    public var daemon: SanlockView.Availability
    public var leases: [LeaseReport]
    /// Retirement: entries outside the retired hosts' leases (not listed).
    var outOfScope: Int = 0
    public var retiredHosts: [UInt64] = []
    public var warnings: [RunWarning]
    var startedAt: Date
    public var duration: Double

    var summary: Summary { Summary(leases) }

    /// 0 when the run completed (leases kept because they are in use are not
    /// failures), 2 when some deletion failed.
    public var exitStatus: ExitStatus { summary.failed > 0 ? .deletionsFailed : .success }

    /// The process exit code: `exitStatus`, or 128 + the signal number when a
    /// signal cut the run short, as shells report it.
    public var exitCode: Int32 { interruptedBy.map(ExitStatus.interrupted(by:)) ?? exitStatus.rawValue }
}

/// One directory entry's line in the report.
public struct LeaseReport: Sendable {
    public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
        case deleted
        case kept
        case wouldDelete = "would-delete"
        case failed
    }

    public let entry: LeaseEntry
    public let verdict: Verdict
    public let action: Action
    /// The final reason: the decision's, or sanlock's when it refused.
    public let reason: Reason
    /// The guest disk behind the lease, when a status file or definition
    /// names it.
    let guestUse: GuestIndex.Use?
    /// A lease name no known disk maps to.
    let unknownDisk: Bool
    /// The name the owner host (`ownerHostID`) joined the lockspace with, from
    /// its delta lease in the lockspace file.
    var ownerHostName: String?
    /// sanlock's liveness of the owner host; nil without a daemon, or when
    /// sanlock could not tell.
    var ownerHostState: HostState?

    public init(entry: LeaseEntry, verdict: Verdict, outcome: RemovalOutcome?, mode: RunConfiguration.Mode,
                guestUse: GuestIndex.Use? = nil, unknownDisk: Bool = false) {
        self.entry = entry
        self.verdict = verdict
        self.guestUse = guestUse
        self.unknownDisk = unknownDisk
        switch (verdict.disposition, mode, outcome) {
        case (.keep, _, _):
            (action, reason) = (.kept, verdict.reason)
        case (.delete, .dryRun, _), (.delete, .audit, _):
            (action, reason) = (.wouldDelete, verdict.reason)
        case (.delete, .clean, .deleted?):
            (action, reason) = (.deleted, verdict.reason)
        case (.delete, .clean, .kept(let refusal)?):
            (action, reason) = (.kept, refusal)
        case (.delete, .clean, .failed(let failure)?):
            (action, reason) = (.failed, .removal(failure))
        case (.delete, .clean, nil):
            (action, reason) = (.failed, verdict.reason)
        }
    }

    /// The host the line is about: the reason's, else the lease's last owner.
    var ownerHostID: UInt64? {
        if let host = reason.hostID { return host }
        if let state = entry.leaseState, state.ownerID != 0 { return state.ownerID }
        return nil
    }

    var sizeBytes: Int64 { entry.status?.size ?? 0 }
}

/// Counts for the summary line, JSON and metrics.
struct Summary: Sendable, Hashable {
    var entries = 0
    var deleted = 0
    var wouldDelete = 0
    public var kept = 0
    public var failed = 0
    var bytesReclaimed: Int64 = 0
    var bytesReclaimable: Int64 = 0
    var byReason: [String: Int] = [:]

    init(_ leases: [LeaseReport]) {
        entries = leases.count
        // Sizes come from the directory: sparse files can claim up to 2^63
        // bytes each, so the sums saturate instead of overflowing.
        func adding(_ total: Int64, _ size: Int64) -> Int64 {
            let (sum, overflow) = total.addingReportingOverflow(max(0, size))
            return overflow ? .max : sum
        }
        for lease in leases {
            byReason[lease.reason.code, default: 0] += 1
            switch lease.action {
            case .deleted:
                deleted += 1
                bytesReclaimed = adding(bytesReclaimed, lease.sizeBytes)
            case .wouldDelete:
                wouldDelete += 1
                bytesReclaimable = adding(bytesReclaimable, lease.sizeBytes)
            case .kept: kept += 1
            case .failed: failed += 1
            }
        }
    }
}

extension LeaseReport {
    /// One report line per entry; retirement leaves out (and counts) the
    /// entries of hosts it does not purge.
    static func lines(
        entries: [LeaseEntry], verdicts: [Verdict], outcomes: [RemovalOutcome?], mode: RunConfiguration.Mode,
        guests: GuestIndex, hostNames: [UInt64: String] = [:], hosts: [UInt64: SanlockHost]? = nil
    ) -> (lines: [LeaseReport], outOfScope: Int) {
        var lines: [LeaseReport] = []
        var outOfScope = 0
        for index in entries.indices {
            if verdicts[index].reason == .rule(.notRetiredHost) {
                outOfScope += 1
                continue
            }
            // Only files that are (or were meant to be) leases map to disks.
            let entry = entries[index]
            let use = entry.kind.isLeaseFile ? entry.name.string.flatMap(guests.use(of:)) : nil
            var line = LeaseReport(
                entry: entry, verdict: verdicts[index], outcome: outcomes[index], mode: mode,
                guestUse: use, unknownDisk: entry.kind.isLeaseFile && use == nil)
            // Who the host behind a host id is: its name, and whether it lives.
            if let owner = line.ownerHostID {
                line.ownerHostName = hostNames[owner]
                line.ownerHostState = hosts?[owner]?.state
            }
            lines.append(line)
        }
        return (lines, outOfScope)
    }
}
