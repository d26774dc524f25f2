import Foundation
import Logging
import Sanlock
import Synchronization

/// One run of the janitor: configuration → inventory → decision → action →
/// report. The stages are wired here and nowhere else.
public struct Janitor: Sendable {
    public let configuration: RunConfiguration
    public let logger: Logger
    public let control: RunControl

    public init(configuration: RunConfiguration, logger: Logger, control: RunControl = RunControl()) {
        self.configuration = configuration
        self.logger = logger
        self.control = control
    }

    /// Runs the janitor. Throws only for fatal conditions, before anything
    /// was deleted: when it cannot be sure, it deletes nothing.
    public func run(progress: (@Sendable (Int, Int) -> Void)? = nil) throws(JanitorError) -> RunReport {
        let started = Date()
        let clock = ContinuousClock.now
        var warnings: [String] = []
        let cleaning = configuration.mode == .clean
        /// In a cleaning run a problem stops everything; in a dry run it is
        /// reported and the run goes on from what can be known.
        func problem(_ error: JanitorError, dryRunNote: String) throws(JanitorError) {
            if cleaning { throw error }
            warnings.append("\(error.description); \(dryRunNote)")
        }

        // Inventory: the directory, sanlock's view, the leases, then the
        // guests. The guests are read after the leases: a guest that starts
        // (and maybe pauses) after the scan is in the guest list, and one
        // that starts after the guest list was read takes the lease, which
        // the remover sees (the lease version grew, or the acquire fails).
        let directory: LeaseDirectory
        do {
            directory = try LeaseDirectory(path: configuration.leaseDirectory)
        } catch {
            throw .leaseDirectory(error)
        }
        control.enter(.askingSanlock)
        let sanlock = SanlockView.gather(lockspace: LeaseClassifier.lockspaceName, directory: directory)
        if let error = sanlock.problem() {
            try problem(error, dryRunNote: "reporting from the leases on disk only")
        }
        warnings += sanlock.warnings(configuredHostID: configuration.configuredHostID)
        if let given = configuration.hostIDOverride, let joined = sanlock.thisHostID, given != joined {
            try problem(.hostIDMismatch(given: given, joined: joined), dryRunNote: "using \(joined)")
        }
        let thisHostID = sanlock.thisHostID ?? configuration.hostIDOverride ?? configuration.configuredHostID

        // Held to the end of the run: while it is held no other janitor of
        // this host works here, which makes a cleared leader naming this
        // host a leftover of an earlier run (see Decision).
        let runLock = cleaning ? try RunLock.acquire(leaseDirectory: directory.identity, hostID: thisHostID) : nil

        control.enter(.scanningLeases)
        let lockspaceImage = readLockspaceImage(in: directory, warnings: &warnings)
        // Shared holders can only be hosts that joined the lockspace at some
        // point: probe only their mode blocks rather than all 2000.
        var probeHostIDs: Set<UInt64>? = nil
        if let lockspaceImage { probeHostIDs = Set(lockspaceImage.joinedHosts.map(\.hostID)) }
        if let hosts = sanlock.hosts { probeHostIDs = (probeHostIDs ?? []).union(hosts.keys) }
        let scanner = InventoryScanner(
            directory: directory, classifier: LeaseClassifier(probeHostIDs: probeHostIDs.map { Array($0) }))
        let names: [EntryName]
        do {
            names = try directory.entryNames()
        } catch {
            throw .leaseDirectory(error)
        }
        var entries = parallelMap(names, workers: configuration.jobs, setUp: { AlignedBuffer() }) { name, buffer in
            scanner.examine(name, using: buffer)
        }

        // A dry run shows sanlock's own reading of each lease when the daemon
        // is there. A cleaning run does not ask: the acquire is sanlock's
        // authoritative read, and asking first costs 1 MiB of I/O per lease.
        if !cleaning, sanlock.daemonReachable {
            entries = parallelMap(entries, workers: configuration.jobs) { Self.refinedBySanlock($0, in: directory) }
        }

        control.enter(.readingGuests)
        let guests = GuestInventory.load(
            statusDirectories: configuration.statusDirectories, configDirectories: configuration.configDirectories)
        if !guests.isComplete {
            try problem(.guestsUnknown(guests.statusErrors), dryRunNote: "a cleaning run would delete nothing")
        }
        warnings += guests.definitionWarnings.map { "guest definition ignored: \($0)" }
        warnings += guests.staleGuests.map { guest in
            "stale status file \(guest.file): guest \(guest.name.escapingControlCharacters()) is \(guest.state.rawValue) but its process \(guest.pid.map(String.init) ?? "") is gone; its leases are kept until the file goes (restarting libvirtd removes it; or remove it once the guest is known to be gone)"
        }

        let hosts = sanlock.hosts.map { completeHostTable($0, entries: entries) }
        try checkRetiredHosts(hosts: hosts, thisHostID: thisHostID, warnings: &warnings, problem: problem)

        // Decision.
        control.enter(.deciding)
        let context = DecisionContext(
            thisHostID: thisHostID, hosts: hosts, guests: GuestIndex(guests),
            policy: configuration.policy, now: Date().timeIntervalSince1970)
        let verdicts = Decision.verdicts(for: entries, in: context)

        // Action.
        var outcomes = [RemovalOutcome?](repeating: nil, count: entries.count)
        if cleaning {
            control.enter(.removingLeases)
            let candidates = verdicts.indices.filter { verdicts[$0].disposition == .delete }
            let remover = LeaseRemover(directory: directory, hosts: hosts, classifier: scanner.classifier)
            let results = removeInParallel(candidates.map { entries[$0] }, remover: remover, progress: progress)
            for (index, outcome) in zip(candidates, results) { outcomes[index] = outcome }
        }
        withExtendedLifetime(runLock) {}

        // Report.
        control.enter(.reporting)
        var leases: [LeaseReport] = []
        var outOfScope = 0
        for index in entries.indices {
            if verdicts[index].reason == .rule(.notRetiredHost) {
                outOfScope += 1
                continue
            }
            // Only files that are (or were meant to be) leases map to disks.
            let use = entries[index].kind.isLeaseFile ? entries[index].name.string.flatMap(context.guests.use(of:)) : nil
            leases.append(LeaseReport(
                entry: entries[index], verdict: verdicts[index], outcome: outcomes[index], mode: configuration.mode,
                guestUse: use, unknownDisk: entries[index].kind.isLeaseFile && use == nil))
        }
        return RunReport(
            mode: configuration.mode,
            interruptedBy: control.signalNumber,
            leaseDirectory: directory.path,
            thisHostID: thisHostID,
            daemon: sanlock.availability,
            leases: leases,
            outOfScope: outOfScope,
            retiredHosts: configuration.policy.retiredHosts.sorted(),
            warnings: warnings,
            startedAt: started,
            duration: (ContinuousClock.now - clock).seconds)
    }

    private func readLockspaceImage(in directory: LeaseDirectory, warnings: inout [String]) -> LockspaceImage? {
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
                warnings.append("\(directory.path(of: name)) is not a valid sanlock lockspace; reading every host's mode block of each lease")
                return nil
            }
            return image
        } catch {
            if error.errno == .noSuchFileOrDirectory {
                warnings.append("no lockspace file \(LeaseClassifier.lockspaceName) in \(directory.path): no host has joined this lease directory")
            } else {
                warnings.append("cannot read the lockspace file: \(error)")
            }
            return nil
        }
    }

    /// `sanlock_get_hosts` lists only hosts with a timestamp; ask about every
    /// other host a lease or `--retired-host` names, so that "not listed"
    /// never has to be guessed. A host sanlock cannot tell about stays out
    /// of the table, which the decision treats as unknown (kept).
    private func completeHostTable(_ listed: [UInt64: SanlockHost], entries: [LeaseEntry]) -> [UInt64: SanlockHost] {
        var wanted = configuration.policy.retiredHosts
        for entry in entries {
            guard let state = entry.leaseState else { continue }
            if state.ownerID != 0 { wanted.insert(state.ownerID) }
            for holder in state.sharedHolders { wanted.insert(holder.hostID) }
        }
        var table = listed
        for host in wanted.subtracting(listed.keys).sorted() {
            if let answer = try? SanlockClient.hosts(in: LeaseClassifier.lockspaceName, hostID: host).first {
                table[host] = answer
            }
        }
        return table
    }

    /// Retirement is refused for this host and for live hosts; a failing host
    /// is reported with how long sanlock needs to declare it dead.
    private func checkRetiredHosts(
        hosts: [UInt64: SanlockHost]?, thisHostID: UInt64?, warnings: inout [String],
        problem: (JanitorError, String) throws(JanitorError) -> Void
    ) throws(JanitorError) {
        for host in configuration.policy.retiredHosts.sorted() {
            if host == thisHostID { throw .retiringThisHost(host) }
            guard let hosts else {
                warnings.append("host \(host)'s liveness is unknown without the sanlock daemon")
                continue
            }
            switch hosts[host]?.state {
            case .live?, .unknown?:
                try problem(.retiredHostLive(host, hosts[host]!.state), "showing what would be purged")
            case .failing?:
                warnings.append("host \(host) is failing: sanlock declares it dead within 60 s (8 × io_timeout + 60 s after its last renewal); its leases are kept until then: run again after that")
            case nil:
                warnings.append("sanlock could not tell host \(host)'s state; its held leases are kept")
            case .dead?, .free?:
                break
            }
        }
    }

    /// Replaces the disk decoder's view of an auto lease with the daemon's
    /// (`sanlock_read_resource_owners`). The last owner of a free lease is
    /// kept from disk: sanlock lists only current holders.
    static func refinedBySanlock(_ entry: LeaseEntry, in directory: LeaseDirectory) -> LeaseEntry {
        guard var state = entry.leaseState else { return entry }
        var refined = entry
        do {
            let owners = try SanlockClient.readOwners(of: directory.resource(for: entry))
            let exclusive = owners.owners.first { $0.timestamp != 0 }
            state.held = exclusive != nil
            if let exclusive {
                state.ownerID = exclusive.hostID
                state.ownerGeneration = exclusive.generation
            }
            state.sharedHolders = owners.owners.filter { $0.timestamp == 0 }
            state.lver = owners.lver
            state.source = .sanlock
        } catch {
            state.sanlockReadError = error
        }
        refined.kind = .autoLease(state)
        return refined
    }

    private func removeInParallel(
        _ candidates: [LeaseEntry], remover: LeaseRemover, progress: (@Sendable (Int, Int) -> Void)?
    ) -> [RemovalOutcome] {
        // Once sanlock says the lockspace is gone, stop: every further acquire
        // would fail the same way.
        let lockspaceLost = Atomic<Bool>(false)
        let done = Atomic<Int>(0)
        let logger = self.logger
        let control = self.control
        let total = candidates.count
        return parallelMap(candidates, workers: configuration.jobs, setUp: { WorkerConnection() }) { entry, connection in
            let outcome: RemovalOutcome
            if let signal = control.signalNumber {
                outcome = .kept(.interrupted(signal: signal))
            } else if lockspaceLost.load(ordering: .relaxed) {
                outcome = .failed(.lockspaceNotJoined(SanlockError(.acquire, code: .noSpace)))
            } else if case .autoLease = entry.kind {
                // A connection a failed call left out of step is never used
                // again (see SanlockConnection); a failed registration is
                // retried.
                if !connection.isUsable { connection = WorkerConnection() }
                switch connection {
                case .connected(let registered): outcome = remover.remove(entry, using: registered, control: control)
                case .failed(let error): outcome = .failed(.connectionFailed(error))
                }
            } else {
                outcome = remover.removeUnacquirable(entry)
            }
            if case .failed(.lockspaceNotJoined) = outcome { lockspaceLost.store(true, ordering: .relaxed) }
            logger.debug("\(entry.name.escaped): \(outcome)")
            let count = done.add(1, ordering: .relaxed).newValue
            progress?(count, total)
            return outcome
        }
    }
}

/// A worker's registered sanlock connection, or why it has none.
enum WorkerConnection: ~Copyable {
    case connected(SanlockConnection)
    case failed(SanlockError)

    init() {
        do {
            self = .connected(try SanlockConnection())
        } catch {
            self = .failed(error)
        }
    }

    var isUsable: Bool {
        switch self {
        case .connected(let connection): connection.isInStep
        case .failed: false
        }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (for reports and metrics).
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
