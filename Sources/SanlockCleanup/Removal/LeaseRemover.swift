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

    static func kept(_ kind: EntryKind) -> RemovalOutcome { .kept(.entry(kind)) }
    static func kept(_ rule: Rule) -> RemovalOutcome { .kept(.rule(rule)) }
    static func kept(_ failure: RemovalFailure) -> RemovalOutcome { .kept(.removal(failure)) }
}

/// Deletes a lease only while holding it: acquire (no wait on a failing
/// owner) → read the leader → invalidate it → unlink → release.
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
///
/// Every file step goes through the descriptor the scan opened (see
/// `LeaseFile`), which on NFS makes a deleted lease cost the tool itself
/// about eight round trips (docs/design.md lists which buys what).
struct LeaseRemover: Sendable {
    let directory: LeaseDirectory
    let lockspace: String
    /// Liveness facts, to say how long a failing owner has before it is dead.
    let hosts: [UInt64: SanlockHost]?
    /// This host's id and generation in the lockspace: after our acquire the
    /// leader must name them (nil: not known, only tests).
    let thisHost: (id: UInt64, generation: UInt64?)?
    /// To look at an entry again when sanlock's answer or a re-check needs it.
    let classifier: LeaseClassifier

    public init(
        directory: LeaseDirectory, lockspace: String = LeaseClassifier.lockspaceName,
        hosts: [UInt64: SanlockHost]?, thisHost: (id: UInt64, generation: UInt64?)?,
        classifier: LeaseClassifier = LeaseClassifier(probeHostIDs: [])
    ) {
        self.directory = directory
        self.lockspace = lockspace
        self.hosts = hosts
        self.thisHost = thisHost
        self.classifier = classifier
    }

    private var scanner: InventoryScanner { InventoryScanner(directory: directory, classifier: classifier) }

    /// `file` is the entry as the scan held it open (nil: opened again
    /// here, and it must still be the file the scan saw). `control` is asked
    /// before the leader is invalidated: after a signal, or once the process
    /// is exiting, the lease is released untouched.
    func remove(
        _ entry: LeaseEntry, file scanned: LeaseFile?, using connection: borrowing SanlockConnection,
        control: RunControl = RunControl()
    ) -> RemovalOutcome {
        guard let expected = entry.status?.identity else { return .kept(.vanished) }
        let file: LeaseFile
        switch reopened(entry, scanned, expected: expected) {
        case .success(let open): file = open
        case .failure(let refusal): return refusal.outcome
        }
        let resource = directory.resource(for: entry, lockspace: lockspace)
        do {
            try connection.acquire(resource, ownerNoWait: true)
        } catch {
            if error.code == .noAnswer { return .failed(.daemonNotAnswering(error)) }
            return outcome(ofFailedAcquire: error, entry: entry, file: file)
        }
        // From here on we hold the lease: every path must release it.
        defer { release(resource, on: connection) }
        let sector: [UInt8]
        switch leaderWeHold(entry, through: file) {
        case .success(let leader): sector = leader
        case .failure(let refusal): return refusal.outcome
        }
        // Invalidate, then unlink: nothing may end the process in between
        // (see RunControl), or the next run of this host finishes the job.
        guard control.beginUnfinishableWork() else { return .kept(.interrupted(signal: control.signalNumber ?? 0)) }
        defer { control.endUnfinishableWork() }
        return invalidateAndUnlink(entry, through: file, leader: sector)
    }

    /// The leader sector through our descriptor, as our acquire left it,
    /// provided the lease is still the one to delete.
    private func leaderWeHold(_ entry: LeaseEntry, through file: LeaseFile) -> Result<[UInt8], Refusal> {
        // It must name this host, at its generation, holding the lease
        // (timestamp set): only this host's daemon can have written that,
        // and only for us (it grants a lease to one process of a host at a
        // time). So the file we hold open is the one the daemon acquired by
        // path: no path check is needed, and no rename can slip one in.
        let sector: [UInt8]
        do {
            sector = try file.leaderSector()
        } catch {
            return .failure(Refusal(.failed(.invalidateFailed(error, now: .intact))))
        }
        guard let record = sector.withUnsafeBytes({ LeaderRecord(sector: $0) }),
              record.isPaxosLeader, record.checksumIsValid, record.isHeld,
              thisHost.map({ record.ownerID == $0.id && ($0.generation ?? record.ownerGeneration) == record.ownerGeneration }) ?? true
        else {
            return .failure(Refusal(.failed(
                .replacedBeforeDeletion(FileSystemError(.read, path: entry.path, condition: .pathMoved)))))
        }
        // Our acquire made the lease version one more than the scan saw. If
        // it grew further, someone held the lease since we looked: maybe a
        // guest that started after the guest list was read and has paused
        // since, which that list cannot protect. Leave it for the next run.
        if let scanned = entry.leaseState?.lver, record.lver != scanned &+ 1 {
            return .failure(Refusal(.kept(.usedDuringRun(scannedLVer: scanned, lver: record.lver))))
        }
        // A name made since the scan (checked there) would carry the write
        // outside the directory: what the kernel knows of the file, free.
        if let links = (try? file.cachedLinkCount()), links > 1 {
            return .failure(Refusal(.kept(.hardLinked(links: links))))
        }
        return .success(sector)
    }

    /// Clears the leader we hold (`sector`), then unlinks the name; on a
    /// failure puts the leader back where it can, and says what is left.
    private func invalidateAndUnlink(_ entry: LeaseEntry, through file: LeaseFile, leader sector: [UInt8]) -> RemovalOutcome {
        guard let cleared = LeaderRecord.invalidating(sector: sector) else {
            return .failed(.invalidateFailed(
                FileSystemError(.read, path: entry.path, condition: .shortSector), now: .intact))
        }
        do {
            try file.overwriteLeader(with: cleared)
        } catch {
            // The write may have landed in part or whole (EIO after the
            // device took it): go on only if the sector now is ours, cleared.
            switch try? file.leaderSector() {
            case cleared?: break
            case sector?: return .failed(.invalidateFailed(error, now: .intact))
            default: return .failed(.invalidateFailed(error, now: restore(sector, of: entry, through: file)))
            }
        }
        // No lookup of the name first: the leader read through our
        // descriptor proved that the name led to this inode when the daemon
        // acquired it, and a check before the unlink would narrow, not close,
        // the window in which someone renames another file onto the name
        // (one round trip on NFS per lease). The link count afterwards says
        // which inode lost the name.
        do {
            try directory.unlink(entry.name)
        } catch {
            if error.errno == .noSuchFileOrDirectory { return .kept(.vanished) }
            // The file stays: put our leader back so that the release frees
            // it normally and the guest that owns this disk can start.
            return .failed(.unlinkFailed(error, now: restore(sector, of: entry, through: file)))
        }
        // What the kernel knows of our inode after the unlink (no round
        // trip): no name left. On NFS the client keeps a name (see
        // `LeaseDirectory.isNFS`): there the count proves nothing.
        if !directory.isNFS, let links = try? file.cachedLinkCount(), links > 0 {
            return .failed(.unlinkFailed(
                FileSystemError(.unlink, path: entry.path, condition: .replacedAtUnlink),
                now: restore(sector, of: entry, through: file)))
        }
        return .deleted
    }

    /// The scan's descriptor, or the entry opened again, provided it is
    /// still the file the scan examined.
    private func reopened(_ entry: LeaseEntry, _ file: LeaseFile?, expected: FileIdentity) -> Result<LeaseFile, Refusal> {
        if let file { return .success(file) }
        do {
            let file = try directory.openLease(entry.name, writable: true)
            return file.status.identity == expected ? .success(file) : .failure(Refusal(.kept(.vanished)))
        } catch {
            return .failure(Refusal(error.errno == .noSuchFileOrDirectory ? .kept(.vanished) : .failed(.replacedBeforeDeletion(error))))
        }
    }

    private struct Refusal: Error {
        let outcome: RemovalOutcome
        init(_ outcome: RemovalOutcome) { self.outcome = outcome }
    }

    /// Writes the leader back as our acquire left it, and says what the path
    /// holds afterwards.
    private func restore(_ sector: [UInt8], of entry: LeaseEntry, through file: LeaseFile) -> PathState {
        if (try? file.overwriteLeader(with: sector)) != nil, (try? file.leaderSector()) == sector {
            return .intact
        }
        return pathState(of: entry)
    }

    /// What the entry's path holds now, for a report that must not guess.
    func pathState(of entry: LeaseEntry) -> PathState {
        let now = scanner.examine(entry.name)
        guard let status = now.status else {
            if case .vanished = now.kind { return .gone }
            return .unknown(Reason.describing(now.kind))
        }
        guard status.identity == entry.status?.identity else { return .replaced }
        switch now.kind {
        case .clearedLease: return .invalidated
        case .autoLease: return .intact
        default: return .unknown(Reason.describing(now.kind))
        }
    }

    /// Removes an uninitialised or invalidated lease file. sanlock cannot
    /// grant a lease in such a file, so there is nothing to hold: look again
    /// right before unlinking that it is still the same file, unchanged, with
    /// one name and still unusable, then unlink it.
    func removeUnacquirable(_ entry: LeaseEntry, file scanned: LeaseFile?) -> RemovalOutcome {
        guard let before = entry.status else { return .kept(.vanished) }
        let file: LeaseFile
        switch reopened(entry, scanned, expected: before.identity) {
        case .success(let open): file = open
        case .failure(let refusal): return refusal.outcome
        }
        // Asked afresh: libvirt on another host may be writing it now.
        guard let after = try? file.currentStatus(), after.identity == before.identity else { return .kept(.vanished) }
        let again = scanner.kind(of: file, status: after, using: AlignedBuffer())
        guard again == entry.kind, after.modified == before.modified, after.size == before.size else {
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
    func outcome(ofFailedAcquire error: SanlockError, entry: LeaseEntry, file: LeaseFile) -> RemovalOutcome {
        switch error.code {
        case .fileExists:
            return .kept(.heldByThisHost)
        case .acquireIDLive:
            return .kept(.heldByLiveHost(currentOwner(of: entry, file), .live))
        case .acquireOwnedRetry:
            let owner = currentOwner(of: entry, file)
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

    /// Re-reads the leader through our descriptor to name the host that
    /// holds the lease now; nil when it names none.
    private func currentOwner(of entry: LeaseEntry, _ file: LeaseFile) -> UInt64? {
        guard let sector = try? file.leaderSector(), let record = sector.withUnsafeBytes({ LeaderRecord(sector: $0) }),
              record.isPaxosLeader, record.ownerID != 0 else { return nil }
        return record.ownerID
    }
}
