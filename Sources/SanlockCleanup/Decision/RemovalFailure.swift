import Sanlock

/// Why a removal the rules asked for did not happen: sanlock refused the
/// lease, the file changed, the run was stopped, or a step failed (and what
/// the path holds after it).
public enum RemovalFailure: Sendable, Hashable {
    /// Acquired by someone else between the scan and our acquire.
    case usedDuringRun(scannedLVer: UInt64, lver: UInt64)
    /// An unacquirable file changed between the scan and its removal (libvirt
    /// finished making it, or someone rewrote it): looked at again next run.
    case changedDuringRun
    case acquireBusy(SanlockError)
    case lockspaceNotJoined(SanlockError)
    case acquireFailed(SanlockError)
    /// The leader could not be invalidated; `now` says what the path holds.
    case invalidateFailed(FileSystemError, now: PathState)
    case replacedBeforeDeletion(FileSystemError)
    /// The lease was invalidated but could not be unlinked; `now` says what
    /// the path holds.
    case unlinkFailed(FileSystemError, now: PathState)
    /// An unacquirable (uninitialised or invalidated) file could not be
    /// unlinked; it is unchanged.
    case removeFailed(FileSystemError)
    case connectionFailed(SanlockError)
    /// The daemon did not answer within the deadline (`SanlockCode.noAnswer`),
    /// to this lease's call or to an earlier one: the lease is untouched (a
    /// late grant is released when the process exits), and no other lease
    /// is tried.
    case daemonNotAnswering(SanlockError)
    /// Not attempted: a signal asked the run to stop.
    case interrupted(signal: Int32)

    var code: String {
        switch self {
        case .usedDuringRun: "used-during-run"
        case .changedDuringRun: "changed-during-run"
        case .acquireBusy: "acquire-busy"
        case .lockspaceNotJoined: "lockspace-not-joined"
        case .acquireFailed: "acquire-failed"
        case .invalidateFailed: "invalidate-failed"
        case .replacedBeforeDeletion: "replaced"
        case .unlinkFailed, .removeFailed: "unlink-failed"
        case .connectionFailed: "connection-failed"
        case .daemonNotAnswering: "daemon-not-answering"
        case .interrupted: "interrupted"
        }
    }

    var errorCode: Int32? {
        switch self {
        case .acquireBusy(let error), .lockspaceNotJoined(let error), .acquireFailed(let error),
             .connectionFailed(let error), .daemonNotAnswering(let error):
            error.code.rawValue
        case .replacedBeforeDeletion(let error), .unlinkFailed(let error, _), .removeFailed(let error),
             .invalidateFailed(let error, _):
            error.errno?.rawValue
        case .usedDuringRun, .changedDuringRun, .interrupted:
            nil
        }
    }
}

/// What a path holds after a removal that did not finish.
public enum PathState: Sendable, Hashable {
    /// The lease as it was, released: usable by its guest.
    case intact
    /// The lease, invalidated: no host can acquire it; this host's next run
    /// removes it.
    case invalidated
    /// Another file than the lease this run examined.
    case replaced
    /// Nothing.
    case gone
    /// Something else (re-examining it failed, or it holds an unexpected
    /// leader): what it is, as a reason to keep it.
    indirect case unknown(Reason)
}
