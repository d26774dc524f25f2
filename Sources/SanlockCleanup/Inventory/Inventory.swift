import Logging
import Sanlock
import Synchronization
import SystemCalls

/// The facts the decision works from: every entry of the lease directory,
/// the guests libvirt describes, and sanlock's liveness of every host a
/// lease names.
struct Inventory: Sendable {
    let entries: [LeaseEntry]
    /// For a cleaning run, the lease files it may remove, held open from the
    /// scan (nil: not removable, or over the budget of open files, then
    /// opened again for the removal); same order as `entries`.
    let files: [LeaseFile?]
    public let guests: GuestInventory
    /// sanlock's liveness per host, every host a lease names included;
    /// nil without a daemon.
    let hosts: [UInt64: SanlockHost]?

    /// The leases first, then the guests: a guest that starts (and maybe
    /// pauses) after the scan is in the guest list, and one that starts
    /// after the guest list was read takes the lease, which the remover sees
    /// (the lease version grew, or the acquire fails).
    ///
    /// Every lease is read from disk, never through the daemon: the leader
    /// and the mode blocks are what sanlock itself reads
    /// (`sanlock_read_resource_owners` costs a 1 MiB read per lease), and a
    /// cleaning run's acquire is sanlock's authoritative answer anyway.
    static func gather(
        at site: Site, _ configuration: RunConfiguration, control: RunControl, logger: Logger,
        findings: inout RunFindings
    ) throws(JanitorError) -> Inventory {
        control.enter(.scanningLeases)
        let directory = site.directory
        let scanner = InventoryScanner(directory: directory, classifier: site.classifier)
        let listed: [DirectoryEntry]
        do {
            listed = try directory.entries()
        } catch {
            throw .leaseDirectory(error)
        }
        let cleaning = configuration.mode == .clean
        let openFiles = OpenFileBudget(cleaning ? Syscall.raiseOpenFileLimit() : 0)
        let scanned = parallelMap(listed, workers: RunConfiguration.scanThreads, setUp: { AlignedBuffer() }) { entry, buffer in
            var scanned = scanner.scan(entry, keepingOpen: cleaning, using: buffer)
            if scanned.file != nil, !openFiles.take() { scanned.file = nil }
            return scanned
        }
        let entries = scanned.map(\.entry)
        logger.debug("scanned the lease directory", metadata: [
            "entries": "\(entries.count)", "lockspace_hosts": "\(site.lockspaceImage?.joinedHosts.count ?? 0)",
            "held_open": "\(scanned.count { $0.file != nil })",
        ])

        control.enter(.readingGuests)
        let guests = GuestInventory.load(
            statusDirectories: configuration.statusDirectories, configDirectories: configuration.configDirectories)
        if !guests.isComplete {
            try findings.problem(.guestsUnknown(guests.statusErrors))
        }
        for warning in guests.definitionWarnings { findings.warn(.guestDefinitionIgnored(warning)) }
        for guest in guests.staleGuests { findings.warn(.staleGuestStatus(guest)) }
        logger.debug("read the guests", metadata: [
            "active": "\(guests.active.count)", "defined": "\(guests.defined.count)",
        ])

        let hosts = site.hostTable(
            covering: configuration.policy.retiredHosts.union(entries.compactMap(\.kind.leaseStateOwners).joined()))
        // The daemon stopped answering after the first questions: what it
        // did not say is unknown (a dry run goes on from disk).
        if DaemonDeadline.hasLapsed, site.sanlock.unanswered == nil {
            try findings.problem(.daemonNotAnswering(SanlockError(.getHosts, code: .noAnswer)))
        }
        return Inventory(entries: entries, files: scanned.map(\.file), guests: guests, hosts: hosts)
    }
}

/// How many lease files a cleaning run may hold open from its scan to its
/// removals: the open-file limit (raised to its hard limit), less a reserve
/// for everything else the run opens. Beyond it a lease is opened again for
/// its removal (two round trips more on NFS).
final class OpenFileBudget: Sendable {
    static let reserve = 256
    private let left: Atomic<Int>

    init(_ limit: Int) {
        left = Atomic(max(0, limit - Self.reserve))
    }

    /// True while the budget lasts.
    func take() -> Bool {
        left.subtract(1, ordering: .relaxed).newValue >= 0
    }
}
