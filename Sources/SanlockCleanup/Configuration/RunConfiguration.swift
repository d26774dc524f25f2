import Sanlock

/// Everything one run of the janitor needs to know, built once from the
/// lock manager's configuration file and the command line. Nothing below the
/// command line reads files or flags on its own.
public struct RunConfiguration: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, Codable {
        /// Delete what the decision nominates, each lease under its own lock.
        case clean
        /// Decide everything, change nothing; works without a daemon.
        case dryRun = "dry-run"
        /// `--audit`: judge every active guest's disks, change nothing.
        case audit
    }

    public var leaseDirectory: String
    public var mode: Mode
    /// Parallel sanlock connections; nil: as many as the daemon has worker
    /// threads (`jobs(daemonWorkers:)`).
    public var jobs: Int?
    /// The longest any call waits for the sanlock daemon (`DaemonDeadline`).
    public var daemonTimeout: Double
    /// `host_id` from the configuration file, if any.
    public var configuredHostID: UInt64?
    /// `--host-id`: this host's id when the daemon cannot tell.
    var hostIDOverride: UInt64?
    /// Status XML of running and paused guests.
    public var statusDirectories: [String]
    /// Persistent guest definitions, to name the disks of stopped guests.
    public var configDirectories: [String]
    var policy: DeletionPolicy
    /// The configuration file, when it exists and leaves `auto_disk_leases`
    /// off: libvirt then makes no disk leases, and a run says so.
    public var autoDiskLeasesOffIn: String?

    public init(
        leaseDirectory: String, mode: Mode, jobs: Int? = nil, daemonTimeout: Double = RunConfiguration.defaultDaemonTimeout,
        configuredHostID: UInt64? = nil, hostIDOverride: UInt64? = nil,
        statusDirectories: [String] = RunConfiguration.defaultStatusDirectories,
        configDirectories: [String] = RunConfiguration.defaultConfigDirectories,
        policy: DeletionPolicy = DeletionPolicy(), autoDiskLeasesOffIn: String? = nil
    ) {
        self.leaseDirectory = leaseDirectory
        self.mode = mode
        self.jobs = jobs.map { max(1, $0) }
        self.daemonTimeout = daemonTimeout
        self.configuredHostID = configuredHostID
        self.hostIDOverride = hostIDOverride
        self.statusDirectories = statusDirectories
        self.configDirectories = configDirectories
        self.policy = policy
        self.autoDiskLeasesOffIn = autoDiskLeasesOffIn
    }

    /// Without a daemon to ask: four connections was the knee measured on a
    /// local disk on two cores (docs/performance.md).
    static let defaultJobs = 4

    /// Where libvirt writes the status XML of running and paused guests
    /// (QEMU/KVM, Xen); either may be missing.
    public static let defaultStatusDirectories = ["/run/libvirt/qemu", "/run/libvirt/libxl"]
    /// Where libvirt keeps persistent guest definitions.
    public static let defaultConfigDirectories = ["/etc/libvirt/qemu", "/etc/libvirt/libxl"]

    /// See `DaemonDeadline`.
    public static let defaultDaemonTimeout = DaemonDeadline.defaultSeconds

    /// Threads that scan the directory. The scan asks no daemon, and on NFS
    /// each lease costs it round trips that only parallelism hides: more
    /// than the daemon's connections, as NFS clients keep dozens of requests
    /// in flight.
    static let scanThreads = 16

    /// Parallel sanlock connections for a cleaning run: `--jobs`, else one
    /// per worker thread of the daemon (`max_worker_threads`, 8 by default:
    /// a connection has one request in flight, and the daemon serves as many
    /// at once as it has workers), else `defaultJobs`.
    public func jobs(daemonWorkers: Int?) -> Int {
        jobs ?? daemonWorkers.map { min(max($0, 1), 64) } ?? Self.defaultJobs
    }
}

/// The knobs of the keep-or-delete rules.
public struct DeletionPolicy: Sendable, Hashable {
    /// Delete free leases whoever held them last (the stock script's
    /// behaviour; unsafe on a shared directory, where a guest paused on
    /// another host looks exactly like an abandoned lease).
    public var anyHost: Bool
    /// Retirement: only leases last held by these hosts are considered.
    public var retiredHosts: Set<UInt64>
    /// Keep files changed more recently than this (seconds): libvirt creates
    /// a lease moments before acquiring it.
    var minimumAge: Double

    public init(anyHost: Bool = false, retiredHosts: Set<UInt64> = [], minimumAge: Double = DeletionPolicy.defaultMinimumAge) {
        self.anyHost = anyHost
        self.retiredHosts = retiredHosts
        self.minimumAge = minimumAge
    }

    /// One hour: libvirt creates a lease and acquires it within seconds of
    /// a guest starting; an hour leaves a wide margin for slow starts and
    /// clock skew between NFS clients and server, and costs nothing for a
    /// janitor that runs weekly.
    public static let defaultMinimumAge: Double = 3600
}
