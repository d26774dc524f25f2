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
        var lockspace: String
        var joined: Bool
        /// The id the daemon joined with; nil when not joined.
        public var hostID: UInt64?
        /// `host_id` in the lock manager's configuration.
        public var configuredHostID: UInt64?
        var generation: UInt64?
        /// The name this host joined with (its delta lease).
        var hostName: String?
        /// Not joined yet, or no longer: the daemon is adding (or removing)
        /// the lockspace.
        var pending: JoinedLockspace.Phase?
        /// The lockspace gives this host's id to another name.
        var identityConflict: IdentityConflict?

        /// Whether the joined id is the configured one; nil when either is unknown.
        var hostIDMatches: Bool? {
            guard let hostID, let configuredHostID else { return nil }
            return hostID == configuredHostID
        }

        /// What this host is, by sanlock, the configuration and the
        /// lockspace file, does not add up: no disk here can be vouched for.
        var conflicts: Bool { identityConflict != nil || hostIDMatches == false }
    }

    public struct Disk: Sendable, Hashable {
        var target: String?
        /// The disk's source as the XML gives it (a path, or pool/volume).
        var sourcePath: String?
        public var lease: String?
        var leasePath: String?
        public var mode: LeaseMode
        public var finding: ProtectionFinding
        var holderHostName: String?
        var holderHostState: HostState?
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
        var stateReason: String?
        /// `<job async=...>`: `migration in` on a live migration's destination.
        var asyncJob: String?
        public var pid: Int32?
        public var disks: [Disk]
    }

    public var leaseDirectory: String
    public var host: Host
    public var guests: [Guest]
    /// Held tokens of this host in libvirt's lockspace that no active guest's
    /// process accounts for.
    var unaccountedLeases: [DaemonStatus.Token]
    public var warnings: [RunWarning]
    var startedAt: Date
    public var duration: Double

    public var disks: [Disk] { guests.flatMap(\.disks) }
    var unprotectedCount: Int { disks.count { !$0.finding.protection.isProtected } }

    /// Disks per protection value, every value present (0 when none).
    var countsByProtection: [(Protection, Int)] {
        Protection.allCases.map { value in (value, disks.count { $0.finding.protection == value }) }
    }

    /// 4 when a disk is not protected, or when this host's identity does
    /// not add up (`Host.conflicts`): the audit gives no all-clear then.
    public var exitStatus: ExitStatus { unprotectedCount > 0 || host.conflicts ? .unprotected : .success }
}
