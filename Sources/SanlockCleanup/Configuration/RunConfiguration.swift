/// Everything one run of the janitor needs to know, built once from the
/// lock manager's configuration file and the command line. Nothing below the
/// command line reads files or flags on its own.
public struct RunConfiguration: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, Codable {
        /// Delete what the decision nominates, each lease under its own lock.
        case clean
        /// Decide everything, change nothing; works without a daemon.
        case dryRun = "dry-run"
    }

    public var leaseDirectory: String
    public var mode: Mode
    /// Parallel sanlock connections (and scanning threads).
    public var jobs: Int
    /// `host_id` from the configuration file, if any.
    public var configuredHostID: UInt64?

    public init(leaseDirectory: String, mode: Mode, jobs: Int = RunConfiguration.defaultJobs, configuredHostID: UInt64? = nil) {
        self.leaseDirectory = leaseDirectory
        self.mode = mode
        self.jobs = max(1, jobs)
        self.configuredHostID = configuredHostID
    }

    /// Four connections was the knee measured on two cores (domain.md §5):
    /// the daemon's disk I/O is the floor beyond it.
    public static let defaultJobs = 4
}
