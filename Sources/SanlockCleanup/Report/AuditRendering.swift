// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Sanlock

/// The audit for people: one line per disk, grouped by guest.
public enum AuditTextReport {
    public static func render(_ report: AuditReport) -> String {
        var lines: [String] = []
        lines.append("audit of \(report.leaseDirectory.escapingControlCharacters()): \(hostLine(report.host))")
        for guest in report.guests {
            let pid = guest.pid.map { ", pid \($0)" } ?? ""
            let reason = (guest.stateReason.map { ": " + $0.escapingControlCharacters() } ?? "")
                + (guest.asyncJob.map { ", " + $0.escapingControlCharacters() } ?? "")
            lines.append("guest \(guest.name.escapingControlCharacters()) (\(guest.state.rawValue)\(reason)\(pid))")
            if guest.disks.isEmpty { lines.append("  no disk with a lease") }
            for disk in guest.disks { lines.append("  " + diskLine(disk)) }
        }
        if !report.unaccountedLeases.isEmpty {
            lines.append("leases this host holds that no guest accounts for:")
            for token in report.unaccountedLeases {
                let mode = token.shared ? "shared" : "exclusive, lver \(token.lver)"
                lines.append("  pid \(token.pid) holds \(token.name.escapingControlCharacters()) (\(mode)) at \(token.path.escapingControlCharacters())")
            }
        }
        lines.append(summaryLine(report))
        return lines.joined(separator: "\n") + "\n"
    }

    public static func hostLine(_ host: AuditReport.Host) -> String {
        var line: String
        if host.joined, let id = host.hostID {
            line = "this host is \(id)"
            if let name = host.hostName, !name.isEmpty { line += " (\(name.escapingControlCharacters()))" }
            line += " in \(host.lockspace)"
            if let generation = host.generation { line += ", generation \(generation)" }
            if let configured = host.configuredHostID, configured != id {
                line += "; but host_id in the configuration is \(configured): CONFLICT"
            }
        } else if let pending = host.pending {
            line = "this host is \(pending == .joining ? "still joining" : "leaving") \(host.lockspace), not joined: "
                + "no disk of a guest here can be protected"
        } else {
            line = "this host has not joined \(host.lockspace): no disk of a guest here can be protected"
        }
        if let conflict = host.identityConflict {
            line += "; CONFLICT: host id \(conflict.hostID) is \(conflict.lockspaceName.escapingControlCharacters()) in the lockspace file, "
                + "not this host's daemon (\(conflict.thisHostName.escapingControlCharacters())): another host has joined with "
                + "this host's host_id, or this host's daemon restarted under a new name and has not joined again"
        }
        return line
    }

    public static func diskLine(_ disk: AuditReport.Disk) -> String {
        let finding = disk.finding
        var value = finding.protection.rawValue
        if finding.protection == .heldByOtherHost, let host = finding.holderHostID {
            value += " \(host)" + holderDescription(disk)
        } else if finding.protection == .heldByOtherProcess, let pid = finding.holderPID {
            value += " pid \(pid)"
        }
        let target = disk.target.map { $0.escapingControlCharacters() + " " } ?? ""
        let source = disk.sourcePath?.escapingControlCharacters() ?? "(no source)"
        let lease = disk.lease.map { ", \(disk.mode.rawValue) lease \($0)" } ?? ""
        return "\(target)\(source)\(lease): \(value): \(finding.detail.escapingControlCharacters())"
    }

    private static func holderDescription(_ disk: AuditReport.Disk) -> String {
        let parts = [disk.holderHostName?.escapingControlCharacters(), disk.holderHostState?.rawValue].compactMap { $0 }
        return parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
    }

    public static func summaryLine(_ report: AuditReport) -> String {
        let counts = report.countsByProtection.filter { $0.1 > 0 }.map { "\($0.1) \($0.0.rawValue)" }
        let disks = report.disks.count
        var line = "\(disks) disk\(disks == 1 ? "" : "s") of \(report.guests.count) guest\(report.guests.count == 1 ? "" : "s")"
        if !counts.isEmpty { line += ": " + counts.joined(separator: ", ") }
        line += report.unprotectedCount == 0 ? "; all protected" : "; \(report.unprotectedCount) UNPROTECTED"
        if report.host.conflicts { line += "; this host's identity in the lockspace is in CONFLICT (see the host line)" }
        return line
    }
}

/// The audit for machines (schema: `$defs/audit` of the report schema).
public enum AuditJSONReport {
    struct Document: Encodable {
        var schemaVersion = JSONReport.schemaVersion
        var mode = "audit"
        var leaseDirectory: String
        var startedAt: String?
        var durationSeconds: Double
        var host: HostObject
        var guests: [GuestObject]
        var summary: SummaryObject
        var warnings: [String]
    }

    // Absent values are written as null (NullWhenAbsent): a reader sees
    // every field.
    struct HostObject: Encodable {
        var lockspace: String
        var joined: Bool
        @JSONReport.NullWhenAbsent var hostID: UInt64?
        @JSONReport.NullWhenAbsent var hostName: String?
        @JSONReport.NullWhenAbsent var configuredHostID: UInt64?
        @JSONReport.NullWhenAbsent var hostIDMatches: Bool?
        @JSONReport.NullWhenAbsent var generation: UInt64?
        var lockspaceState: String
        @JSONReport.NullWhenAbsent var identityConflict: ConflictObject?
        var unaccountedLeases: [TokenObject]
    }

    struct ConflictObject: Encodable {
        var hostID: UInt64
        var lockspaceName: String
        var thisHostName: String
    }

    struct TokenObject: Encodable {
        var pid: Int32
        var lease: String
        var path: String
        var mode: LeaseMode
        @JSONReport.NullWhenAbsent var lver: UInt64?
    }

    struct GuestObject: Encodable {
        var name: String
        var state: String
        @JSONReport.NullWhenAbsent var stateReason: String?
        @JSONReport.NullWhenAbsent var asyncJob: String?
        @JSONReport.NullWhenAbsent var pid: Int32?
        var disks: [DiskObject]
    }

    struct DiskObject: Encodable {
        @JSONReport.NullWhenAbsent var target: String?
        @JSONReport.NullWhenAbsent var path: String?
        @JSONReport.NullWhenAbsent var lease: String?
        @JSONReport.NullWhenAbsent var leasePath: String?
        var mode: LeaseMode
        var protection: Protection
        @JSONReport.NullWhenAbsent var holderPID: Int32?
        @JSONReport.NullWhenAbsent var holderHostID: UInt64?
        @JSONReport.NullWhenAbsent var holderHostName: String?
        @JSONReport.NullWhenAbsent var holderHostState: String?
        var detail: String

        init(_ disk: AuditReport.Disk) {
            target = disk.target
            path = disk.sourcePath
            lease = disk.lease
            leasePath = disk.leasePath
            mode = disk.mode
            protection = disk.finding.protection
            holderPID = disk.finding.holderPID
            holderHostID = disk.finding.holderHostID
            holderHostName = disk.holderHostName
            holderHostState = disk.holderHostState?.rawValue
            detail = disk.finding.detail
        }
    }

    struct SummaryObject: Encodable {
        var guests: Int
        var disks: Int
        var unprotected: Int
        var protection: [String: Int]
    }

    public static func render(_ report: AuditReport) -> String {
        let document = Document(
            leaseDirectory: report.leaseDirectory,
            startedAt: JSONReport.timestamp(report.startedAt),
            durationSeconds: report.duration,
            host: HostObject(
                lockspace: report.host.lockspace, joined: report.host.joined, hostID: report.host.hostID,
                hostName: report.host.hostName, configuredHostID: report.host.configuredHostID,
                hostIDMatches: report.host.hostIDMatches, generation: report.host.generation,
                lockspaceState: report.host.joined ? "joined" : report.host.pending.map { $0.rawValue } ?? "not-joined",
                identityConflict: report.host.identityConflict.map {
                    ConflictObject(hostID: $0.hostID, lockspaceName: $0.lockspaceName, thisHostName: $0.thisHostName)
                },
                unaccountedLeases: report.unaccountedLeases.map {
                    TokenObject(pid: $0.pid, lease: $0.name, path: $0.path, mode: $0.shared ? .shared : .exclusive,
                                lver: $0.shared ? nil : $0.lver)
                }),
            guests: report.guests.map { guest in
                GuestObject(name: guest.name, state: guest.state.rawValue, stateReason: guest.stateReason,
                            asyncJob: guest.asyncJob, pid: guest.pid,
                            disks: guest.disks.map(DiskObject.init))
            },
            summary: SummaryObject(
                guests: report.guests.count, disks: report.disks.count, unprotected: report.unprotectedCount,
                protection: Dictionary(uniqueKeysWithValues: report.countsByProtection.map { ($0.0.rawValue, $0.1) })),
            warnings: report.warnings.map(\.description))
        return JSONReport.encodePretty(document)
    }
}

extension ProtectionFinding {
    /// What was seen, in words (no trailing period), with the note of a
    /// settled reading.
    var detail: String {
        guard let settled else { return evidence.sentence }
        let state = settled.earlierState.map { ", when the guest was \($0.rawValue)" } ?? ""
        return evidence.sentence + " (as read \(settled.delay.formatted) s earlier\(state); "
            + "\(settled.laterProtection.rawValue) in the reading after it: a transition, not reported)"
    }
}

extension ProtectionEvidence {
    public var sentence: String {
        switch self {
        case .volumeUnnamed:
            return "the lease of a volume disk cannot be named from the status XML"
        case .heldByProcess(let pid, let shared):
            return "process \(pid) of this host holds it\(shared ? " shared" : ""), not the guest's"
        case .noFile:
            return "no lease file at the path"
        case .invalidFile(let kind):
            return "the file at the lease path: \(Reason.describing(kind).sentence)"
        case .migrationSource(let host):
            return "the destination of a live migration: host \(host), where the guest still runs, holds it until it resumes here"
        case .migrationDestination(let host):
            return "the source of a live migration: host \(host), where the guest runs now, holds it; libvirt ends the guest here"
        case .otherHostHolds(let host, let paused, let claimsThisHostsID):
            let whose = claimsThisHostsID ? " (this host's id, in the lockspace another host's)" : ""
            return paused
                ? "host \(host)\(whose) holds it: the guest cannot resume here, and its disk may be in use there"
                : "host \(host)\(whose) holds it while the guest runs here"
        case .releasedSharedElsewhere(let hosts):
            let list = hosts.map(String.init).joined(separator: ", ")
            return "released on pause; host \(list) hold\(hosts.count == 1 ? "s" : "") it shared, which a shareable disk allows"
        case .released(let lapsed?):
            return "released on pause; \(lapsed.lapsedSentence), so the guest can resume"
        case .released(nil):
            return "released on pause; the file is a valid lease nobody holds"
        case .notHeld(let lapsed?):
            return "the guest runs, but its process holds no lease on this disk; \(lapsed.lapsedSentence)"
        case .notHeld(nil):
            return "the guest runs, but its process holds no lease on this disk"
        case .wrongMode(let heldShared, let needed):
            return "the guest's process holds it \(heldShared ? "shared" : "exclusive"), not \(needed.rawValue)"
        case .heldFileRemoved:
            return "the guest holds a lease whose file was removed: a new file at the path can be taken by any host"
        case .heldFileInvalid(let kind):
            let what = kind == .vanished ? "no lease file at the path" : "the file at the lease path: \(Reason.describing(kind).sentence)"
            return "the guest holds the lease, but \(what)"
        case .heldFileReplaced(.modeBlocks(let generation)):
            return "the lease the guest holds is no longer the file at the path: the file's mode blocks do not name this host "
                + "at generation \(generation.map(String.init) ?? "?")"
        case .heldFileReplaced(.leader(let owner, let ownerGeneration, let lver, let held, let heldLVer, let host, let generation)):
            return "the lease the guest holds is no longer the file at the path: the file's leader says host \(owner) "
                + "generation \(ownerGeneration) lver \(lver)\(held ? "" : " (free)"), the held lease is lver \(heldLVer) of host "
                + "\(host.map(String.init) ?? "?") generation \(generation.map(String.init) ?? "?")"
        case .held(let shared, let lver):
            return shared ? "held shared by the guest's process" : "held by the guest's process (lver \(lver))"
        }
    }
}

extension Holder {
    /// Whose hold the leader still records, when it does not stand.
    var lapsedSentence: String {
        switch self {
        case .thisHostsEarlierIncarnation(let generation):
            "the leader still names this host at generation \(generation), an earlier incarnation of its sanlock daemon, "
                + "which sanlock lets any host take over"
        case .restartedHost(let host, let held, let current):
            "the leader names host \(host) at generation \(held); that host has restarted since (generation \(current)), "
                + "so any host may take it"
        case .goneHost(let host, let state):
            "the leader names host \(host), which sanlock reports \(state.rawValue), so any host may take it"
        case .thisHost, .otherHost:
            "the leader names a holder whose hold stands"
        }
    }
}
