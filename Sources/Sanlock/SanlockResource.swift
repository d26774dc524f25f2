import CSanlock

/// A sanlock resource lease with a single disk, as libvirt's auto disk
/// leases are: lockspace name, resource name, absolute path and offset.
public struct SanlockResource: Sendable, Hashable, CustomStringConvertible {
    public var lockspace: String
    public var name: String
    public var path: String
    public var offset: UInt64

    public init(lockspace: String, name: String, path: String, offset: UInt64 = 0) {
        self.lockspace = lockspace
        self.name = name
        self.path = path
        self.offset = offset
    }

    public var description: String { "\(lockspace):\(name):\(path):\(offset)" }

    /// Lends a freshly allocated `struct sanlk_resource` (header plus one
    /// disk) to `body` and frees it afterwards.
    func withCResource<Result>(
        for operation: SanlockOperation,
        _ body: (UnsafeMutablePointer<sanlk_resource>) throws(SanlockError) -> Result
    ) throws(SanlockError) -> Result {
        var error: Int32 = 0
        guard let resource = vsc_resource_new(lockspace, name, path, offset, &error) else {
            throw SanlockError(operation, code: error)
        }
        defer { vsc_sanlock_free(resource) }
        return try body(resource)
    }
}

/// A lockspace of this host's daemon, as `sanlock_get_lockspaces` lists it:
/// joined, or still being added or removed.
public struct JoinedLockspace: Sendable, Hashable {
    /// Where the daemon is with the lockspace (`SANLK_LSF_ADD`/`_REM`).
    public enum Phase: String, Sendable, Hashable {
        /// Joined: the host's delta lease is held and renewed.
        case joined
        /// `add_lockspace` is under way (20-40 s at io_timeout 10): the
        /// host does not hold its delta lease yet, and every acquire in the
        /// lockspace fails.
        case joining
        /// `rem_lockspace` is under way.
        case leaving

        init(flags: UInt32) {
            if flags & UInt32(SANLK_LSF_ADD) != 0 {
                self = .joining
            } else if flags & UInt32(SANLK_LSF_REM) != 0 {
                self = .leaving
            } else {
                self = .joined
            }
        }
    }

    public let name: String
    public let hostID: UInt64
    public let path: String
    public let offset: UInt64
    public let phase: Phase

    public init(name: String, hostID: UInt64, path: String, offset: UInt64, phase: Phase = .joined) {
        self.name = name
        self.hostID = hostID
        self.path = path
        self.offset = offset
        self.phase = phase
    }
}

/// Liveness of a host in a lockspace, as sanlock judges it from the host's
/// delta lease renewals (`SANLK_HOST_*`).
public enum HostState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Seen for a few seconds after a host joins, before enough renewals were
    /// observed: treat as possibly live.
    case unknown
    /// Never joined, or left cleanly.
    case free
    case live
    /// Stopped renewing for 8 × io_timeout; not yet dead.
    case failing = "fail"
    /// Stopped renewing for 8 × io_timeout + 60 s: its leases can be taken.
    case dead

    init(flags: UInt32) {
        switch flags & UInt32(SANLK_HOST_MASK) {
        case UInt32(SANLK_HOST_FREE): self = .free
        case UInt32(SANLK_HOST_LIVE): self = .live
        case UInt32(SANLK_HOST_FAIL): self = .failing
        case UInt32(SANLK_HOST_DEAD): self = .dead
        default: self = .unknown
        }
    }
}

/// One host of a lockspace as the daemon sees it (`struct sanlk_host`).
public struct SanlockHost: Sendable, Hashable {
    public let hostID: UInt64
    public let generation: UInt64
    /// The host's own delta-lease timestamp (its monotonic clock, seconds).
    public let timestamp: UInt64
    public let ioTimeout: UInt32
    public let state: HostState

    public init(hostID: UInt64, generation: UInt64, timestamp: UInt64, ioTimeout: UInt32, state: HostState) {
        self.hostID = hostID
        self.generation = generation
        self.timestamp = timestamp
        self.ioTimeout = ioTimeout
        self.state = state
    }
}

/// Who holds a resource lease, as `sanlock_read_resource_owners` reports it.
public struct ResourceOwners: Sendable, Hashable {
    /// Exclusive owner (if the leader is held) followed by shared holders.
    public let owners: [ResourceOwner]
    /// True when at least one host holds the lease in shared mode.
    public let shared: Bool
    /// The lease version: grows by one per acquire.
    public let lver: UInt64

    public init(owners: [ResourceOwner], shared: Bool, lver: UInt64) {
        self.owners = owners
        self.shared = shared
        self.lver = lver
    }
}

public struct ResourceOwner: Sendable, Hashable {
    public let hostID: UInt64
    public let generation: UInt64
    /// Zero for shared holders, whose timestamps live in their mode blocks.
    public let timestamp: UInt64

    public init(hostID: UInt64, generation: UInt64, timestamp: UInt64) {
        self.hostID = hostID
        self.generation = generation
        self.timestamp = timestamp
    }
}
