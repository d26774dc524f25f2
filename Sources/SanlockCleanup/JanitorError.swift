import Sanlock
import SystemCalls

/// Conditions under which the janitor deletes nothing and exits non-zero.
public enum JanitorError: Error, Sendable, CustomStringConvertible {
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

    public var description: String {
        switch self {
        case .configuration(let error):
            return "configuration: \(error)"
        case .statusDirectoryMissing(let directory):
            return "--status-dir \(directory.escapingControlCharacters()): no such directory; without it its guests would go unseen"
        case .leaseDirectory(let error):
            return "lease directory: \(error)"
        case .daemonUnreachable(let error):
            return "cannot reach the sanlock daemon (\(error)); is sanlock running? (SANLOCK_RUN_DIR=\(Self.runDirectory))"
        case .daemonNotAnswering(let error):
            return "the sanlock daemon does not answer: no answer to \(error.operation.rawValue) within \(DaemonDeadline.seconds.formatted) s (stuck on its storage? stopped?); see sanlock's log (SANLOCK_RUN_DIR=\(Self.runDirectory))"
        case .sanlockPermissionDenied(let error):
            return "not allowed to talk to the sanlock daemon (\(error)); run as root"
        case .lockspaceNotJoined(let lockspace, let joined, let pending?):
            let others = joined.isEmpty ? "none" : joined.joined(separator: ", ")
            let phase = pending.phase == .joining ? "still joining" : "leaving"
            return "this host is \(phase) the lockspace \(lockspace) as host \(pending.hostID) and has not joined it (joined: \(others)); run again once it has (libvirtd joins it when it starts)"
        case .lockspaceNotJoined(let lockspace, let joined, nil):
            let others = joined.isEmpty ? "none" : joined.joined(separator: ", ")
            return "this host has not joined the lockspace \(lockspace) (joined: \(others)); is libvirtd running with the sanlock lock manager?"
        case .lockspaceJoinedElsewhere(let path, let offset):
            return "this host joined \(LeaseClassifier.lockspaceName) from \(path):\(offset), not from the lease directory's lockspace file"
        case .hostIDMismatch(let given, let joined):
            return "--host-id \(given) but this host joined \(LeaseClassifier.lockspaceName) as host \(joined)"
        case .guestsUnknown(let errors):
            let list = errors.prefix(5).map(\.description).joined(separator: "; ")
            let more = errors.count > 5 ? " (and \(errors.count - 5) more)" : ""
            return "cannot read libvirt's status XML, so a running or paused guest may go unseen: \(list)\(more)"
        case .retiringThisHost(let host):
            return "--retired-host \(host) is this host; retire a host from another one"
        case .retiredHostLive(let host, let state):
            return "host \(host) is \(state == .unknown ? "possibly live (just seen, state unknown)" : "live") in the lockspace; refusing to purge its leases (stop sanlock on it first)"
        case .anotherJanitorRunning(let holder):
            return "another virt-sanlock-cleanup is working on this lease directory (\(holder)); nothing done"
        case .runLock(let error):
            // The first thing a cleaning run does: a user who is not root
            // meets it before sanlock could say so.
            let root = Syscall.effectiveUserID().rawValue == 0 ? "" : "; run as root"
            return "cannot take the run lock: \(error)\(root)"
        case .interrupted(let signal, let stage):
            return "interrupted by signal \(signal) while \(stage) and still blocked there: stopped at once (no lease was left half-removed)"
        }
    }

    /// A short stable identifier for JSON.
    public var code: String {
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
