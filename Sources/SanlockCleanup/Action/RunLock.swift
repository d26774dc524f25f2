#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// One janitor at a time per lease directory and host: an exclusive flock on
/// a file under /run, named after the directory's device and inode and this
/// host's id. Kept out of the lease directory on purpose: nothing is written
/// to the shared directory but lease deletions, and janitors of different
/// hosts may run at once (sanlock arbitrates every lease between them). The
/// kernel drops the lock when the process exits, however it exits.
public final class RunLock: Sendable {
    public static let directory = "/run/virt-sanlock-cleanup"
    private let descriptor: Int32
    public let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    public static func acquire(leaseDirectory: FileIdentity, hostID: UInt64?) throws(JanitorError) -> RunLock {
        try acquire(in: directory, leaseDirectory: leaseDirectory, hostID: hostID)
    }

    /// The lock file is truncated and rewritten (the holder's pid), so both
    /// the directory and the file are checked first: a directory that is a
    /// symlink, or writable by others, and a lock file that is not a regular
    /// file with one name owned by us, are refused rather than written
    /// through.
    static func acquire(in directory: String, leaseDirectory: FileIdentity, hostID: UInt64?) throws(JanitorError) -> RunLock {
        func failure(_ path: String, _ code: Int32) -> JanitorError {
            .runLock(FileSystemError(.open, path: path, errno: Errno(rawValue: code)))
        }
        if mkdir(directory, 0o700) != 0, errno != EEXIST { throw failure(directory, errno) }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryFD >= 0 else { throw failure(directory, errno) }
        defer { close(directoryFD) }
        var status = stat()
        guard fstat(directoryFD, &status) == 0 else { throw failure(directory, errno) }
        guard status.st_uid == geteuid(), status.st_mode & 0o022 == 0 else {
            throw .runLock(FileSystemError(.open, path: directory, errno: .permissionDenied,
                                           detail: "not owned by this user, or writable by others: refusing to lock through it"))
        }

        let name = "lease-dir-\(leaseDirectory.device)-\(leaseDirectory.inode)-host-\(hostID.map(String.init) ?? "unknown").lock"
        let path = directory + "/" + name
        let fd = openat(directoryFD, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure(path, errno) }
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw failure(path, code)
        }
        guard status.st_mode & S_IFMT == S_IFREG, status.st_nlink == 1, status.st_uid == geteuid() else {
            close(fd)
            throw .runLock(FileSystemError(.open, path: path, errno: .permissionDenied,
                                           detail: "not a regular file with one name owned by this user: remove it"))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            let holder = Self.holder(fd)
            close(fd)
            if error == EWOULDBLOCK { throw .anotherJanitorRunning(holder: holder) }
            throw failure(path, error)
        }
        // Say who holds it, for the message a second run prints.
        let text = Array("pid \(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return RunLock(descriptor: fd, path: path)
    }

    private static func holder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return "pid unknown" }
        return String(decoding: buffer[..<count], as: UTF8.self).trimming("\n").escapingControlCharacters()
    }
}
