import Sanlock

/// One entry of the lease directory and everything the inventory learned
/// about it. Facts only: what to do with it is the decision's business.
public struct LeaseEntry: Sendable, Hashable {
    public let name: EntryName
    /// Absolute path (escaped for names that are not UTF-8).
    public let path: String
    /// nil when the entry vanished before it could be examined.
    public let status: FileStatus?
    public var kind: EntryKind

    public init(name: EntryName, path: String, status: FileStatus?, kind: EntryKind) {
        self.name = name
        self.path = path
        self.status = status
        self.kind = kind
    }

    /// The lease state, for auto leases.
    var leaseState: LeaseState? {
        if case .autoLease(let state) = kind { return state }
        return nil
    }
}

/// What an entry of the lease directory is.
public enum EntryKind: Sendable, Hashable {
    /// `__LIBVIRT__DISKS__`, the lockspace every host joins.
    case lockspace
    /// A lease as libvirt makes it: 32-hex name, valid leader in lockspace
    /// `__LIBVIRT__DISKS__` whose resource name is the file name.
    case autoLease(LeaseState)
    /// An auto-lease name whose file is empty or zero-filled (no magic):
    /// libvirt creates the file, zeroes it, then asks sanlock to initialise
    /// it, so this is a lease being made, or one whose maker crashed.
    case uninitialisedLease
    /// A lease whose leader carries sanlock's "cleared" magic: no host can
    /// ever acquire it. A janitor leaves one when it is stopped between
    /// invalidating a lease and unlinking it.
    case clearedLease(ClearedLease)
    /// An auto-lease name whose content is not a usable lease.
    case corruptLease(Corruption)
    /// A regular file whose name is not an auto-lease name.
    case foreignFile
    case directory
    case symlink(target: String?)
    /// FIFO, socket, device node.
    case special(FileStatus.FileType)
    /// The entry exists but could not be examined.
    case unreadable(FileSystemError)
    /// The entry disappeared between listing and examining it.
    case vanished
}

extension LeaseDirectory {
    /// The sanlock resource of the auto lease `entry`: named like its file,
    /// at offset 0 of its path, as libvirt makes them.
    func resource(for entry: LeaseEntry, lockspace: String = LeaseClassifier.lockspaceName) -> SanlockResource {
        SanlockResource(lockspace: lockspace, name: entry.name.string ?? "", path: path(of: entry.name))
    }
}

extension EntryKind {
    /// A regular file with an auto-lease name: a lease, or one that was
    /// meant to be (uninitialised, invalidated, corrupt).
    var isLeaseFile: Bool {
        switch self {
        case .autoLease, .uninitialisedLease, .clearedLease, .corruptLease: true
        default: false
        }
    }
}

/// Why a file with an auto-lease name is not a usable lease.
public enum Corruption: Sendable, Hashable {
    case badChecksum(stored: UInt32)
    /// Shorter than the leader plus one dblock per host.
    case truncated(size: Int64, needed: Int64)
    case wrongLockspace(String)
    case wrongResourceName(String)
    case unsupportedVersion(UInt32)
    /// Neither zero nor a sanlock magic.
    case notALease(magic: UInt32)
    /// A field outside what sanlock ever writes (sector size, num_hosts,
    /// owner id): reading on would size arrays and offsets from it.
    case outOfRange(field: String, value: UInt64)
}

/// What an invalidated leader still tells.
public struct ClearedLease: Sendable, Hashable {
    /// The host whose janitor invalidated the lease: this tool rewrites the
    /// leader of a lease it holds, so the cleared leader still names its
    /// owner, held (timestamp set), with a valid checksum and this file's
    /// names. nil for any other cleared leader (`SANLK_WRITE_CLEAR` leaves
    /// no owner), whose origin cannot be told.
    var invalidatedBy: UInt64?

    public init(invalidatedBy: UInt64?) {
        self.invalidatedBy = invalidatedBy
    }

    init(_ leader: LeaderRecord, name: EntryName) {
        let ours = leader.checksumIsValid && leader.isHeld
            && leader.lockspaceName == LeaseClassifier.lockspaceName && leader.resourceName == name.string
            && (1...PaxosLeaseLayout.maximumHosts).contains(leader.ownerID)
        invalidatedBy = ours ? leader.ownerID : nil
    }
}

/// Who holds a lease, or held it last.
/// Decoded from the leader and the mode blocks on disk, never asked of the
/// daemon (its `sanlock_read_resource_owners` reads the same, 1 MiB a lease).
public struct LeaseState: Sendable, Hashable {
    /// Owner recorded in the leader: the current owner when `held`, else the
    /// last host that held it (release keeps it). 0 when never acquired.
    var ownerID: UInt64
    var ownerGeneration: UInt64
    /// Lease version: 0 for a lease never acquired.
    var lver: UInt64
    /// The leader is held exclusively by `ownerID`.
    var held: Bool
    /// Hosts holding the lease in shared mode (shareable disks).
    var sharedHolders: [ResourceOwner]

    public init(
        ownerID: UInt64, ownerGeneration: UInt64, lver: UInt64, held: Bool,
        sharedHolders: [ResourceOwner] = []
    ) {
        self.ownerID = ownerID
        self.ownerGeneration = ownerGeneration
        self.lver = lver
        self.held = held
        self.sharedHolders = sharedHolders
    }

    var neverAcquired: Bool { lver == 0 && ownerID == 0 }
    var isFree: Bool { !held && sharedHolders.isEmpty }
}
