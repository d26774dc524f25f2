import SystemCalls
import SystemPackage

/// A file-system operation that failed, in the manner of swift-nio's
/// `FileSystemError`: what was attempted on which path, a `code` saying
/// what went wrong, and the failed system call as the `cause` when there
/// is one. What the janitor finds wrong without any call failing (a file
/// replaced under it, a hard link) is a code of its own, never an errno.
public struct FileSystemError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Operation: String, Sendable, Hashable {
        case openDirectory = "open directory"
        case readDirectory = "read directory"
        case stat
        case open
        case read
        case write
        case unlink
        case makeDirectory = "create directory"
        case lock
    }

    public enum Code: Sendable, Hashable {
        /// A system call failed with this errno.
        case systemCall(Errno)
        /// The name now leads to another file than the one examined.
        case replaced
        /// The name led to another file when it was unlinked: that file was
        /// removed, not the one examined.
        case replacedAtUnlink
        /// The lease directory's path no longer leads to the file examined
        /// through the directory descriptor (sanlock opens leases by path).
        case pathMoved
        /// The file has other names: writing it would change it there too.
        case hardLinked(links: UInt64)
        /// Fewer bytes than a leader sector.
        case shortSector
        /// The run lock's directory is not owned by this user, or is
        /// writable by others.
        case untrustedDirectory
        /// The run lock file is not a regular file with one name owned by
        /// this user.
        case untrustedLockFile
    }

    public let operation: Operation
    public let path: String
    let code: Code
    /// The system call that failed, when one did and the layer said which.
    public let cause: SystemCallError?

    /// A failed system call.
    public init(_ operation: Operation, path: String, cause: SystemCallError) {
        self.init(operation, path, .systemCall(cause.errno), cause)
    }

    /// A failed call known only by its errno.
    public init(_ operation: Operation, path: String, errno: Errno) {
        self.init(operation, path, .systemCall(errno), nil)
    }

    /// Something found wrong without a call failing.
    public init(_ operation: Operation, path: String, condition: Code) {
        self.init(operation, path, condition, nil)
    }

    private init(_ operation: Operation, _ path: String, _ code: Code, _ cause: SystemCallError?) {
        (self.operation, self.path, self.code, self.cause) = (operation, path, code, cause)
    }

    /// The failed call's errno; nil for the janitor's own findings.
    public var errno: Errno? {
        if case .systemCall(let errno) = code { return errno }
        return nil
    }

    /// What went wrong, in words: the errno's text, or the finding's.
    var message: String {
        switch code {
        case .systemCall(let errno): errno.description
        case .replaced: "replaced by another file"
        case .replacedAtUnlink: "the name led to another file when it was unlinked, which was removed in its place"
        case .pathMoved: "the lease directory path no longer leads to this file"
        case .hardLinked(let links): "has \(links) hard links: never written, so that nothing outside the lease directory changes"
        case .shortSector: "shorter than a leader sector"
        case .untrustedDirectory: "not owned by this user, or writable by others: refusing to lock through it"
        case .untrustedLockFile: "not a regular file with one name owned by this user: remove it"
        }
    }

    /// Paths come from the configuration and the directory: escaped, so a
    /// message stays one printable line.
    public var description: String {
        "\(operation.rawValue) \(path.escapingControlCharacters()): \(message)"
    }
}
