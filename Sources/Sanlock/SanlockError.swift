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
    case prepareResource = "prepare resource"
}

/// A failed libsanlock_client call: the operation and the negative code it
/// returned. Codes above -200 are negated errno values (the daemon's or the
/// socket's); codes of -200 and below are sanlock's own (`sanlock_rv.h`).
public struct SanlockError: Error, Sendable, Hashable, CustomStringConvertible {
    public let operation: SanlockOperation
    public let code: Int32

    public init(_ operation: SanlockOperation, code: Int32) {
        self.operation = operation
        self.code = code
    }

    /// The symbolic name of the code: `SANLK_ACQUIRE_IDLIVE`, `EEXIST`, …
    public var symbolicName: String { SanlockCode.name(of: code) }

    public var description: String {
        "\(operation.rawValue) failed: \(SanlockCode.message(of: code)) (\(symbolicName), \(code))"
    }
}

/// Names and messages for the codes sanlock returns.
public enum SanlockCode {
    public static let leaderMagic: Int32 = SANLK_LEADER_MAGIC
    public static let leaderLockspace: Int32 = SANLK_LEADER_LOCKSPACE
    public static let leaderResource: Int32 = SANLK_LEADER_RESOURCE
    public static let leaderChecksum: Int32 = SANLK_LEADER_CHECKSUM
    public static let leaderVersion: Int32 = SANLK_LEADER_VERSION
    public static let acquireIDLive: Int32 = SANLK_ACQUIRE_IDLIVE
    public static let acquireOwned: Int32 = SANLK_ACQUIRE_OWNED
    public static let acquireOther: Int32 = SANLK_ACQUIRE_OTHER
    public static let acquireOwnedRetry: Int32 = SANLK_ACQUIRE_OWNED_RETRY
    public static let acquireLVer: Int32 = SANLK_ACQUIRE_LVER
    public static let acquireShRetry: Int32 = SANLK_ACQUIRE_SHRETRY
    public static let acquireIDDisk: Int32 = SANLK_ACQUIRE_IDDISK
    public static let acquireLockspace: Int32 = SANLK_ACQUIRE_LOCKSPACE

    private static let sanlockNames: [Int32: String] = [
        SANLK_ERROR: "SANLK_ERROR",
        SANLK_AIO_TIMEOUT: "SANLK_AIO_TIMEOUT",
        SANLK_WD_ERROR: "SANLK_WD_ERROR",
        SANLK_DBLOCK_READ: "SANLK_DBLOCK_READ",
        SANLK_DBLOCK_WRITE: "SANLK_DBLOCK_WRITE",
        SANLK_DBLOCK_LVER: "SANLK_DBLOCK_LVER",
        SANLK_DBLOCK_MBAL: "SANLK_DBLOCK_MBAL",
        SANLK_DBLOCK_CHECKSUM: "SANLK_DBLOCK_CHECKSUM",
        SANLK_LEADER_READ: "SANLK_LEADER_READ",
        SANLK_LEADER_WRITE: "SANLK_LEADER_WRITE",
        SANLK_LEADER_DIFF: "SANLK_LEADER_DIFF",
        SANLK_LEADER_MAGIC: "SANLK_LEADER_MAGIC",
        SANLK_LEADER_VERSION: "SANLK_LEADER_VERSION",
        SANLK_LEADER_SECTORSIZE: "SANLK_LEADER_SECTORSIZE",
        SANLK_LEADER_LOCKSPACE: "SANLK_LEADER_LOCKSPACE",
        SANLK_LEADER_RESOURCE: "SANLK_LEADER_RESOURCE",
        SANLK_LEADER_NUMHOSTS: "SANLK_LEADER_NUMHOSTS",
        SANLK_LEADER_CHECKSUM: "SANLK_LEADER_CHECKSUM",
        SANLK_ACQUIRE_LVER: "SANLK_ACQUIRE_LVER",
        SANLK_ACQUIRE_LOCKSPACE: "SANLK_ACQUIRE_LOCKSPACE",
        SANLK_ACQUIRE_IDDISK: "SANLK_ACQUIRE_IDDISK",
        SANLK_ACQUIRE_IDLIVE: "SANLK_ACQUIRE_IDLIVE",
        SANLK_ACQUIRE_OWNED: "SANLK_ACQUIRE_OWNED",
        SANLK_ACQUIRE_OTHER: "SANLK_ACQUIRE_OTHER",
        SANLK_ACQUIRE_SHRETRY: "SANLK_ACQUIRE_SHRETRY",
        SANLK_ACQUIRE_OWNED_RETRY: "SANLK_ACQUIRE_OWNED_RETRY",
        SANLK_RELEASE_LVER: "SANLK_RELEASE_LVER",
        SANLK_RELEASE_OWNER: "SANLK_RELEASE_OWNER",
    ]

    public static func name(of code: Int32) -> String {
        if let name = sanlockNames[code] { return name }
        if code < 0, code > -200 { return errnoName(-code) }
        return "code \(code)"
    }

    public static func message(of code: Int32) -> String {
        if code <= -200 { return String(cString: sanlock_strerror(code)) }
        if code < 0 { return Errno(rawValue: -code).description }
        return "unexpected result \(code)"
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
