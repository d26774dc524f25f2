import Sanlock

/// What the janitor decided about one directory entry.
public struct Verdict: Sendable, Hashable {
    enum Disposition: String, Sendable, Hashable {
        case delete
        case keep
    }

    var disposition: Disposition
    public var reason: Reason

    static func keep(_ reason: Reason) -> Verdict { Verdict(disposition: .keep, reason: reason) }
    static func keep(_ kind: EntryKind) -> Verdict { .keep(.entry(kind)) }
    static func keep(_ rule: Rule) -> Verdict { .keep(.rule(rule)) }
    /// Only the rules nominate a lease for deletion.
    static func delete(_ rule: Rule) -> Verdict { Verdict(disposition: .delete, reason: .rule(rule)) }
}

/// Why an entry was kept, deleted or not deleted, in one of three senses:
/// what the entry is, what the keep-or-delete rules concluded, or how its
/// removal went. Each has a stable, machine-readable `code` (the JSON
/// `reason`); the report renders the human sentence.
public enum Reason: Sendable, Hashable {
    /// What the entry is settles it: not a lease the janitor acts on (any
    /// kind but `autoLease`).
    case entry(EntryKind)
    /// What the rules concluded from the facts about a lease.
    case rule(Rule)
    /// A removal the rules asked for did not happen.
    case removal(RemovalFailure)

    /// Stable identifier for scripts and JSON.
    var code: String {
        switch self {
        case .entry(let kind): kind.reasonCode
        case .rule(let rule): rule.code
        case .removal(let failure): failure.code
        }
    }

    /// The host a reason is about, when there is one and it is known.
    public var hostID: UInt64? {
        switch self {
        case .entry(let kind): kind.reasonHostID
        case .rule(let rule): rule.hostID
        case .removal: nil
        }
    }

    /// The sanlock or errno code behind the reason, when one exists.
    var errorCode: Int32? {
        switch self {
        case .entry(let kind): kind.reasonErrorCode
        case .rule(let rule): rule.errorCode
        case .removal(let failure): failure.errorCode
        }
    }
}

/// What an entry is, as the reason it is kept (`Reason.entry`): every kind
/// but an auto lease, which only the rules judge.
extension EntryKind {
    var reasonCode: String {
        switch self {
        case .lockspace: "lockspace"
        case .directory: "directory"
        case .symlink: "symlink"
        case .special: "special-file"
        case .foreignFile: "foreign-file"
        case .uninitialisedLease: "uninitialised"
        case .clearedLease: "cleared"
        case .corruptLease(let corruption):
            switch corruption {
            case .badChecksum: "corrupt-checksum"
            case .truncated: "corrupt-truncated"
            case .wrongLockspace, .wrongResourceName: "corrupt-names"
            case .unsupportedVersion: "corrupt-version"
            case .notALease: "not-a-lease"
            case .outOfRange: "corrupt-out-of-range"
            }
        case .unreadable: "unreadable"
        case .vanished: "vanished"
        // Never a reason of its own (Reason.describing).
        case .autoLease: "never-acquired"
        }
    }

    /// For an invalidated lease: the host whose janitor invalidated it.
    var reasonHostID: UInt64? {
        if case .clearedLease(let cleared) = self { return cleared.invalidatedBy }
        return nil
    }

    var reasonErrorCode: Int32? {
        // A condition the janitor found itself (replaced, ...) has no errno.
        if case .unreadable(let error) = self { return error.errno?.rawValue }
        return nil
    }
}

/// What the keep-or-delete rules (`Decision`) concluded about a lease: why it
/// is in use, or why nobody uses it.
public enum Rule: Sendable, Hashable {
    // Leases a guest on this host uses (status XML), whatever sanlock says.
    case usedByGuest(GuestIndex.Use)
    /// The status file says the guest is active but its process is gone:
    /// kept until libvirt (or an admin) cleans the status file up.
    case staleGuestStatus(GuestIndex.Use)
    /// A lease no known disk maps to, while active guests use pool volumes
    /// whose leases cannot be named.
    case unmappedVolumeGuests([String])

    // Leases in use.
    case heldByThisHost
    /// Held by a live host: nil when sanlock refused our acquire for it but
    /// the leader, read again, no longer names the owner.
    case heldByLiveHost(UInt64?, HostState)
    /// Held, and sanlock's liveness of the owner is not known (no daemon, or
    /// the host does not appear in the lockspace).
    case heldByHostOfUnknownState(UInt64)
    /// The owner stopped renewing; sanlock declares it dead 8 × io_timeout +
    /// 60 s after its last renewal, and the lease can be taken then. The
    /// owner is nil when the leader, read again, no longer names it.
    case ownerHostFailing(UInt64?, ioTimeout: UInt32)
    case heldShared(hosts: [UInt64])
    /// A lease file with other names (hard links): never written or removed.
    case hardLinked(links: UInt64)
    /// Free, but last held by a live host: maybe a guest paused there.
    case lastHeldByLiveHost(UInt64, HostState)
    case lastHeldByFailingHost(UInt64)
    case lastHeldByHostOfUnknownState(UInt64)
    /// Changed more recently than the minimum age (`age` is negative for a
    /// modification time in the future).
    case tooRecent(age: Double, minimumAge: Double)
    /// Invalidated by another host's janitor (or by an unknown tool) more
    /// recently than the minimum age.
    case clearedRecently(invalidatedBy: UInt64?, age: Double, minimumAge: Double)
    /// Retirement: not a lease of a retired host.
    case notRetiredHost

    // Leases nobody uses.
    case neverAcquired
    case released(lastOwner: UInt64)
    /// Free, last held by a host that is dead or has left the lockspace.
    case lastHolderGone(UInt64, HostState)
    /// Past the minimum age: an abandoned half-made or invalidated lease.
    case abandonedUninitialised
    case abandonedCleared(invalidatedBy: UInt64?)
    /// Invalidated by this host's janitor, which was stopped before it could
    /// unlink it: removed whatever its age.
    case leftInvalidatedByThisHost
    /// sanlock says the owner is dead (or left the lockspace): its leases
    /// can be taken.
    case ownerHostDead(UInt64, HostState)
    /// Held by an earlier incarnation of a host that has since rejoined with
    /// a new generation: the holder died with that incarnation.
    case ownerHostRestarted(UInt64, heldGeneration: UInt64, currentGeneration: UInt64)
    case sharedHoldersGone(hosts: [UInt64])

    /// Whether a `delete` for this rule waits until the file is older than
    /// the minimum age. Only this host's own leftovers do not: nothing can
    /// be making them, and while they exist their guest cannot start.
    var waitsForMinimumAge: Bool {
        if case .leftInvalidatedByThisHost = self { return false }
        return true
    }

    var code: String {
        switch self {
        case .usedByGuest: "used-by-guest"
        case .staleGuestStatus: "stale-guest-status"
        case .unmappedVolumeGuests: "unmapped-volume"
        case .lastHeldByLiveHost: "last-held-by-live-host"
        case .lastHeldByFailingHost: "last-held-by-failing-host"
        case .lastHeldByHostOfUnknownState: "last-held-by-host-unknown-state"
        case .tooRecent: "too-recent"
        case .clearedRecently: "cleared-too-recent"
        case .notRetiredHost: "not-retired-host"
        case .lastHolderGone: "last-holder-gone"
        case .abandonedUninitialised: "uninitialised-abandoned"
        case .abandonedCleared: "cleared-abandoned"
        case .leftInvalidatedByThisHost: "cleared-by-this-host"
        case .heldByThisHost: "held-by-this-host"
        case .heldByLiveHost: "held-by-live-host"
        case .heldByHostOfUnknownState: "held-by-host-unknown-state"
        case .ownerHostFailing: "owner-host-failing"
        case .heldShared: "held-shared"
        case .hardLinked: "hard-linked"
        case .neverAcquired: "never-acquired"
        case .released: "released"
        case .ownerHostDead: "owner-host-dead"
        case .ownerHostRestarted: "owner-host-restarted"
        case .sharedHoldersGone: "shared-holders-gone"
        }
    }

    var hostID: UInt64? {
        switch self {
        case .heldByLiveHost(let host, _), .ownerHostFailing(let host, _):
            host
        case .heldByHostOfUnknownState(let host), .released(let host), .ownerHostDead(let host, _),
             .ownerHostRestarted(let host, _, _), .lastHeldByLiveHost(let host, _), .lastHeldByFailingHost(let host),
             .lastHeldByHostOfUnknownState(let host), .lastHolderGone(let host, _):
            host
        case .clearedRecently(let host, _, _), .abandonedCleared(let host):
            host
        case .heldShared(let hosts), .sharedHoldersGone(let hosts):
            hosts.first
        default:
            nil
        }
    }

    var errorCode: Int32? { nil }
}

extension Reason {
    /// What an entry is, as the reason it was kept: its nature, or, for an
    /// auto lease (which has none of its own), never having been used.
    static func describing(_ kind: EntryKind) -> Reason {
        if case .autoLease = kind { return .rule(.neverAcquired) }
        return .entry(kind)
    }
}
