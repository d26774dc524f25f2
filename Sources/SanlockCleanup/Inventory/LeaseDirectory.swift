#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The lease directory, held open. Every access to an entry goes through this
/// directory descriptor (`fstatat`, `openat`, `unlinkat`) with
/// `AT_SYMLINK_NOFOLLOW`/`O_NOFOLLOW`, so a symlink is never followed and a
/// name can never reach outside the directory, whatever it contains.
public final class LeaseDirectory: Sendable {
    /// The directory as configured, made absolute: sanlock opens leases by
    /// path, so this is the prefix of every path handed to the daemon.
    public let path: String
    private let descriptor: Int32
    /// Identity of the directory we opened, to check that `path` still
    /// names it when sanlock is about to open a lease through `path`.
    public let identity: FileIdentity

    public init(path: String) throws(FileSystemError) {
        let absolute = Self.absolutePath(path)
        // The directory itself may be a symlink (an admin's choice of where the
        // leases live, e.g. an NFS mount); only its entries are never followed.
        let fd = open(absolute, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError(.openDirectory, path: absolute, errno: Errno(rawValue: errno)) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let error = FileSystemError(.openDirectory, path: absolute, errno: Errno(rawValue: errno))
            close(fd)
            throw error
        }
        self.path = absolute
        self.descriptor = fd
        self.identity = FileIdentity(status)
    }

    deinit { close(descriptor) }

    /// The absolute path of an entry, as sanlock must be given it (auto lease
    /// names are ASCII); other names are rendered escaped, for messages only.
    public func path(of name: EntryName) -> String {
        (path.hasSuffix("/") ? path : path + "/") + (name.string ?? name.escaped)
    }

    /// Every entry but `.` and `..`, sorted by name bytes.
    public func entryNames() throws(FileSystemError) -> [EntryName] {
        let copy = dup(descriptor)
        guard copy >= 0, let stream = fdopendir(copy) else {
            let error = Errno(rawValue: errno)
            throw FileSystemError(.readDirectory, path: path, errno: error)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [EntryName] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw FileSystemError(.readDirectory, path: path, errno: Errno(rawValue: errno)) }
                break
            }
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            names.append(EntryName(bytes: bytes))
        }
        return names.sorted()
    }

    /// `fstatat` without following a symlink.
    public func status(of name: EntryName) throws(FileSystemError) -> FileStatus {
        var status = stat()
        let rv = name.withCString { fstatat(descriptor, $0, &status, AT_SYMLINK_NOFOLLOW) }
        guard rv == 0 else { throw FileSystemError(.stat, path: path(of: name), errno: Errno(rawValue: errno)) }
        return FileStatus(status)
    }

    /// The target a symlink entry points at (never followed).
    public func symlinkTarget(of name: EntryName) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = name.withCString { readlinkat(descriptor, $0, &buffer, buffer.count - 1) }
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Reads the first `length` bytes of a regular file entry, provided it is
    /// still the file `expected` describes. Uses O_DIRECT where the file
    /// system supports it, as sanlock does, so that on NFS we read what
    /// other hosts wrote rather than a stale page cache.
    public func readPrefix(of name: EntryName, length: Int, expected: FileIdentity) throws(FileSystemError) -> [UInt8] {
        let buffer = AlignedBuffer()
        return Array(try readPrefix(of: name, length: length, expected: expected, into: buffer))
    }

    /// The same, into a buffer the caller reuses (one per scanning thread:
    /// no allocation per lease). The result is valid until the next read
    /// into `buffer`.
    public func readPrefix(of name: EntryName, length: Int, expected: FileIdentity,
                           into buffer: AlignedBuffer) throws(FileSystemError) -> UnsafeRawBufferPointer {
        let flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY
        var direct = openDirectFlag != 0
        var fd = name.withCString { openat(descriptor, $0, flags | openDirectFlag) }
        if fd < 0, errno == EINVAL {
            direct = false  // tmpfs and some others refuse O_DIRECT
            fd = name.withCString { openat(descriptor, $0, flags) }
        }
        guard fd >= 0 else { throw FileSystemError(.open, path: path(of: name), errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FileSystemError(.stat, path: path(of: name), errno: Errno(rawValue: errno)) }
        guard FileIdentity(status) == expected, status.st_mode & S_IFMT == S_IFREG else {
            throw FileSystemError(.open, path: path(of: name), condition: .replaced)
        }
        let memory = buffer.reserve(length)
        var total = 0
        while total < length {
            let chunk = direct ? memory.count - total : length - total
            let count = pread(fd, memory.baseAddress! + total, chunk, off_t(total))
            if count < 0, errno == EINTR { continue }
            if count < 0, errno == EINVAL, direct {
                // Some file systems accept O_DIRECT at open but not our I/O size.
                direct = false
                continue
            }
            guard count >= 0 else { throw FileSystemError(.read, path: path(of: name), errno: Errno(rawValue: errno)) }
            if count == 0 { break }
            total += count
        }
        return UnsafeRawBufferPointer(rebasing: memory[0..<min(total, length)])
    }

    /// Overwrites the start of a regular file entry with `bytes` (a whole
    /// number of sectors), provided it is still the file `expected` describes
    /// and has no other name: a hard link would carry the write to a file
    /// outside the lease directory. O_DIRECT and O_SYNC like sanlock's own
    /// writes, so the sector is on the storage, not in a cache, when this
    /// returns.
    public func writePrefix(of name: EntryName, bytes: [UInt8], expected: FileIdentity) throws(FileSystemError) {
        let flags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_SYNC
        var fd = name.withCString { openat(descriptor, $0, flags | openDirectFlag) }
        if fd < 0, errno == EINVAL { fd = name.withCString { openat(descriptor, $0, flags) } }
        guard fd >= 0 else { throw FileSystemError(.write, path: path(of: name), errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FileSystemError(.stat, path: path(of: name), errno: Errno(rawValue: errno)) }
        guard FileIdentity(status) == expected, status.st_mode & S_IFMT == S_IFREG else {
            throw FileSystemError(.write, path: path(of: name), condition: .replaced)
        }
        guard status.st_nlink == 1 else {
            throw FileSystemError(.write, path: path(of: name), condition: .hardLinked(links: UInt64(status.st_nlink)))
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        var written = 0
        while written < bytes.count {
            let count = pwrite(fd, buffer.baseAddress! + written, bytes.count - written, off_t(written))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw FileSystemError(.write, path: path(of: name), errno: Errno(rawValue: errno)) }
            written += count
        }
    }

    /// Checks that the entry is still the file `expected` describes, both
    /// through the directory descriptor and through `path(of:)`: sanlock
    /// opens leases by path, so both must lead to the inode we act on.
    public func verifyPath(of name: EntryName, names expected: FileIdentity) throws(FileSystemError) {
        let current = try status(of: name)
        guard current.identity == expected else {
            throw FileSystemError(.stat, path: path(of: name), condition: .replaced)
        }
        var byPath = stat()
        let rv = (Array((path.hasSuffix("/") ? path : path + "/").utf8) + name.bytes + [0])
            .withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { lstat($0.baseAddress!, &byPath) }
            }
        guard rv == 0, FileIdentity(byPath) == expected else {
            throw FileSystemError(.stat, path: path(of: name), condition: .pathMoved)
        }
    }

    /// Removes an entry, provided it is still the file `expected` describes
    /// (see `verifyPath`).
    public func unlink(_ name: EntryName, expected: FileIdentity) throws(FileSystemError) {
        try verifyPath(of: name, names: expected)
        let rv = name.withCString { unlinkat(descriptor, $0, 0) }
        guard rv == 0 else { throw FileSystemError(.unlink, path: path(of: name), errno: Errno(rawValue: errno)) }
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (cwd == "/" ? "" : cwd) + "/" + path
    }
}

/// Page-aligned memory for O_DIRECT reads, grown as needed and reused.
public final class AlignedBuffer {
    /// The longest read the janitor makes: a 4096-byte-sector lease up to
    /// host 2000's dblock (2002 sectors), rounded up.
    public static let maximumLength = 8 << 20
    private var memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    public init() {}

    deinit { memory.deallocate() }

    /// At least `length` bytes, rounded up to whole pages (O_DIRECT reads
    /// whole blocks). Callers bound `length` (a lease is read up to its
    /// 2000th host's dblock: 8 MiB at most).
    func reserve(_ length: Int) -> UnsafeMutableRawBufferPointer {
        precondition((0...Self.maximumLength).contains(length), "read length \(length) is out of bounds")
        let rounded = (length + 4095) / 4096 * 4096
        if memory.count < rounded {
            memory.deallocate()
            memory = UnsafeMutableRawBufferPointer.allocate(byteCount: rounded, alignment: 4096)
        }
        return memory
    }
}

/// A file's identity: device and inode.
public struct FileIdentity: Sendable, Hashable {
    public let device: UInt64
    public let inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    init(_ status: stat) {
        self.init(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }
}

/// What `fstatat` said about an entry.
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

    init(_ status: stat) {
        let type: FileType = switch status.st_mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        case S_IFBLK: .blockDevice
        case S_IFCHR: .characterDevice
        case S_IFIFO: .fifo
        case S_IFSOCK: .socket
        default: .unknown
        }
        self.init(
            identity: FileIdentity(status),
            type: type,
            size: Int64(status.st_size),
            modified: Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9,
            linkCount: UInt64(status.st_nlink))
    }
}

/// A failed file-system call: what was attempted, on which path, and errno.
public struct FileSystemError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Operation: String, Sendable, Hashable {
        case openDirectory = "open directory"
        case readDirectory = "read directory"
        case stat
        case open
        case read
        case write
        case unlink
    }

    /// What the janitor found wrong without a system call failing.
    public enum Condition: Sendable, Hashable {
        /// The name now leads to another file than the one examined.
        case replaced
        /// The lease directory's path no longer leads to the file examined
        /// through the directory descriptor (sanlock opens leases by path).
        case pathMoved
        /// The file has other names: writing it would change it there too.
        case hardLinked(links: UInt64)
        /// Fewer bytes than a leader sector.
        case shortSector

        var text: String {
            switch self {
            case .replaced: "replaced by another file"
            case .pathMoved: "the lease directory path no longer leads to this file"
            case .hardLinked(let links): "has \(links) hard links: never written, so that nothing outside the lease directory changes"
            case .shortSector: "shorter than a leader sector"
            }
        }
    }

    public let operation: Operation
    public let path: String
    /// The failed call's errno; `.resourceBusy` (or `.ioError` for a short
    /// sector) when `condition` says what was wrong instead.
    public let errno: Errno
    public let condition: Condition?
    public let detail: String?

    public init(_ operation: Operation, path: String, errno: Errno, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.condition = nil
        self.detail = detail
    }

    public init(_ operation: Operation, path: String, condition: Condition) {
        self.operation = operation
        self.path = path
        self.errno = condition == .shortSector ? .ioError : .resourceBusy
        self.condition = condition
        self.detail = condition.text
    }

    /// Paths come from the configuration and the directory: escaped, so a
    /// message stays one printable line.
    public var description: String {
        "\(operation.rawValue) \(path.escapingControlCharacters()): \(detail ?? errno.description)"
    }
}

/// `O_DIRECT`, which Glibc only declares under `_GNU_SOURCE` and Swift does
/// not import. Its value differs between architectures.
#if arch(x86_64) || arch(s390x) || arch(i386)
private let openDirectFlag: Int32 = 0o40000
#elseif arch(arm64) || arch(arm)
private let openDirectFlag: Int32 = 0o200000
#else
private let openDirectFlag: Int32 = 0  // unknown here: read through the page cache
#endif
