import Sanlock
import SystemCalls

// What stops a run and what a run reports without stopping, in words: the
// messages of `JanitorError` and `RunWarning` (log lines, the JSON error).

extension JanitorError: CustomStringConvertible {
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
}

extension RunWarning: CustomStringConvertible {
    public var description: String {
        switch self {
        case .autoDiskLeasesOff(let file):
            return "auto_disk_leases is off in \(file.escapingControlCharacters()): libvirt makes no disk leases while it is, so the leases here are from before (or made by hand)"
        case .wouldStopCleaning(let error):
            return "\(error.description); \(Self.dryRunConsequence(of: error))"
        case .configuredHostIDDiffers(let configured, let joined, let lockspace):
            return "host_id in the configuration is \(configured) but this host joined \(lockspace) as host \(joined); using \(joined)"
        case .hostLivenessUnreadable(let error):
            return "cannot read host liveness from sanlock (\(error)): leases held by any host are kept"
        case .noLockspaceFile(let directory):
            return "no lockspace file \(LeaseClassifier.lockspaceName) in \(directory): no host has joined this lease directory"
        case .lockspaceFileInvalid(let path):
            return "\(path) is not a valid sanlock lockspace; reading every host's mode block of each lease"
        case .lockspaceFileUnreadable(let error):
            return "cannot read the lockspace file: \(error)"
        case .guestDefinitionIgnored(let error):
            return "guest definition ignored: \(error)"
        case .staleGuestStatus(let guest):
            return "stale status file \(guest.file): guest \(guest.name.escapingControlCharacters()) is \(guest.state.rawValue) but its process \(guest.pid.map(String.init) ?? "") is gone; its leases are kept until the file goes (restarting libvirtd removes it; or remove it once the guest is known to be gone)"
        case .retiredHostLivenessUnknown(let host):
            return "host \(host)'s liveness is unknown without the sanlock daemon"
        case .retiredHostFailing(let host):
            return "host \(host) is failing: sanlock declares it dead within 60 s (8 × io_timeout + 60 s after its last renewal); its leases are kept until then: run again after that"
        case .retiredHostStateUnknown(let host):
            return "sanlock could not tell host \(host)'s state; its held leases are kept"
        case .auditLimited(let error):
            return error.description
        }
    }

    /// What a dry run does instead of stopping.
    private static func dryRunConsequence(of error: JanitorError) -> String {
        switch error {
        case .hostIDMismatch(_, let joined): "using \(joined)"
        case .guestsUnknown: "a cleaning run would delete nothing"
        case .retiredHostLive: "showing what would be purged"
        default: "reporting from the leases on disk only"
        }
    }
}
