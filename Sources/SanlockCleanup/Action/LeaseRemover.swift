#if canImport(Glibc)
import Glibc
#endif
import Sanlock

/// What happened to a lease the decision nominated for deletion.
public enum RemovalOutcome: Sendable, Hashable {
    case deleted
    /// sanlock refused the lease because it is in use (or it changed under
    /// us): not a failure.
    case kept(Reason)
    /// Something went wrong; the failure says what and what state the lease
    /// was left in.
    case failed(RemovalFailure)

    static func kept(_ nature: EntryNature) -> RemovalOutcome { .kept(.entry(nature)) }
    static func kept(_ rule: Rule) -> RemovalOutcome { .kept(.rule(rule)) }
    static func kept(_ failure: RemovalFailure) -> RemovalOutcome { .kept(.removal(failure)) }
}

/// Deletes a lease only while holding it: acquire (no wait on a failing
/// owner) → invalidate the leader → unlink → release.
///
/// Why this order: releasing before unlinking would let another host take
/// the lease in between; invalidating before unlinking makes the orphaned
/// inode unacquirable for a host that opened the path earlier (it then gets
/// SANLK_LEADER_MAGIC for ever); the release after our own unlink answers
/// -ENOENT, because the daemon reopens the lease by path.
///
/// Why not `sanlock_write_resource(SANLK_WRITE_CLEAR)`: it rewrites the
/// whole lease area, paxos dblocks included. A host whose acquire is in the
/// middle of a ballot then no longer sees the committed owner and commits
/// itself on the orphaned inode (measured: 4 of 200 leases with two janitors
/// at once). Rewriting only the leader sector keeps sanlock's paxos intact.
public struct LeaseRemover: Sendable {
    public let directory: LeaseDirectory
    public let lockspace: String
    /// Liveness facts, to say how long a failing owner has before it is dead.
    public let hosts: [UInt64: SanlockHost]?
    /// To look at an entry again when sanlock's answer or a re-check needs it.
    public let classifier: LeaseClassifier

    public init(
        directory: LeaseDirectory, lockspace: String = LeaseClassifier.lockspaceName,
        hosts: [UInt64: SanlockHost]?, classifier: LeaseClassifier = LeaseClassifier(probeHostIDs: [])
    ) {
        self.directory = directory
        self.lockspace = lockspace
        self.hosts = hosts
        self.classifier = classifier
    }

    private var scanner: InventoryScanner { InventoryScanner(directory: directory, classifier: classifier) }

    /// `control` is asked before the leader is invalidated: after a signal,
    /// or once the process is exiting, the lease is released untouched.
    public func remove(
        _ entry: LeaseEntry, using connection: borrowing SanlockConnection, control: RunControl = RunControl()
    ) -> RemovalOutcome {
        guard let expected = entry.status?.identity else { return .kept(.vanished) }
        let resource = directory.resource(for: entry, lockspace: lockspace)
        do {
            try connection.acquire(resource, ownerNoWait: true)
        } catch {
            return outcome(ofFailedAcquire: error, entry: entry)
        }
        // From here on we hold the lease: every path must release it.
        defer { release(resource, on: connection) }
        do {
            try directory.verifyPath(of: entry.name, names: expected)
        } catch {
            return .failed(.replacedBeforeDeletion(error))
        }
        // The leader as our acquire left it: owned by this host.
        let sector: [UInt8]
        do {
            sector = try readLeaderSector(of: entry, expected: expected)
        } catch {
            if error.code == .replaced { return .failed(.replacedBeforeDeletion(error)) }
            return .failed(.invalidateFailed(error, now: .intact))
        }
        // Our acquire made the lease version one more than the scan saw. If
        // it grew further, someone held the lease since we looked: maybe a
        // guest that started after the guest list was read and has paused
        // since, which that list cannot protect. Leave it for the next run.
        let record = sector.withUnsafeBytes { LeaderRecord(sector: $0) }
        if let scanned = entry.leaseState?.lver, let now = record?.lver, now != scanned &+ 1 {
            return .kept(.usedDuringRun(scannedLVer: scanned, lver: now))
        }
        guard let cleared = LeaderRecord.invalidating(sector: sector) else {
            return .failed(.invalidateFailed(
                FileSystemError(.read, path: entry.path, condition: .shortSector), now: .intact))
        }
        // Invalidate, then unlink: nothing may end the process in between
        // (see RunControl), or the next run of this host finishes the job.
        guard control.beginUnfinishableWork() else { return .kept(.interrupted(signal: control.signalNumber ?? 0)) }
        defer { control.endUnfinishableWork() }
        do {
            try directory.writePrefix(of: entry.name, bytes: cleared, expected: expected)
        } catch {
            // Checked before writing: nothing was written.
            if case .hardLinked(let links) = error.code { return .kept(.hardLinked(links: links)) }
            if error.code == .replaced { return .failed(.replacedBeforeDeletion(error)) }
            // The write may have landed in part or whole (EIO after the
            // device took it): go on only if the sector now is ours, cleared.
            switch leaderNow(of: entry, expected: expected) {
            case cleared?: break
            case sector?: return .failed(.invalidateFailed(error, now: .intact))
            default: return .failed(.invalidateFailed(error, now: restore(sector, of: entry, expected: expected)))
            }
        }
        do {
            try directory.unlink(entry.name, expected: expected)
        } catch {
            if error.errno == .noSuchFileOrDirectory { return .kept(.vanished) }
            // The file stays: put our leader back so that the release frees
            // it normally and the guest that owns this disk can start.
            return .failed(.unlinkFailed(error, now: restore(sector, of: entry, expected: expected)))
        }
        return .deleted
    }

    /// The leader sector (512 or 4096 bytes, as the leader says).
    private func readLeaderSector(of entry: LeaseEntry, expected: FileIdentity) throws(FileSystemError) -> [UInt8] {
        let first = try directory.readPrefix(of: entry.name, length: 512, expected: expected)
        let sectorSize = first.withUnsafeBytes { LeaderRecord(sector: $0) }.map { Int($0.sectorSize) } ?? 512
        switch sectorSize {
        case 512: return first
        case 4096: return try directory.readPrefix(of: entry.name, length: 4096, expected: expected)
        default: throw FileSystemError(.read, path: entry.path, condition: .shortSector)
        }
    }

    /// The leader sector on disk now, nil when it cannot be read.
    private func leaderNow(of entry: LeaseEntry, expected: FileIdentity) -> [UInt8]? {
        try? readLeaderSector(of: entry, expected: expected)
    }

    /// Writes the leader back as our acquire left it, and says what the path
    /// holds afterwards.
    private func restore(_ sector: [UInt8], of entry: LeaseEntry, expected: FileIdentity) -> PathState {
        if (try? directory.writePrefix(of: entry.name, bytes: sector, expected: expected)) != nil,
           leaderNow(of: entry, expected: expected) == sector {
            return .intact
        }
        return pathState(of: entry)
    }

    /// What the entry's path holds now, for a report that must not guess.
    func pathState(of entry: LeaseEntry) -> PathState {
        let now = scanner.examine(entry.name)
        guard let status = now.status else {
            if case .vanished = now.kind { return .gone }
            return .unknown(Reason.describing(now.kind).sentence)
        }
        guard status.identity == entry.status?.identity else { return .replaced }
        switch now.kind {
        case .clearedLease: return .invalidated
        case .autoLease: return .intact
        default: return .unknown(Reason.describing(now.kind).sentence)
        }
    }

    /// Removes an uninitialised or invalidated lease file. sanlock cannot
    /// grant a lease in such a file, so there is nothing to hold: look again
    /// right before unlinking that it is still the same file, unchanged, with
    /// one name and still unusable, then unlink it.
    public func removeUnacquirable(_ entry: LeaseEntry) -> RemovalOutcome {
        guard let before = entry.status else { return .kept(.vanished) }
        let now = scanner.examine(entry.name)
        guard let after = now.status, after.identity == before.identity else { return .kept(.vanished) }
        guard now.kind == entry.kind, after.modified == before.modified, after.size == before.size else {
            // libvirt finished making it, or someone rewrote it.
            return .kept(.changedDuringRun)
        }
        guard after.linkCount == 1 else { return .kept(.hardLinked(links: after.linkCount)) }
        do {
            try directory.unlink(entry.name, expected: before.identity)
        } catch {
            if error.errno == .noSuchFileOrDirectory { return .kept(.vanished) }
            if error.errno == nil { return .failed(.replacedBeforeDeletion(error)) }
            return .failed(.removeFailed(error))
        }
        return .deleted
    }

    /// Releases a lease we hold. After our unlink the daemon answers -ENOENT
    /// (it reopens the lease by path) but forgets the lease all the same;
    /// nothing to report.
    private func release(_ resource: SanlockResource, on connection: borrowing SanlockConnection) {
        _ = try? connection.release(resource)
    }

    /// Turns sanlock's refusal into a reason a person understands.
    func outcome(ofFailedAcquire error: SanlockError, entry: LeaseEntry) -> RemovalOutcome {
        switch error.code {
        case .fileExists:
            return .kept(.heldByThisHost)
        case .acquireIDLive:
            return .kept(.heldByLiveHost(currentOwner(of: entry), .live))
        case .acquireOwnedRetry:
            let owner = currentOwner(of: entry)
            return .kept(.ownerHostFailing(owner, ioTimeout: owner.flatMap { hosts?[$0]?.ioTimeout } ?? 0))
        case .resourceTemporarilyUnavailable, .acquireShRetry:
            return .kept(.heldShared(hosts: []))
        case .resourceBusy, .acquireOwned, .acquireOther, .acquireLVer:
            return .kept(.acquireBusy(error))
        case .noSuchFileOrDirectory:
            return .kept(.vanished)
        case .noSpace, .acquireLockspace:
            return .failed(.lockspaceNotJoined(error))
        case .leaderMagic, .leaderLockspace, .leaderResource, .leaderChecksum, .leaderVersion,
             .isDirectory, .messageTooLong, .invalidArgument:
            // The file is no longer the lease we saw: say what it is now.
            let now = scanner.examine(entry.name)
            if case .autoLease = now.kind { return .failed(.acquireFailed(error)) }
            return .kept(Reason.describing(now.kind))
        default:
            return .failed(.acquireFailed(error))
        }
    }

    /// Re-reads the leader to name the host that holds the lease now; nil
    /// when it names none.
    private func currentOwner(of entry: LeaseEntry) -> UInt64? {
        scanner.examine(entry.name).leaseState.flatMap { $0.ownerID == 0 ? nil : $0.ownerID }
    }
}
