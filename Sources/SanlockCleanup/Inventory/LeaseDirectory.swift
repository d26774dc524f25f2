import SystemCalls
import SystemPackage

/// The lease directory, held open. Every access to an entry goes through this
/// directory descriptor (`fstatat`, `openat`, `unlinkat`) with
/// `AT_SYMLINK_NOFOLLOW`/`O_NOFOLLOW`, so a symlink is never followed and a
/// name can never reach outside the directory, whatever it contains.
public final class LeaseDirectory: Sendable {
    /// The directory as configured, made absolute: sanlock opens leases by
    /// path, so this is the prefix of every path handed to the daemon.
    public let path: String
    private let descriptor: FileDescriptor
    /// Identity of the directory we opened, to check that `path` still
    /// names it when sanlock is about to open a lease through `path`.
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
    }

    deinit { descriptor.closeIgnoringErrors() }

    /// The absolute path of an entry, as sanlock must be given it (auto lease
    /// names are ASCII); other names are rendered escaped, for messages only.
    public func path(of name: EntryName) -> String {
        (path.hasSuffix("/") ? path : path + "/") + (name.string ?? name.escaped)
    }

    /// Every entry but `.` and `..`, sorted by name bytes.
    public func entryNames() throws(FileSystemError) -> [EntryName] {
        do throws(SystemCallError) {
            return try DirectoryStream(duplicating: descriptor).names().map(EntryName.init(bytes:)).sorted()
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
    public func symlinkTarget(of name: EntryName) -> String? {
        guard let target = try? descriptor.symlinkTarget(ofEntry: name.bytes) else { return nil }
        return String(decoding: target, as: UTF8.self)
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
        let (fd, _, direct) = try openEntry(name, .readOnly, [], expected: expected, failing: .open)
        defer { fd.closeIgnoringErrors() }
        let memory = buffer.reserve(length)
        let exact = UnsafeMutableRawBufferPointer(rebasing: memory[0..<length])
        var total = 0
        do throws(SystemCallError) {
            do throws(SystemCallError) {
                // O_DIRECT reads whole blocks: the whole (page-rounded) buffer.
                try fd.readFromStart(into: direct ? memory : exact, atLeast: length, count: &total)
            } catch where direct && error.errno == .invalidArgument {
                // Some file systems accept O_DIRECT at open but not our I/O size.
                try fd.readFromStart(into: exact, atLeast: length, count: &total)
            }
        } catch {
            throw FileSystemError(.read, path: path(of: name), cause: error)
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
        let (fd, status, _) = try openEntry(name, .writeOnly, .synchronous, expected: expected, failing: .write)
        defer { fd.closeIgnoringErrors() }
        guard status.linkCount == 1 else {
            throw FileSystemError(.write, path: path(of: name), condition: .hardLinked(links: UInt64(status.linkCount)))
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        do throws(SystemCallError) {
            try fd.writeFully(at: 0, UnsafeRawBufferPointer(buffer))
        } catch {
            throw FileSystemError(.write, path: path(of: name), cause: error)
        }
    }

    /// Opens an entry for `readPrefix` or `writePrefix`: with O_DIRECT where
    /// the file system takes it (tmpfs and some others refuse it: EINVAL),
    /// never following a symlink nor blocking on a FIFO, and only when it is
    /// still the regular file `expected` describes. Failures to open, and a
    /// replaced file, are reported as `operation`.
    private func openEntry(_ name: EntryName, _ mode: FileDescriptor.AccessMode, _ options: FileDescriptor.OpenOptions,
                      expected: FileIdentity, failing operation: FileSystemError.Operation)
        throws(FileSystemError) -> (FileDescriptor, Stat, direct: Bool) {
        let options = options.union([.noFollow, .nonBlocking, .closeOnExec, .noControllingTerminal])
        var direct = true
        let fd: FileDescriptor
        do throws(SystemCallError) {
            do throws(SystemCallError) {
                fd = try descriptor.open(entry: name.bytes, mode, options: options.union(.direct))
            } catch where error.errno == .invalidArgument {
                direct = false
                fd = try descriptor.open(entry: name.bytes, mode, options: options)
            }
        } catch {
            throw FileSystemError(operation, path: path(of: name), cause: error)
        }
        let status: Stat
        do throws(SystemCallError) {
            status = try fd.status()
        } catch {
            fd.closeIgnoringErrors()
            throw FileSystemError(.stat, path: path(of: name), cause: error)
        }
        guard FileIdentity(status) == expected, status.type == .regular else {
            fd.closeIgnoringErrors()
            throw FileSystemError(operation, path: path(of: name), condition: .replaced)
        }
        return (fd, status, direct)
    }

    /// Checks that the entry is still the file `expected` describes, both
    /// through the directory descriptor and through `path(of:)`: sanlock
    /// opens leases by path, so both must lead to the inode we act on.
    public func verifyPath(of name: EntryName, names expected: FileIdentity) throws(FileSystemError) {
        let current = try status(of: name)
        guard current.identity == expected else {
            throw FileSystemError(.stat, path: path(of: name), condition: .replaced)
        }
        let byPath = try? Syscall.status(ofPath: Array((path.hasSuffix("/") ? path : path + "/").utf8) + name.bytes,
                                         followSymlinks: false)
        guard let byPath, FileIdentity(byPath) == expected else {
            throw FileSystemError(.stat, path: path(of: name), condition: .pathMoved)
        }
    }

    /// Removes an entry, provided it is still the file `expected` describes
    /// (see `verifyPath`).
    public func unlink(_ name: EntryName, expected: FileIdentity) throws(FileSystemError) {
        try verifyPath(of: name, names: expected)
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
