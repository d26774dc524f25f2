import Foundation
import Logging
import Sanlock
import Synchronization

/// One run of the janitor: configuration → inventory → decision → action →
/// report. The stages are wired here and nowhere else.
public struct Janitor: Sendable {
    public let configuration: RunConfiguration
    public let logger: Logger

    public init(configuration: RunConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs the janitor. Throws only for fatal conditions, before anything
    /// was deleted: when it cannot be sure, it deletes nothing.
    public func run() throws(JanitorError) -> RunReport {
        let started = Date()
        let clock = ContinuousClock.now
        var warnings: [String] = []
        let cleaning = configuration.mode == .clean

        let directory: LeaseDirectory
        do {
            directory = try LeaseDirectory(path: configuration.leaseDirectory)
        } catch {
            throw .leaseDirectory(error)
        }

        let sanlock = SanlockView.gather(lockspace: LeaseClassifier.lockspaceName, directory: directory)
        if let problem = sanlock.problem(configuredHostID: configuration.configuredHostID) {
            if cleaning { throw problem }
            warnings.append("\(problem.description); reporting from the leases on disk only")
        }
        warnings += sanlock.warnings(configuredHostID: configuration.configuredHostID)

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
        var entries = parallelMap(names, workers: configuration.jobs) { scanner.examine($0) }

        // A dry run shows sanlock's own reading of each lease when the daemon
        // is there. A cleaning run does not ask: the acquire is sanlock's
        // authoritative read, and asking first costs 1 MiB of I/O per lease.
        if !cleaning, sanlock.daemonReachable {
            entries = parallelMap(entries, workers: configuration.jobs) { entry in
                Self.refinedBySanlock(entry, remover: LeaseRemover(directory: directory, hosts: nil))
            }
        }

        let context = DecisionContext(thisHostID: sanlock.thisHostID ?? configuration.configuredHostID, hosts: sanlock.hosts)
        let verdicts = Decision.verdicts(for: entries, in: context)

        var outcomes = [RemovalOutcome?](repeating: nil, count: entries.count)
        if cleaning {
            let candidates = verdicts.indices.filter { verdicts[$0].disposition == .delete }
            let remover = LeaseRemover(directory: directory, hosts: sanlock.hosts)
            let results = removeInParallel(candidates.map { entries[$0] }, remover: remover)
            for (index, outcome) in zip(candidates, results) { outcomes[index] = outcome }
        }

        let leases = entries.indices.map { index in
            LeaseReport(entry: entries[index], verdict: verdicts[index], outcome: outcomes[index], mode: configuration.mode)
        }
        return RunReport(
            mode: configuration.mode,
            leaseDirectory: directory.path,
            thisHostID: context.thisHostID,
            daemon: sanlock.availability,
            leases: leases,
            warnings: warnings,
            startedAt: started,
            duration: (ContinuousClock.now - clock).seconds)
    }

    private func readLockspaceImage(in directory: LeaseDirectory, warnings: inout [String]) -> LockspaceImage? {
        let name = EntryName(LeaseClassifier.lockspaceName)
        do {
            let status = try directory.status(of: name)
            let bytes = try directory.readPrefix(of: name, length: 2000 * 512, expected: status.identity)
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

    /// Replaces the disk decoder's view of an auto lease with the daemon's
    /// (`sanlock_read_resource_owners`). The last owner of a free lease is
    /// kept from disk: sanlock lists only current holders.
    static func refinedBySanlock(_ entry: LeaseEntry, remover: LeaseRemover) -> LeaseEntry {
        guard var state = entry.leaseState else { return entry }
        var refined = entry
        do {
            let owners = try SanlockClient.readOwners(of: remover.resource(for: entry))
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

    private func removeInParallel(_ candidates: [LeaseEntry], remover: LeaseRemover) -> [RemovalOutcome] {
        // Once sanlock says the lockspace is gone, stop: every further acquire
        // would fail the same way.
        let lockspaceLost = Atomic<Bool>(false)
        let logger = self.logger
        return parallelMap(candidates, workers: configuration.jobs, setUp: { WorkerConnection() }) { entry, connection in
            if lockspaceLost.load(ordering: .relaxed) {
                return .failed(.lockspaceNotJoined(SanlockError(.acquire, code: -ENOSPC)))
            }
            let outcome: RemovalOutcome
            switch connection {
            case .connected(let registered):
                outcome = remover.remove(entry, using: registered)
            case .failed(let error):
                outcome = .failed(.connectionFailed(error))
            }
            if case .failed(.lockspaceNotJoined) = outcome { lockspaceLost.store(true, ordering: .relaxed) }
            logger.debug("\(entry.name.escaped): \(outcome)")
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
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
