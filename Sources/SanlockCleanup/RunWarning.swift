import Sanlock

/// Something a run reports without stopping: a problem a dry run works
/// around, or a fact that limits what the run could know.
public enum RunWarning: Sendable, CustomStringConvertible {
    /// The configuration file leaves `auto_disk_leases` off.
    case autoDiskLeasesOff(configurationFile: String)
    /// A dry run went on past a problem that stops a cleaning run.
    case wouldStopCleaning(JanitorError)
    /// `host_id` in the configuration is not the id this host joined with.
    case configuredHostIDDiffers(configured: UInt64, joined: UInt64, lockspace: String)
    case hostLivenessUnreadable(SanlockError)
    case noLockspaceFile(leaseDirectory: String)
    case lockspaceFileInvalid(path: String)
    case lockspaceFileUnreadable(FileSystemError)
    case guestDefinitionIgnored(GuestSourceError)
    /// A status file names an active guest whose process is gone.
    case staleGuestStatus(Guest)
    /// `--retired-host` in a dry run without a daemon.
    case retiredHostLivenessUnknown(UInt64)
    case retiredHostFailing(UInt64)
    case retiredHostStateUnknown(UInt64)
    /// A problem that limits what an audit can prove (it does not stop it).
    case auditLimited(JanitorError)

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

/// The warnings of a run, and the rule that makes it fail closed: a problem
/// stops a cleaning run before it deletes anything, while a dry run reports
/// it and goes on from what can be known.
public struct RunFindings: Sendable {
    public let cleaning: Bool
    public private(set) var warnings: [RunWarning] = []

    public init(cleaning: Bool) { self.cleaning = cleaning }

    public mutating func warn(_ warning: RunWarning) { warnings.append(warning) }

    public mutating func problem(_ error: JanitorError) throws(JanitorError) {
        if cleaning { throw error }
        warnings.append(.wouldStopCleaning(error))
    }
}
