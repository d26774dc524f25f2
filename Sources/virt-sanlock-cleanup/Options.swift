import ArgumentParser
import SanlockCleanup

/// Where the leases are and who this host is.
struct SiteOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The lock manager configuration to read.", valueName: "path"))
    var config: String = LockManagerConfig.defaultPath

    @Option(name: .customLong("lease-dir"),
            help: ArgumentHelp("The lease directory; overrides disk_lease_dir from the configuration.", valueName: "dir"))
    var leaseDirectory: String?

    @Option(name: .customLong("host-id"),
            help: ArgumentHelp("This host's sanlock host id (1 to 2000), when the daemon cannot tell (overrides host_id).", valueName: "n"))
    var hostID: HostIDArgument?

    func validate() throws {
        if let leaseDirectory, leaseDirectory.isEmpty { throw ValidationError("--lease-dir must not be empty") }
    }
}

/// Where libvirt describes its guests.
struct GuestOptions: ParsableArguments {
    @Option(name: .customLong("status-dir"),
            help: ArgumentHelp(
                "A directory of libvirt status XML (running and paused guests), which must exist; repeatable. Default: /run/libvirt/qemu and /run/libvirt/libxl.",
                valueName: "dir"))
    var statusDirectories: [String] = []

    @Option(name: .customLong("config-dir"),
            help: ArgumentHelp(
                "A directory of persistent guest definitions, to name the disks of stopped guests; repeatable. Default: /etc/libvirt/qemu and /etc/libvirt/libxl.",
                valueName: "dir"))
    var configDirectories: [String] = []
}

/// What the run does, what it may delete, and how fast.
struct PolicyOptions: ParsableArguments {
    /// A cleaning run, unless one of these is given (at most one).
    enum ModeFlag: String, EnumerableFlag {
        case dryRun
        case audit

        static func name(for value: ModeFlag) -> NameSpecification {
            switch value {
            case .dryRun: [.customShort("n"), .customLong("dry-run")]
            case .audit: .customLong("audit")
            }
        }

        static func help(for value: ModeFlag) -> ArgumentHelp? {
            switch value {
            case .dryRun:
                "Decide everything, change nothing. Works without the sanlock daemon."
            case .audit:
                "Change nothing; prove instead that every disk of every running or paused guest here is protected by its lease, and say who holds what (exit status 4 when a disk is not). Needs the sanlock daemon."
            }
        }
    }

    @Flag(exclusivity: .exclusive)
    var modeFlag: ModeFlag?

    @Flag(name: .customLong("any-host"),
          help: "Delete free leases whichever host held them last, as the stock script does. Unsafe on a lease directory shared by several hosts: a guest paused on another host looks exactly like an abandoned lease.")
    var anyHost = false

    @Option(name: .customLong("retired-host"),
            help: ArgumentHelp(
                "Purge the leases last held by host N (1 to 2000), which has left for good (refused while N is live); repeatable.",
                valueName: "n"))
    var retiredHosts: [HostIDArgument] = []

    @Option(name: .customLong("min-age"),
            help: ArgumentHelp(
                "Keep leases changed more recently than this: a number with a unit s, m, h, d or w (e.g. 30m, 2h, 1h30m, 0). Default: \(DurationArgument.defaultMinimumAge.defaultValueDescription).",
                valueName: "duration"))
    var minimumAge: DurationArgument?

    @Option(name: [.customShort("j"), .long],
            help: ArgumentHelp(
                "Parallel sanlock connections of a cleaning run (1 to 64). Default: one per worker thread of the sanlock daemon (its max_worker_threads, 8 unless set), 4 without a daemon.",
                valueName: "n"))
    var jobs: JobCount?

    @Option(name: .customLong("daemon-timeout"),
            help: ArgumentHelp(
                "The longest to wait for one answer of the sanlock daemon (a duration, e.g. 30s, 2m). A daemon that has not answered by then is not answering: a cleaning run stops (exit status 1 before any deletion; after, the leases not done fail untouched, exit status 2), --audit stops (exit status 1), a dry run reports from disk.",
                valueName: "duration"))
    var daemonTimeout: DurationArgument = .defaultDaemonTimeout

    /// An option that does not apply to the chosen mode is an error, not
    /// silently ignored.
    func validate() throws {
        if anyHost, !retiredHosts.isEmpty { throw ValidationError("--any-host and --retired-host cannot be combined") }
        if mode == .audit {
            let cleaningOnly = [(anyHost, "--any-host"), (!retiredHosts.isEmpty, "--retired-host"),
                                (minimumAge != nil, "--min-age"), (jobs != nil, "--jobs")]
            if let (_, option) = cleaningOnly.first(where: \.0) {
                throw ValidationError("--audit deletes nothing: \(option) does not apply to it")
            }
        }
        if mode == .dryRun, jobs != nil {
            throw ValidationError("--dry-run opens no sanlock connection: --jobs applies to cleaning runs only")
        }
        if daemonTimeout.seconds < 1 { throw ValidationError("--daemon-timeout must be at least 1s") }
    }

    var mode: RunConfiguration.Mode {
        switch modeFlag {
        case nil: .clean
        case .dryRun: .dryRun
        case .audit: .audit
        }
    }

    var deletionPolicy: DeletionPolicy {
        DeletionPolicy(anyHost: anyHost, retiredHosts: Set(retiredHosts.map(\.value)),
                       minimumAge: (minimumAge ?? .defaultMinimumAge).seconds)
    }
}

/// How the run reports.
struct OutputOptions: ParsableArguments {
    @Option(help: "Report format: text or json.")
    var format: ReportFormat = .text

    @Flag(name: .shortAndLong, help: "Print only errors (as the stock script does).")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log each step on stderr.")
    var verbose = false

    @Option(name: .customLong("metrics-file"),
            help: ArgumentHelp(
                "Write node_exporter textfile-collector metrics to this file (atomically), e.g. /var/lib/prometheus/node-exporter/virt-sanlock-cleanup.prom.",
                valueName: "path"))
    var metricsFile: String?
}
