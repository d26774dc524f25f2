import Logging
import Sanlock
import Synchronization
import SystemCalls

/// Where a run works and who this host is there: the lease directory held
/// open, the run lock of a cleaning run, and the local sanlock daemon's view
/// of the lockspace.
public struct LeaseSite: Sendable {
    public let directory: LeaseDirectory
    /// Held to the end of a cleaning run (nil for other modes): while it is
    /// held no other janitor of this host works here, which makes a cleared
    /// leader naming this host a leftover of an earlier run (see Decision).
    public let runLock: RunLock?
    public let sanlock: SanlockView
    /// The daemon's id for this host when joined, else `--host-id`, else
    /// `host_id` from the configuration.
    public let thisHostID: UInt64?

    /// A problem that makes the site unfit for cleaning (no daemon, not
    /// joined, a host id that contradicts the daemon) goes to `findings`,
    /// which stops a cleaning run there.
    public static func open(
        _ configuration: RunConfiguration, control: RunControl, logger: Logger, findings: inout RunFindings
    ) throws(JanitorError) -> LeaseSite {
        DaemonDeadline.seconds = configuration.daemonTimeout
        let directory: LeaseDirectory
        do {
            directory = try LeaseDirectory(path: configuration.leaseDirectory)
        } catch {
            throw .leaseDirectory(error)
        }
        // Before the daemon is asked anything: a second run exits at once,
        // naming the first, even while the daemon does not answer.
        let runLock = configuration.mode == .clean ? try RunLock.acquire(leaseDirectory: directory.identity) : nil
        if let file = configuration.autoDiskLeasesOffIn { findings.warn(.autoDiskLeasesOff(configurationFile: file)) }
        control.enter(.askingSanlock)
        let sanlock = SanlockView.gather(
            lockspace: LeaseClassifier.lockspaceName, directory: directory,
            settings: configuration.mode == .clean && configuration.jobs == nil)
        if let error = sanlock.problem() {
            logger.debug("sanlock cannot vouch for this host", metadata: ["problem": "\(error.code)"])
            try findings.problem(error)
        }
        for warning in sanlock.warnings(configuredHostID: configuration.configuredHostID) { findings.warn(warning) }
        if let given = configuration.hostIDOverride, let joined = sanlock.thisHostID, given != joined {
            try findings.problem(.hostIDMismatch(given: given, joined: joined))
        }
        let thisHostID = sanlock.thisHostID ?? configuration.hostIDOverride ?? configuration.configuredHostID
        let source = sanlock.thisHostID != nil ? "sanlock" : configuration.hostIDOverride != nil ? "--host-id"
            : configuration.configuredHostID != nil ? "host_id" : "none"
        logger.debug("this host's id", metadata: [
            "host_id": "\(thisHostID.map(String.init) ?? "unknown")", "source": "\(source)",
        ])
        return LeaseSite(directory: directory, runLock: runLock, sanlock: sanlock, thisHostID: thisHostID)
    }
}

/// The facts the decision works from: every entry of the lease directory,
/// the guests libvirt describes, and sanlock's liveness of every host a
/// lease names.
public struct Inventory: Sendable {
    public let entries: [LeaseEntry]
    /// For a cleaning run, the lease files it may remove, held open from the
    /// scan (nil: not removable, or over the budget of open files, then
    /// opened again for the removal); same order as `entries`.
    public let files: [LeaseFile?]
    public let guests: GuestInventory
    /// sanlock's liveness per host; nil without a daemon.
    public let hosts: [UInt64: SanlockHost]?
    /// The name each host joined with, from its delta lease in the lockspace
    /// file (sanlock's `-e` host name): read without a daemon too.
    public let hostNames: [UInt64: String]
    /// Classifies entries again when the remover needs a fresh look.
    public let classifier: LeaseClassifier

    /// The leases first, then the guests: a guest that starts (and maybe
    /// pauses) after the scan is in the guest list, and one that starts
    /// after the guest list was read takes the lease, which the remover sees
    /// (the lease version grew, or the acquire fails).
    ///
    /// Every lease is read from disk, never through the daemon: the leader
    /// and the mode blocks are what sanlock itself reads
    /// (`sanlock_read_resource_owners` costs a 1 MiB read per lease), and a
    /// cleaning run's acquire is sanlock's authoritative answer anyway.
    public static func gather(
        at site: LeaseSite, _ configuration: RunConfiguration, control: RunControl, logger: Logger,
        findings: inout RunFindings
    ) throws(JanitorError) -> Inventory {
        control.enter(.scanningLeases)
        let directory = site.directory
        let lockspaceImage = readLockspaceImage(in: directory, findings: &findings)
        let scanner = InventoryScanner(
            directory: directory, classifier: classifier(image: lockspaceImage, hosts: site.sanlock.hosts))
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
            "entries": "\(entries.count)", "lockspace_hosts": "\(lockspaceImage?.joinedHosts.count ?? 0)",
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
            "active": "\(guests.running.count)", "defined": "\(guests.defined.count)",
        ])

        let hosts = site.sanlock.hosts.map { listed in
            var table = listed
            completeHostTable(
                &table, owners: configuration.policy.retiredHosts.union(entries.compactMap(\.kind.leaseStateOwners).joined()))
            return table
        }
        // The daemon stopped answering after the first questions: what it
        // did not say is unknown (a dry run goes on from disk).
        if DaemonDeadline.hasLapsed, site.sanlock.unanswered == nil {
            try findings.problem(.daemonNotAnswering(SanlockError(.getHosts, code: .noAnswer)))
        }
        return Inventory(
            entries: entries, files: scanned.map(\.file), guests: guests, hosts: hosts,
            hostNames: lockspaceImage?.hostNames ?? [:], classifier: scanner.classifier)
    }

    /// Shared holders can only be hosts that joined the lockspace at some
    /// point: probe only their mode blocks rather than all 2000 (all of them
    /// when neither the lockspace file nor the daemon tells which).
    static func classifier(image: LockspaceImage?, hosts: [UInt64: SanlockHost]?) -> LeaseClassifier {
        var probeHostIDs: Set<UInt64>? = nil
        if let image { probeHostIDs = Set(image.joinedHosts.map(\.hostID)) }
        if let hosts { probeHostIDs = (probeHostIDs ?? []).union(hosts.keys) }
        return LeaseClassifier(probeHostIDs: probeHostIDs.map { Array($0) })
    }

    static func readLockspaceImage(in directory: LeaseDirectory, findings: inout RunFindings) -> LockspaceImage? {
        let name = EntryName(LeaseClassifier.lockspaceName)
        do {
            let status = try directory.status(of: name)
            // One delta lease per host id, in 512-byte sectors (4096-byte
            // ones would need 8 MiB: read on only for those).
            var bytes = try directory.readPrefix(of: name, length: 2000 * 512, expected: status.identity)
            if bytes.withUnsafeBytes({ LeaderRecord(sector: $0) })?.sectorSize == 4096 {
                bytes = try directory.readPrefix(of: name, length: 2000 * 4096, expected: status.identity)
            }
            guard let image = bytes.withUnsafeBytes({ LockspaceImage(bytes: $0) }) else {
                findings.warn(.lockspaceFileInvalid(path: directory.path(of: name)))
                return nil
            }
            return image
        } catch {
            if error.errno == .noSuchFileOrDirectory {
                findings.warn(.noLockspaceFile(leaseDirectory: directory.path))
            } else {
                findings.warn(.lockspaceFileUnreadable(error))
            }
            return nil
        }
    }

    /// `sanlock_get_hosts` lists only hosts with a timestamp; ask about every
    /// other host a lease or `--retired-host` names, so that "not listed"
    /// never has to be guessed. A host sanlock cannot tell about stays out
    /// of the table, which the decision treats as unknown (kept).
    static func completeHostTable(_ table: inout [UInt64: SanlockHost], owners: some Sequence<UInt64>) {
        for host in Set(owners).subtracting(table.keys).sorted() {
            if let answer = try? SanlockClient.hosts(in: LeaseClassifier.lockspaceName, hostID: host).first {
                table[host] = answer
            }
        }
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
