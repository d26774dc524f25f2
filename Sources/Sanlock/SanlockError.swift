#if canImport(Glibc)
import Glibc
#endif
import CSanlock
import SystemPackage

/// What this tool asked sanlock to do when a call failed.
public enum SanlockOperation: String, Sendable, Hashable, Codable {
    case connect = "connect"
    case version = "sanlock_version"
    case register = "sanlock_register"
    case acquire = "sanlock_acquire"
    case release = "sanlock_release"
    case readResource = "sanlock_read_resource"
    case readResourceOwners = "sanlock_read_resource_owners"
    case writeResource = "sanlock_write_resource"
    case getLockspaces = "sanlock_get_lockspaces"
    case getHosts = "sanlock_get_hosts"
    case status = "status (sanlock client status)"
    case prepareResource = "prepare resource"
}

/// A failed libsanlock_client call: the operation and the code it returned.
public struct SanlockError: Error, Sendable, Hashable, CustomStringConvertible {
    public let operation: SanlockOperation
    public let code: SanlockCode

    public init(_ operation: SanlockOperation, code: SanlockCode) {
        self.operation = operation
        self.code = code
    }

    /// A libsanlock_client return value, as the call gave it.
    public init(_ operation: SanlockOperation, code: Int32) {
        self.init(operation, code: SanlockCode(rawValue: code))
    }

    /// The symbolic name of the code: `SANLK_ACQUIRE_IDLIVE`, `EEXIST`, …
    public var symbolicName: String { code.name }

    public var description: String {
        "\(operation.rawValue) failed: \(code.message) (\(symbolicName), \(code.rawValue))"
    }
}

/// A libsanlock_client result code, with named members to match against
/// (`case .acquireIDLive:`), as swift-system's `Errno`. Codes above -200 are
/// negated errno values (the daemon's or the socket's); codes of -200 and
/// below are sanlock's own (`sanlock_rv.h`).
public struct SanlockCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// A negated errno, as sanlock returns the daemon's and the socket's.
    public init(_ errno: Errno) { self.init(rawValue: -errno.rawValue) }

    /// The errno behind a code above -200.
    public var errno: Errno? { rawValue < 0 && rawValue > -200 ? Errno(rawValue: -rawValue) : nil }

    public var description: String { name }

    public static func ~= (code: SanlockCode, error: SanlockError) -> Bool { code == error.code }

    // sanlock's own codes (sanlock_rv.h).
    public static let error = SanlockCode(rawValue: SANLK_ERROR)
    public static let aioTimeout = SanlockCode(rawValue: SANLK_AIO_TIMEOUT)
    public static let watchdogError = SanlockCode(rawValue: SANLK_WD_ERROR)
    public static let dblockRead = SanlockCode(rawValue: SANLK_DBLOCK_READ)
    public static let dblockWrite = SanlockCode(rawValue: SANLK_DBLOCK_WRITE)
    public static let dblockLVer = SanlockCode(rawValue: SANLK_DBLOCK_LVER)
    public static let dblockMBal = SanlockCode(rawValue: SANLK_DBLOCK_MBAL)
    public static let dblockChecksum = SanlockCode(rawValue: SANLK_DBLOCK_CHECKSUM)
    public static let leaderRead = SanlockCode(rawValue: SANLK_LEADER_READ)
    public static let leaderWrite = SanlockCode(rawValue: SANLK_LEADER_WRITE)
    public static let leaderDiff = SanlockCode(rawValue: SANLK_LEADER_DIFF)
    public static let leaderMagic = SanlockCode(rawValue: SANLK_LEADER_MAGIC)
    public static let leaderVersion = SanlockCode(rawValue: SANLK_LEADER_VERSION)
    public static let leaderSectorSize = SanlockCode(rawValue: SANLK_LEADER_SECTORSIZE)
    public static let leaderLockspace = SanlockCode(rawValue: SANLK_LEADER_LOCKSPACE)
    public static let leaderResource = SanlockCode(rawValue: SANLK_LEADER_RESOURCE)
    public static let leaderNumHosts = SanlockCode(rawValue: SANLK_LEADER_NUMHOSTS)
    public static let leaderChecksum = SanlockCode(rawValue: SANLK_LEADER_CHECKSUM)
    public static let acquireLVer = SanlockCode(rawValue: SANLK_ACQUIRE_LVER)
    public static let acquireLockspace = SanlockCode(rawValue: SANLK_ACQUIRE_LOCKSPACE)
    public static let acquireIDDisk = SanlockCode(rawValue: SANLK_ACQUIRE_IDDISK)
    public static let acquireIDLive = SanlockCode(rawValue: SANLK_ACQUIRE_IDLIVE)
    public static let acquireOwned = SanlockCode(rawValue: SANLK_ACQUIRE_OWNED)
    public static let acquireOther = SanlockCode(rawValue: SANLK_ACQUIRE_OTHER)
    public static let acquireShRetry = SanlockCode(rawValue: SANLK_ACQUIRE_SHRETRY)
    public static let acquireOwnedRetry = SanlockCode(rawValue: SANLK_ACQUIRE_OWNED_RETRY)
    public static let releaseLVer = SanlockCode(rawValue: SANLK_RELEASE_LVER)
    public static let releaseOwner = SanlockCode(rawValue: SANLK_RELEASE_OWNER)

    // The negated errno values this tool acts on.
    public static let notPermitted = SanlockCode(.notPermitted)
    public static let permissionDenied = SanlockCode(.permissionDenied)
    public static let noSuchFileOrDirectory = SanlockCode(.noSuchFileOrDirectory)
    public static let fileExists = SanlockCode(.fileExists)
    public static let resourceTemporarilyUnavailable = SanlockCode(.resourceTemporarilyUnavailable)
    public static let resourceBusy = SanlockCode(.resourceBusy)
    public static let noSpace = SanlockCode(.noSpace)
    public static let isDirectory = SanlockCode(.isDirectory)
    public static let messageTooLong = SanlockCode(.messageTooLong)
    public static let invalidArgument = SanlockCode(.invalidArgument)
    public static let socketNotConnected = SanlockCode(.socketNotConnected)
    public static let nameTooLong = SanlockCode(.fileNameTooLong)
    /// `sanlock_inquire` of a pid that is not registered with the daemon.
    public static let noSuchProcess = SanlockCode(.noSuchProcess)

    /// Not a code the daemon or the socket gives: the call got no answer
    /// within `DaemonDeadline.seconds` (see there). Outside both ranges.
    public static let noAnswer = SanlockCode(rawValue: -1000)

    private static let sanlockNames: [SanlockCode: String] = [
        .error: "SANLK_ERROR",
        .aioTimeout: "SANLK_AIO_TIMEOUT",
        .watchdogError: "SANLK_WD_ERROR",
        .dblockRead: "SANLK_DBLOCK_READ",
        .dblockWrite: "SANLK_DBLOCK_WRITE",
        .dblockLVer: "SANLK_DBLOCK_LVER",
        .dblockMBal: "SANLK_DBLOCK_MBAL",
        .dblockChecksum: "SANLK_DBLOCK_CHECKSUM",
        .leaderRead: "SANLK_LEADER_READ",
        .leaderWrite: "SANLK_LEADER_WRITE",
        .leaderDiff: "SANLK_LEADER_DIFF",
        .leaderMagic: "SANLK_LEADER_MAGIC",
        .leaderVersion: "SANLK_LEADER_VERSION",
        .leaderSectorSize: "SANLK_LEADER_SECTORSIZE",
        .leaderLockspace: "SANLK_LEADER_LOCKSPACE",
        .leaderResource: "SANLK_LEADER_RESOURCE",
        .leaderNumHosts: "SANLK_LEADER_NUMHOSTS",
        .leaderChecksum: "SANLK_LEADER_CHECKSUM",
        .acquireLVer: "SANLK_ACQUIRE_LVER",
        .acquireLockspace: "SANLK_ACQUIRE_LOCKSPACE",
        .acquireIDDisk: "SANLK_ACQUIRE_IDDISK",
        .acquireIDLive: "SANLK_ACQUIRE_IDLIVE",
        .acquireOwned: "SANLK_ACQUIRE_OWNED",
        .acquireOther: "SANLK_ACQUIRE_OTHER",
        .acquireShRetry: "SANLK_ACQUIRE_SHRETRY",
        .acquireOwnedRetry: "SANLK_ACQUIRE_OWNED_RETRY",
        .releaseLVer: "SANLK_RELEASE_LVER",
        .releaseOwner: "SANLK_RELEASE_OWNER",
    ]

    /// `SANLK_ACQUIRE_IDLIVE`, `EEXIST`, or `code N` for anything else.
    public var name: String {
        if self == .noAnswer { return "NO_ANSWER" }
        if let name = Self.sanlockNames[self] { return name }
        if let errno { return Self.errnoName(errno.rawValue) }
        return "code \(rawValue)"
    }

    /// sanlock's message for its own codes, strerror's for errno values.
    public var message: String {
        if self == .noAnswer {
            return "the sanlock daemon did not answer within \(DaemonDeadline.seconds.formatted) s"
        }
        if rawValue <= -200 { return String(cString: sanlock_strerror(rawValue)) }
        if let errno { return errno.description }
        return "unexpected result \(rawValue)"
    }

    /// Symbolic errno names for the values sanlock's client and daemon return.
    static func errnoName(_ value: Int32) -> String {
        switch value {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EIO: "EIO"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case EINVAL: "EINVAL"
        case ENOSPC: "ENOSPC"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case EMSGSIZE: "EMSGSIZE"
        case ECONNREFUSED: "ECONNREFUSED"
        case ETIMEDOUT: "ETIMEDOUT"
        case ENOTCONN: "ENOTCONN"
        case EPIPE: "EPIPE"
        case ECONNRESET: "ECONNRESET"
        case EROFS: "EROFS"
        case EFAULT: "EFAULT"
        case ESRCH: "ESRCH"
        case ENODEV: "ENODEV"
        case ENXIO: "ENXIO"
        case EALREADY: "EALREADY"
        case EINPROGRESS: "EINPROGRESS"
        case ENOSYS: "ENOSYS"
        case EOPNOTSUPP: "EOPNOTSUPP"
        default: "errno \(value)"
        }
    }
}

extension Double {
    /// `60`, `2.5`: whole seconds without a fraction.
    public var formatted: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}
