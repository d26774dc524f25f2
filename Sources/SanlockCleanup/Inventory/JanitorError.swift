import Sanlock
import SystemCalls

/// Conditions under which the janitor deletes nothing and exits non-zero.
public enum JanitorError: Error, Sendable {
    /// The lock manager's configuration file is unreadable or malformed.
    case configuration(ConfigurationError)
    /// A `--status-dir` that does not exist: its guests would go unseen.
    case statusDirectoryMissing(String)
    case leaseDirectory(FileSystemError)
    case daemonUnreachable(SanlockError)
    /// The daemon took a connection but did not answer within the deadline
    /// (stuck on its storage, or stopped).
    case daemonNotAnswering(SanlockError)
    case sanlockPermissionDenied(SanlockError)
    /// `pending`: the daemon is still joining (or leaving) the lockspace.
    case lockspaceNotJoined(lockspace: String, joined: [String], pending: JoinedLockspace?)
    case lockspaceJoinedElsewhere(path: String, offset: UInt64)
    /// `--host-id` says one thing, the joined lockspace another.
    case hostIDMismatch(given: UInt64, joined: UInt64)
    /// A status directory or file could not be read: a live guest's disks
    /// may be missing from what we know.
    case guestsUnknown([GuestSourceError])
    case retiringThisHost(UInt64)
    case retiredHostLive(UInt64, HostState)
    /// Another janitor is working on this lease directory for this host.
    case anotherJanitorRunning(holder: String)
    case runLock(FileSystemError)
    /// A signal asked the run to stop while it was blocked in `stage` (a
    /// hung daemon, a dead NFS server): it ended there, with no lease
    /// half-removed.
    case interrupted(signal: Int32, stage: RunControl.Stage)

    /// A short stable identifier for JSON.
    var code: String {
        switch self {
        case .configuration, .statusDirectoryMissing: "configuration"
        case .leaseDirectory: "lease-directory"
        case .daemonUnreachable: "daemon-unreachable"
        case .daemonNotAnswering: "daemon-not-answering"
        case .sanlockPermissionDenied: "permission-denied"
        case .lockspaceNotJoined: "lockspace-not-joined"
        case .lockspaceJoinedElsewhere: "lockspace-joined-elsewhere"
        case .hostIDMismatch: "host-id-mismatch"
        case .guestsUnknown: "guests-unknown"
        case .retiringThisHost: "retiring-this-host"
        case .retiredHostLive: "retired-host-live"
        case .anotherJanitorRunning: "another-janitor-running"
        case .runLock: "run-lock"
        case .interrupted: "interrupted"
        }
    }

    /// The process exit status for this error.
    public var exitStatus: ExitStatus {
        if case .anotherJanitorRunning = self { return .busy }
        return .fatal
    }

    /// The process exit code: `exitStatus`, or 128 + N after signal N.
    public var exitCode: Int32 {
        if case .interrupted(let signal, _) = self { return ExitStatus.interrupted(by: signal) }
        return exitStatus.rawValue
    }

    static var runDirectory: String {
        Syscall.environmentVariable("SANLOCK_RUN_DIR") ?? "/run/sanlock"
    }
}
