import SystemPackage

/// A file's identity: device and inode.
public struct FileIdentity: Sendable, Hashable {
    let device: UInt64
    let inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    init(_ status: Stat) {
        self.init(device: UInt64(status.deviceID.rawValue), inode: UInt64(status.inode.rawValue))
    }
}

/// What `fstatat` said about an entry: the part of swift-system's `Stat`
/// the decision reads, as a plain value that tests can make without a file.
public struct FileStatus: Sendable, Hashable {
    public enum FileType: String, Sendable, Hashable {
        case regular, directory, symlink, blockDevice, characterDevice, fifo, socket, unknown
    }

    public let identity: FileIdentity
    public let type: FileType
    public let size: Int64
    /// Last modification, seconds since the epoch: acquires and releases
    /// rewrite the leader, so this is the lease's last activity too. Any
    /// value a file system stores, far past and future included.
    public let modified: Double
    /// Names the file has (`st_nlink`): more than one means the inode is
    /// also reachable from outside the lease directory.
    public let linkCount: UInt64

    public init(identity: FileIdentity, type: FileType, size: Int64, modified: Double, linkCount: UInt64 = 1) {
        self.identity = identity
        self.type = type
        self.size = size
        self.modified = modified
        self.linkCount = linkCount
    }

    init(_ status: Stat) {
        let type: FileType = switch status.type {
        case .regular: .regular
        case .directory: .directory
        case .symbolicLink: .symlink
        case .blockSpecial: .blockDevice
        case .characterSpecial: .characterDevice
        case .fifo: .fifo
        case .socket: .socket
        default: .unknown
        }
        self.init(
            identity: FileIdentity(status),
            type: type,
            size: status.size,
            modified: Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9,
            linkCount: UInt64(status.linkCount))
    }
}
