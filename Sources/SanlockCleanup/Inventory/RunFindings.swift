import Sanlock

/// Something a run reports without stopping: a problem a dry run works
/// around, or a fact that limits what the run could know.
public enum RunWarning: Sendable {
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
}

/// The warnings of a run, and the rule that makes it fail closed: a problem
/// stops a cleaning run before it deletes anything, while a dry run reports
/// it and goes on from what can be known.
struct RunFindings: Sendable {
    let cleaning: Bool
    public private(set) var warnings: [RunWarning] = []

    public init(cleaning: Bool) { self.cleaning = cleaning }

    mutating func warn(_ warning: RunWarning) { warnings.append(warning) }

    mutating func problem(_ error: JanitorError) throws(JanitorError) {
        if cleaning { throw error }
        warnings.append(.wouldStopCleaning(error))
    }
}
