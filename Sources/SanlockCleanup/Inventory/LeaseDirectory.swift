import SystemCalls
import SystemPackage

/// The lease directory, held open. Every access to an entry goes through this
/// directory descriptor (`fstatat`, `openat`, `unlinkat`) with
/// `AT_SYMLINK_NOFOLLOW`/`O_NOFOLLOW`, so a symlink is never followed and a
/// name can never reach outside the directory, whatever it contains.
///
/// The directory is often an NFS mount, where every request is a round trip:
/// a lease is looked up and opened once (`openLease`), and everything else
/// about it goes through that descriptor (docs/design.md counts them).
final class LeaseDirectory: Sendable {
    /// The directory as configured, made absolute: sanlock opens leases by
    /// path, so this is the prefix of every path handed to the daemon.
    public let path: String
    private let descriptor: FileDescriptor
    /// Identity of the directory we opened (the run lock is named after it).
    public let identity: FileIdentity

    public init(path: String) throws(FileSystemError) {
        let absolute = Self.absolutePath(path)
        // The directory itself may be a symlink (an admin's choice of where the
        // leases live, e.g. an NFS mount); only its entries are never followed.
        let fd: FileDescriptor
        let status: Stat
        do throws(SystemCallError) {
            fd = try .open(path: absolute.utf8, .readOnly, options: [.directory, .nonBlocking, .closeOnExec])
        } catch {
            throw FileSystemError(.openDirectory, path: absolute, cause: error)
        }
        do throws(SystemCallError) {
            status = try fd.status()
        } catch {
            fd.closeIgnoringErrors()
            throw FileSystemError(.openDirectory, path: absolute, cause: error)
        }
        self.path = absolute
        self.descriptor = fd
        self.identity = FileIdentity(status)
        self.isNFS = (try? fd.fileSystemType()) == Self.nfsMagic
    }

    /// NFS_SUPER_MAGIC (statfs(2)).
    static let nfsMagic: Int64 = 0x6969

    /// On NFS: a client that unlinks a file some process of it holds open
    /// (the sanlock daemon holds every lease it grants) renames it to
    /// `.nfsXXXX` instead, until the last close: the unlinked inode keeps a
    /// link, and its link count proves nothing.
    let isNFS: Bool

    deinit { descriptor.closeIgnoringErrors() }

    /// The absolute path of an entry, as sanlock must be given it (auto lease
    /// names are ASCII); other names are rendered escaped, for messages only.
    public func path(of name: EntryName) -> String {
        (path.hasSuffix("/") ? path : path + "/") + (name.string ?? name.escaped)
    }

    /// Every entry but `.` and `..`, sorted by name bytes.
    func entryNames() throws(FileSystemError) -> [EntryName] {
        try entries().map(\.name)
    }

    /// Every entry but `.` and `..`, sorted by name bytes, with the type
    /// `readdir` gave: for a regular file the scan opens the entry at once,
    /// without a stat by name first (one round trip less per lease).
    func entries() throws(FileSystemError) -> [DirectoryEntry] {
        do throws(SystemCallError) {
            return try DirectoryStream(duplicating: descriptor).entries()
                .map { DirectoryEntry(name: EntryName(bytes: $0.name), type: $0.type) }
                .sorted { $0.name < $1.name }
        } catch {
            throw FileSystemError(.readDirectory, path: path, cause: error)
        }
    }

    /// `fstatat` without following a symlink.
    public func status(of name: EntryName) throws(FileSystemError) -> FileStatus {
        do throws(SystemCallError) {
            return FileStatus(try descriptor.status(ofEntry: name.bytes))
        } catch {
            throw FileSystemError(.stat, path: path(of: name), cause: error)
        }
    }

    /// The target a symlink entry points at (never followed).
    func symlinkTarget(of name: EntryName) -> String? {
        guard let target = try? descriptor.symlinkTarget(ofEntry: name.bytes) else { return nil }
        return String(decoding: target, as: UTF8.self)
    }

    /// Reads the first `length` bytes of a regular file entry, provided it is
    /// still the file `expected` describes (the lockspace file).
    func readPrefix(of name: EntryName, length: Int, expected: FileIdentity) throws(FileSystemError) -> [UInt8] {
        let file = try openLease(name, writable: false)
        guard file.status.identity == expected else {
            throw FileSystemError(.open, path: path(of: name), condition: .replaced)
        }
        let buffer = AlignedBuffer()
        return try withExtendedLifetime(buffer) { () throws(FileSystemError) in Array(try file.read(length: length, into: buffer)) }
    }

    /// Opens a regular file entry, held open from the scan to its removal:
    /// one open, one lookup, per lease. With O_DIRECT where the file system
    /// takes it (tmpfs and some others refuse it: EINVAL), as sanlock reads
    /// and writes leases, so that on NFS we read what other hosts wrote
    /// rather than a stale page cache; never following a symlink nor
    /// blocking on a FIFO. `writable` asks for read-write access (a cleaning
    /// run invalidates through it), and falls back to read-only where that
    /// is refused: the invalidation then fails with that error, and the
    /// lease is kept. Not a regular file: `.notRegular`.
    func openLease(_ name: EntryName, writable: Bool) throws(FileSystemError) -> LeaseFile {
        let options: FileDescriptor.OpenOptions = [.noFollow, .nonBlocking, .closeOnExec, .noControllingTerminal]
        func open(_ mode: FileDescriptor.AccessMode) throws(SystemCallError) -> (FileDescriptor, direct: Bool) {
            do throws(SystemCallError) {
                return (try descriptor.open(entry: name.bytes, mode, options: options.union(.direct)), true)
            } catch where error.errno == .invalidArgument {
                return (try descriptor.open(entry: name.bytes, mode, options: options), false)
            }
        }
        let opened: (FileDescriptor, direct: Bool)
        var canWrite = writable
        do throws(SystemCallError) {
            do throws(SystemCallError) {
                opened = try open(writable ? .readWrite : .readOnly)
            } catch where writable && [.permissionDenied, .readOnlyFileSystem, .notPermitted, .textFileBusy].contains(error.errno) {
                canWrite = false
                opened = try open(.readOnly)
            }
        } catch {
            throw FileSystemError(.open, path: path(of: name), cause: error)
        }
        let (fd, direct) = opened
        // The attributes the open's lookup just fetched: no round trip.
        let status: FileStatus
        do throws(SystemCallError) {
            status = FileStatus(try fd.cachedStatus())
        } catch {
            fd.closeIgnoringErrors()
            throw FileSystemError(.stat, path: path(of: name), cause: error)
        }
        return LeaseFile(descriptor: fd, name: name, path: path(of: name), status: status, direct: direct, writable: canWrite)
    }

    /// Removes an entry, provided its name still leads to the file
    /// `expected` describes: a fresh lookup of the name (one round trip),
    /// then `unlink(_:)`.
    func unlink(_ name: EntryName, expected: FileIdentity) throws(FileSystemError) {
        let current: FileIdentity
        do throws(SystemCallError) {
            current = FileIdentity(try descriptor.cachedStatus(ofEntry: name.bytes))
        } catch {
            throw FileSystemError(.stat, path: path(of: name), cause: error)
        }
        guard current == expected else { throw FileSystemError(.unlink, path: path(of: name), condition: .replaced) }
        try unlink(name)
    }

    /// `unlinkat` through the directory descriptor, so nothing outside the
    /// directory can be reached whatever the name holds.
    func unlink(_ name: EntryName) throws(FileSystemError) {
        do throws(SystemCallError) {
            try descriptor.unlink(entry: name.bytes)
        } catch {
            throw FileSystemError(.unlink, path: path(of: name), cause: error)
        }
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let bytes = try? Syscall.currentDirectory() else { return path }
        let cwd = String(decoding: bytes, as: UTF8.self)
        return (cwd == "/" ? "" : cwd) + "/" + path
    }
}

/// Page-aligned memory for O_DIRECT reads, grown as needed and reused.
final class AlignedBuffer {
    /// The longest read the janitor makes: a 4096-byte-sector lease up to
    /// host 2000's dblock (2002 sectors), rounded up.
    static let maximumLength = 8 << 20
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

/// A name `readdir` listed, with the type it gave.
struct DirectoryEntry: Sendable, Hashable {
    public let name: EntryName
    public let type: EntryTypeHint

    public init(name: EntryName, type: EntryTypeHint = .unknown) {
        self.name = name
        self.type = type
    }
}
