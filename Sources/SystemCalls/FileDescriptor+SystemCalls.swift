#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import CLinux
import SystemPackage

extension FileDescriptor.OpenOptions {
    /// `O_NOCTTY`: opening a terminal never makes it the controlling one.
    public static var noControllingTerminal: Self { Self(rawValue: O_NOCTTY) }

    /// `O_SYNC`: a write returns once the data is on the storage
    /// (swift-system names it only on Darwin).
    public static var synchronous: Self { Self(rawValue: O_SYNC) }

    /// `O_DIRECT`, as glibc's header defines it for this architecture (Swift
    /// does not import it: see CLinux).
    public static var direct: Self { Self(rawValue: clinux_O_DIRECT) }
}

/// File operations as the janitor makes them: every one is the C call its
/// name says, once, through the funnel (`systemCall`), and none retries
/// EINTR except the byte loops at the end. Names and paths are bytes.
extension FileDescriptor {
    /// `open`: a path, relative to the working directory unless absolute.
    public static func open(
        path: some Sequence<UInt8>, _ mode: AccessMode, options: OpenOptions, permissions: FilePermissions? = nil
    ) throws(SystemCallError) -> FileDescriptor {
        let flags = mode.rawValue | options.rawValue
        return try withCString(path) { path in
            valueOrErrno("open") {
                if let permissions { Glibc.open(path, flags, permissions.rawValue) } else { Glibc.open(path, flags) }
            }
        }.map(FileDescriptor.init(rawValue:)).get()
    }

    /// `openat`: an entry of this directory.
    public func open(
        entry name: some Sequence<UInt8>, _ mode: AccessMode, options: OpenOptions, permissions: FilePermissions? = nil
    ) throws(SystemCallError) -> FileDescriptor {
        let flags = mode.rawValue | options.rawValue
        return try withCString(name) { name in
            valueOrErrno("openat") {
                if let permissions { openat(rawValue, name, flags, permissions.rawValue) } else { openat(rawValue, name, flags) }
            }
        }.map(FileDescriptor.init(rawValue:)).get()
    }

    /// `fstat`.
    public func status() throws(SystemCallError) -> Stat {
        var status = Glibc.stat()
        return try valueOrErrno("fstat") { fstat(rawValue, &status) }.map { _ in Stat(rawValue: status) }.get()
    }

    /// `fstatat` of an entry of this directory, never following a symlink.
    public func status(ofEntry name: some Sequence<UInt8>) throws(SystemCallError) -> Stat {
        var status = Glibc.stat()
        return try withCString(name) { name in
            valueOrErrno("fstatat") { fstatat(rawValue, name, &status, AT_SYMLINK_NOFOLLOW) }
        }.map { _ in Stat(rawValue: status) }.get()
    }

    /// The file's attributes as the kernel holds them (`statx` with
    /// `AT_STATX_DONT_SYNC`, see CLinux): no round trip to a network file
    /// system. Only right after the open or lookup that fetched them are
    /// they as fresh as `status()`'s.
    public func cachedStatus() throws(SystemCallError) -> Stat {
        var status = Glibc.stat()
        return try valueOrErrno("statx") { clinux_stat_cached(rawValue, "", &status) }
            .map { _ in Stat(rawValue: status) }.get()
    }

    /// An entry's attributes after a fresh lookup of its name (a network
    /// file system revalidates the name: one round trip), the file's own
    /// attributes as that lookup left them (`statx` with
    /// `AT_STATX_DONT_SYNC`), never following a symlink.
    public func cachedStatus(ofEntry name: some Sequence<UInt8>) throws(SystemCallError) -> Stat {
        var status = Glibc.stat()
        return try withCString(name) { name in
            valueOrErrno("statx") { clinux_stat_cached(rawValue, name, &status) }
        }.map { _ in Stat(rawValue: status) }.get()
    }

    /// `fstatfs`: the file system's type (`f_type`, e.g. NFS_SUPER_MAGIC).
    public func fileSystemType() throws(SystemCallError) -> Int64 {
        var type: Int64 = 0
        return try valueOrErrno("fstatfs") { clinux_filesystem_type(rawValue, &type) }.map { _ in type }.get()
    }

    /// `readlinkat`: the target of a symlink entry, cut at PATH_MAX bytes.
    public func symlinkTarget(ofEntry name: some Sequence<UInt8>) throws(SystemCallError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = try withCString(name) { name in
            buffer.withUnsafeMutableBytes { raw in
                valueOrErrno("readlinkat") { readlinkat(rawValue, name, raw.baseAddress!, raw.count - 1) }
            }
        }.get()
        return Array(buffer[..<count])
    }

    /// `unlinkat` of an entry of this directory (not a directory: flags 0).
    public func unlink(entry name: some Sequence<UInt8>) throws(SystemCallError) {
        _ = try withCString(name) { name in valueOrErrno("unlinkat") { unlinkat(rawValue, name, 0) } }.get()
    }

    /// `flock(LOCK_EX | LOCK_NB)`: `.wouldBlock` when another holds it.
    public func lockExclusiveWithoutWaiting() throws(SystemCallError) {
        _ = try valueOrErrno("flock") { flock(rawValue, LOCK_EX | LOCK_NB) }.get()
    }

    /// `ftruncate`.
    public func truncate(toSize size: Int64) throws(SystemCallError) {
        _ = try valueOrErrno("ftruncate") { ftruncate(rawValue, off_t(size)) }.get()
    }

    /// `fsync`.
    public func synchronize() throws(SystemCallError) {
        _ = try valueOrErrno("fsync") { fsync(rawValue) }.get()
    }

    /// `close`, for a caller that needs to know whether data written
    /// through the descriptor reached the file. Never retried: Linux frees
    /// the descriptor even when close fails, EINTR included.
    public func closeReportingErrors() throws(SystemCallError) {
        _ = try valueOrErrno("close") { Glibc.close(rawValue) }.get()
    }

    /// `close`, when nothing depends on its result (read-only descriptors,
    /// directories, sockets, and error paths).
    public func closeIgnoringErrors() {
        _ = Glibc.close(rawValue)
    }

    /// `isatty`.
    public var isTerminal: Bool { isatty(rawValue) == 1 }

    /// One `read` into `buffer`: the count read, 0 at the end of the file.
    public func read(into buffer: UnsafeMutableRawBufferPointer, retryOnInterrupt: Bool = false) throws(SystemCallError) -> Int {
        try valueOrErrno("read", retryOnInterrupt: retryOnInterrupt) {
            Glibc.read(rawValue, buffer.baseAddress, buffer.count)
        }.get()
    }

    /// One `pread` at `offset`.
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer,
                     retryOnInterrupt: Bool = false) throws(SystemCallError) -> Int {
        try valueOrErrno("pread", retryOnInterrupt: retryOnInterrupt) {
            Glibc.pread(rawValue, buffer.baseAddress, buffer.count, off_t(offset))
        }.get()
    }

    /// One `pwrite` at `offset`: the count written, perhaps short.
    public func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer,
                      retryOnInterrupt: Bool = false) throws(SystemCallError) -> Int {
        try valueOrErrno("pwrite", retryOnInterrupt: retryOnInterrupt) {
            Glibc.pwrite(rawValue, bytes.baseAddress, bytes.count, off_t(offset))
        }.get()
    }

    // MARK: Byte loops: all bytes, EINTR retried

    /// `pread` of the file from its start into `buffer`, at file offset =
    /// buffer offset, continuing after the `count` bytes already there,
    /// until at least `minimum` bytes are in or the file ends. On an error
    /// `count` says how far it got, so that a caller can go on differently
    /// (O_DIRECT refused mid-way).
    public func readFromStart(into buffer: UnsafeMutableRawBufferPointer, atLeast minimum: Int,
                              count: inout Int) throws(SystemCallError) {
        while count < minimum {
            let got = try read(at: Int64(count), into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]),
                               retryOnInterrupt: true)
            if got == 0 { return }
            count += got
        }
    }

    /// `pwrite` of all of `bytes` at `offset`. A write that takes nothing
    /// fails with EIO.
    public func writeFully(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            let count = try write(at: offset + Int64(written), UnsafeRawBufferPointer(rebasing: bytes[written...]),
                                  retryOnInterrupt: true)
            guard count > 0 else { throw SystemCallError("pwrite", errno: .ioError) }
            written += count
        }
    }

    /// `write` of all of `bytes` (at the descriptor's offset: stdout, stderr,
    /// a new file). A write that takes nothing fails with EIO.
    public func writeFully(_ bytes: some Sequence<UInt8>) throws(SystemCallError) {
        try (bytes.withContiguousStorageIfAvailable { writeLoop(UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { writeLoop($0) }).get()
    }

    private func writeLoop(_ bytes: UnsafeRawBufferPointer) -> Result<Void, SystemCallError> {
        var offset = 0
        while offset < bytes.count {
            let result = valueOrErrno("write", retryOnInterrupt: true) {
                Glibc.write(rawValue, bytes.baseAddress! + offset, bytes.count - offset)
            }
            switch result {
            case .failure(let error): return .failure(error)
            case .success(0): return .failure(SystemCallError("write", errno: .ioError))
            case .success(let count): offset += count
            }
        }
        return .success(())
    }
}
