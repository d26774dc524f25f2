import SystemCalls
import SystemPackage

/// One janitor at a time per lease directory and host: an exclusive flock on
/// a file under /run, named after the directory's device and inode and the
/// sanlock daemon's run directory (`SANLOCK_RUN_DIR`: one daemon per host;
/// tests run several "hosts" on one machine). It is taken before the daemon
/// is asked anything, so that a second run exits at once even while the
/// daemon does not answer. Kept out of the lease directory on purpose:
/// nothing is written to the shared directory but lease deletions, and
/// janitors of different hosts may run at once (sanlock arbitrates every
/// lease between them). The kernel drops the lock when the process exits,
/// however it exits.
final class RunLock: Sendable {
    static let directory = "/run/virt-sanlock-cleanup"
    private let descriptor: FileDescriptor
    public let path: String

    private init(descriptor: FileDescriptor, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { descriptor.closeIgnoringErrors() }

    /// Why the lock was not taken.
    enum Failure: Error, Sendable {
        /// Another janitor holds it; what its lock file says of it.
        case held(by: String)
        case failed(FileSystemError)
    }

    static func acquire(leaseDirectory: FileIdentity) throws(Failure) -> RunLock {
        try acquire(in: directory, leaseDirectory: leaseDirectory, daemon: daemonName)
    }

    /// The daemon's run directory as a file name part: `run-DEV-INO`, or
    /// `run-none` when there is none (no daemon: the run will stop anyway).
    static var daemonName: String {
        let path = Syscall.environmentVariable("SANLOCK_RUN_DIR") ?? "/run/sanlock"
        guard let status = try? Syscall.status(ofPath: path.utf8) else { return "run-none" }
        let identity = FileIdentity(status)
        return "run-\(identity.device)-\(identity.inode)"
    }

    /// The lock file is truncated and rewritten (the holder's pid), so both
    /// the directory and the file are checked first: a directory that is a
    /// symlink, or writable by others, and a lock file that is not a regular
    /// file with one name owned by us, are refused rather than written
    /// through.
    static func acquire(in directory: String, leaseDirectory: FileIdentity, daemon: String) throws(Failure) -> RunLock {
        func failure(_ path: String, _ error: SystemCallError, _ operation: FileSystemError.Operation = .open) -> Failure {
            .failed(FileSystemError(operation, path: path, cause: error))
        }
        do throws(SystemCallError) {
            try Syscall.makeDirectory(atPath: directory.utf8, permissions: [.ownerReadWriteExecute])
        } catch {
            if error.errno != .fileExists { throw failure(directory, error, .makeDirectory) }
        }
        let directoryFD: FileDescriptor
        let status: Stat
        do throws(SystemCallError) {
            directoryFD = try .open(path: directory.utf8, .readOnly, options: [.directory, .noFollow, .closeOnExec])
        } catch {
            throw failure(directory, error)
        }
        defer { directoryFD.closeIgnoringErrors() }
        do throws(SystemCallError) {
            status = try directoryFD.status()
        } catch {
            throw failure(directory, error, .stat)
        }
        guard status.userID == Syscall.effectiveUserID(), status.permissions.isDisjoint(with: [.groupWrite, .otherWrite]) else {
            throw .failed(FileSystemError(.open, path: directory, condition: .untrustedDirectory))
        }

        let name = "lease-dir-\(leaseDirectory.device)-\(leaseDirectory.inode)-\(daemon).lock"
        let path = directory + "/" + name
        let fd: FileDescriptor
        let lockStatus: Stat
        do throws(SystemCallError) {
            fd = try directoryFD.open(entry: name.utf8, .readWrite,
                                      options: [.create, .noFollow, .nonBlocking, .noControllingTerminal, .closeOnExec],
                                      permissions: [.ownerReadWrite])
        } catch {
            throw failure(path, error)
        }
        do throws(SystemCallError) {
            lockStatus = try fd.status()
        } catch {
            fd.closeIgnoringErrors()
            throw failure(path, error, .stat)
        }
        guard lockStatus.type == .regular, lockStatus.linkCount == 1, lockStatus.userID == Syscall.effectiveUserID() else {
            fd.closeIgnoringErrors()
            throw .failed(FileSystemError(.open, path: path, condition: .untrustedLockFile))
        }
        do throws(SystemCallError) {
            try fd.lockExclusiveWithoutWaiting()
        } catch {
            let holder = Self.holder(fd)
            fd.closeIgnoringErrors()
            if error.errno == .wouldBlock { throw .held(by: holder) }
            throw failure(path, error, .lock)
        }
        // Say who holds it, for the message a second run prints.
        let text = Array("pid \(Syscall.processID())\n".utf8)
        _ = try? fd.truncate(toSize: 0)
        _ = text.withUnsafeBytes { try? fd.write(at: 0, $0) }
        return RunLock(descriptor: fd, path: path)
    }

    private static func holder(_ fd: FileDescriptor) -> String {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { (try? fd.read(at: 0, into: $0)) ?? -1 }
        guard count > 0 else { return "pid unknown" }
        return String(decoding: buffer[..<count], as: UTF8.self).trimming("\n").escapingControlCharacters()
    }
}
