// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Sanlock

/// What `--audit` found: this host's standing in the lockspace, every
/// active guest's disks with their protection, and the leases this host
/// holds that no guest accounts for.
public struct AuditReport: Sendable {
    public struct Host: Sendable, Hashable {
        public var lockspace: String
        public var joined: Bool
        /// The id the daemon joined with; nil when not joined.
        public var hostID: UInt64?
        /// `host_id` in the lock manager's configuration.
        public var configuredHostID: UInt64?
        public var generation: UInt64?
        /// The name this host joined with (its delta lease).
        public var hostName: String?
        /// Not joined yet, or no longer: the daemon is adding (or removing)
        /// the lockspace.
        public var pending: JoinedLockspace.Phase?
        /// The lockspace gives this host's id to another name.
        public var identityConflict: IdentityConflict?

        /// Whether the joined id is the configured one; nil when either is unknown.
        public var hostIDMatches: Bool? {
            guard let hostID, let configuredHostID else { return nil }
            return hostID == configuredHostID
        }

        /// What this host is, by sanlock, the configuration and the
        /// lockspace file, does not add up: no disk here can be vouched for.
        public var conflicts: Bool { identityConflict != nil || hostIDMatches == false }
    }

    public struct Disk: Sendable, Hashable {
        public var target: String?
        /// The disk's source as the XML gives it (a path, or pool/volume).
        public var sourcePath: String?
        public var lease: String?
        public var leasePath: String?
        public var mode: LeaseMode
        public var finding: ProtectionFinding
        public var holderHostName: String?
        public var holderHostState: HostState?
        /// The lease file as this reading saw it (not reported): whether the
        /// lease moved between two readings.
        var observed: LeaseObservation?
    }

    /// A lease file's identity and version at one reading.
    struct LeaseObservation: Sendable, Hashable {
        var file: FileIdentity
        var lver: UInt64
        var ownerID: UInt64
    }

    public struct Guest: Sendable, Hashable {
        public var name: String
        public var state: GuestState
        /// `<domstatus reason=...>`: `migration` for both ends of a live
        /// migration while the guest is paused.
        public var stateReason: String?
        /// `<job async=...>`: `migration in` on a live migration's destination.
        public var asyncJob: String?
        public var pid: Int32?
        public var disks: [Disk]
    }

    public var leaseDirectory: String
    public var host: Host
    public var guests: [Guest]
    /// Held tokens of this host in libvirt's lockspace that no active guest's
    /// process accounts for.
    public var unaccountedLeases: [DaemonStatus.Token]
    public var warnings: [RunWarning]
    public var startedAt: Date
    public var duration: Double

    public var disks: [Disk] { guests.flatMap(\.disks) }
    public var unprotectedCount: Int { disks.count { !$0.finding.protection.isProtected } }

    /// Disks per protection value, every value present (0 when none).
    public var countsByProtection: [(Protection, Int)] {
        Protection.allCases.map { value in (value, disks.count { $0.finding.protection == value }) }
    }

    /// 4 when a disk is not protected, or when this host's identity does
    /// not add up (`Host.conflicts`): the audit gives no all-clear then.
    public var exitStatus: ExitStatus { unprotectedCount > 0 || host.conflicts ? .unprotected : .success }
}

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
