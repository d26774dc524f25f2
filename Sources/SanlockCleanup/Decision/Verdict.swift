import Sanlock

/// What the janitor decided about one directory entry.
public struct Verdict: Sendable, Hashable {
    public enum Disposition: String, Sendable, Hashable {
        case delete
        case keep
    }

    public var disposition: Disposition
    public var reason: Reason

    public static func keep(_ reason: Reason) -> Verdict { Verdict(disposition: .keep, reason: reason) }
    public static func delete(_ reason: Reason) -> Verdict { Verdict(disposition: .delete, reason: reason) }
}

/// Why an entry was kept, deleted or not deleted. Each case has a stable,
/// machine-readable `code` (the JSON `reason`); the report renders the
/// human sentence.
public enum Reason: Sendable, Hashable {
    // Entries that are not deletable leases, whatever their state.
    case lockspace
    case directory
    case symlink(target: String?)
    case specialFile(FileStatus.FileType)
    case foreignFile
    case uninitialised
    /// An invalidated lease, and the host whose janitor invalidated it when
    /// the leader tells.
    case cleared(invalidatedBy: UInt64?)
    /// A lease file with other names (hard links): never written or removed.
    case hardLinked(links: UInt64)
    case corrupt(Corruption)
    case unreadable(FileSystemError)
    case vanished

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
    case heldByLiveHost(UInt64, HostState)
    /// Held, and sanlock's liveness of the owner is not known (no daemon, or
    /// the host does not appear in the lockspace).
    case heldByHostOfUnknownState(UInt64)
    /// The owner stopped renewing; sanlock declares it dead 8 × io_timeout +
    /// 60 s after its last renewal, and the lease can be taken then.
    case ownerHostFailing(UInt64, ioTimeout: UInt32)
    case heldShared(hosts: [UInt64])
    case sanlockReadFailed(SanlockError)
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

    // What sanlock said when the janitor tried to take a lease to delete it.
    /// Acquired by someone else between the scan and our acquire.
    case usedDuringRun(scannedLVer: UInt64, lver: UInt64)
    /// An unacquirable file changed between the scan and its removal (libvirt
    /// finished making it, or someone rewrote it): looked at again next run.
    case changedDuringRun
    case acquireBusy(SanlockError)
    case lockspaceNotJoined(SanlockError)
    case acquireFailed(SanlockError)
    /// The leader could not be invalidated; `now` says what the path holds.
    case invalidateFailed(FileSystemError, now: PathState)
    case replacedBeforeDeletion(FileSystemError)
    /// The lease was invalidated but could not be unlinked; `now` says what
    /// the path holds.
    case unlinkFailed(FileSystemError, now: PathState)
    /// An unacquirable (uninitialised or invalidated) file could not be
    /// unlinked; it is unchanged.
    case removeFailed(FileSystemError)
    case connectionFailed(SanlockError)
    /// Not attempted: a signal asked the run to stop.
    case interrupted(signal: Int32)

    /// What an entry is, as a reason to keep it: for entries that are not
    /// usable leases (an auto lease reads as `.neverAcquired`, never used).
    public init(describing kind: EntryKind) {
        switch kind {
        case .lockspace: self = .lockspace
        case .directory: self = .directory
        case .symlink(let target): self = .symlink(target: target)
        case .special(let type): self = .specialFile(type)
        case .foreignFile: self = .foreignFile
        case .uninitialisedLease: self = .uninitialised
        case .clearedLease(let cleared): self = .cleared(invalidatedBy: cleared.invalidatedBy)
        case .corruptLease(let corruption): self = .corrupt(corruption)
        case .unreadable(let error): self = .unreadable(error)
        case .vanished: self = .vanished
        case .autoLease: self = .neverAcquired
        }
    }

    /// Whether a `delete` for this reason waits until the file is older than
    /// the minimum age. Only this host's own leftovers do not: nothing can
    /// be making them, and while they exist their guest cannot start.
    public var waitsForMinimumAge: Bool {
        if case .leftInvalidatedByThisHost = self { return false }
        return true
    }

    /// Stable identifier for scripts and JSON.
    public var code: String {
        switch self {
        case .lockspace: "lockspace"
        case .directory: "directory"
        case .symlink: "symlink"
        case .specialFile: "special-file"
        case .foreignFile: "foreign-file"
        case .uninitialised: "uninitialised"
        case .cleared: "cleared"
        case .corrupt(let corruption):
            switch corruption {
            case .badChecksum: "corrupt-checksum"
            case .truncated: "corrupt-truncated"
            case .wrongLockspace, .wrongResourceName: "corrupt-names"
            case .unsupportedVersion: "corrupt-version"
            case .notALease: "not-a-lease"
            case .outOfRange: "corrupt-out-of-range"
            }
        case .hardLinked: "hard-linked"
        case .unreadable: "unreadable"
        case .vanished: "vanished"
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
        case .sanlockReadFailed: "sanlock-read-failed"
        case .neverAcquired: "never-acquired"
        case .released: "released"
        case .ownerHostDead: "owner-host-dead"
        case .ownerHostRestarted: "owner-host-restarted"
        case .sharedHoldersGone: "shared-holders-gone"
        case .usedDuringRun: "used-during-run"
        case .changedDuringRun: "changed-during-run"
        case .acquireBusy: "acquire-busy"
        case .lockspaceNotJoined: "lockspace-not-joined"
        case .acquireFailed: "acquire-failed"
        case .invalidateFailed: "invalidate-failed"
        case .replacedBeforeDeletion: "replaced"
        case .unlinkFailed, .removeFailed: "unlink-failed"
        case .connectionFailed: "connection-failed"
        case .interrupted: "interrupted"
        }
    }

    /// The host a reason is about, when there is one.
    public var hostID: UInt64? {
        switch self {
        case .heldByLiveHost(let host, _), .heldByHostOfUnknownState(let host), .ownerHostFailing(let host, _),
             .released(let host), .ownerHostDead(let host, _), .ownerHostRestarted(let host, _, _),
             .lastHeldByLiveHost(let host, _), .lastHeldByFailingHost(let host), .lastHeldByHostOfUnknownState(let host),
             .lastHolderGone(let host, _):
            host
        case .cleared(let host), .clearedRecently(let host, _, _), .abandonedCleared(let host):
            host
        case .heldShared(let hosts), .sharedHoldersGone(let hosts):
            hosts.first
        default:
            nil
        }
    }

    /// The sanlock or errno code behind the reason, when one exists.
    public var errorCode: Int32? {
        switch self {
        case .sanlockReadFailed(let error), .acquireBusy(let error), .lockspaceNotJoined(let error),
             .acquireFailed(let error), .connectionFailed(let error):
            error.code
        case .unreadable(let error), .replacedBeforeDeletion(let error), .unlinkFailed(let error, _), .removeFailed(let error),
             .invalidateFailed(let error, _):
            error.errno?.rawValue
        default:
            nil
        }
    }
}

/// What a path holds after a removal that did not finish.
public enum PathState: Sendable, Hashable {
    /// The lease as it was, released: usable by its guest.
    case intact
    /// The lease, invalidated: no host can acquire it; this host's next run
    /// removes it.
    case invalidated
    /// Another file than the lease this run examined.
    case replaced
    /// Nothing.
    case gone
    /// Something else (re-examining it failed, or it holds an unexpected
    /// leader); the text says what.
    case unknown(String)
}
