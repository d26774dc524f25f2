import Logging
import Sanlock

extension Reason {
    /// The sentence a person reads in the report.
    public var sentence: String {
        switch self {
        case .entry(let kind): kind.sentence
        case .rule(let rule): rule.sentence
        case .removal(let failure): failure.sentence
        }
    }
}

extension EntryKind {
    /// What the entry is, in words, as the reason it is kept.
    public var sentence: String {
        switch self {
        case .lockspace:
            return "lockspace file of \(LeaseClassifier.lockspaceName)"
        case .directory:
            return "directory (never touched)"
        case .symlink(let target):
            return "symlink\(target.map { " to \(printable($0))" } ?? "") (never followed, never deleted)"
        case .special(let type):
            return "\(type.rawValue), not a lease"
        case .foreignFile:
            return "not a libvirt auto lease name (not touched)"
        case .uninitialisedLease:
            return "uninitialised lease (no sanlock magic): libvirt may be creating it"
        case .clearedLease(let cleared):
            return "invalidated lease\(cleared.invalidatedBy.map { " (by host \($0)'s janitor)" } ?? ""): no host can acquire it"
        case .corruptLease(let corruption):
            switch corruption {
            case .badChecksum(let stored):
                return "corrupt lease: leader checksum mismatch (stored 0x\(hex(stored)))"
            case .truncated(let size, let needed):
                return "corrupt lease: \(size) bytes, a lease needs \(needed)"
            case .wrongLockspace(let name):
                return "corrupt lease: leader belongs to lockspace \(printable(name))"
            case .wrongResourceName(let name):
                return "corrupt lease: leader names resource \(printable(name)), not this file"
            case .unsupportedVersion(let version):
                return "corrupt lease: unsupported leader version 0x\(hex(version))"
            case .outOfRange(let field, let value):
                return "corrupt lease: \(field) \(value) is out of sanlock's range"
            case .notALease(let magic):
                return "not a sanlock lease (magic 0x\(hex(magic)))"
            }
        case .unreadable(let error):
            return "cannot examine it: \(error.message)"
        case .vanished:
            return "disappeared during the run"
        case .autoLease:
            return "a lease"
        }
    }
}

extension Rule {
    /// What the rules concluded, in words.
    public var sentence: String {
        switch self {
        case .usedByGuest(let use):
            return "used by \(use.state.rawValue) guest \(printable(use.guest)) (\(use.role == .mirror ? "block job target" : "disk") \(printable(use.diskPath)))"
        case .staleGuestStatus(let use):
            let pid = use.pid.map { " (pid \($0))" } ?? ""
            return "guest \(printable(use.guest))'s status file says \(use.state.rawValue) but its process\(pid) is gone; kept while the status file remains (disk \(printable(use.diskPath)))"
        case .unmappedVolumeGuests(let guests):
            return "unknown disk kept: guest\(guests.count > 1 ? "s" : "") \(guests.map(printable).joined(separator: ", ")) use storage-pool volumes whose leases cannot be named"
        case .lastHeldByLiveHost(let host, let state):
            let live = state == .unknown ? "host \(host) (just joined, treated as live)" : "live host \(host)"
            return "free, last held by \(live): a guest may be paused there; run the janitor on host \(host)"
        case .lastHeldByFailingHost(let host):
            return "free, last held by host \(host), which is failing; sanlock declares it dead within 60 s: retry after that"
        case .lastHeldByHostOfUnknownState(let host):
            return "free, last held by host \(host), whose liveness is unknown (sanlock not consulted)"
        case .tooRecent(let age, let minimum):
            return "\(changed(age)), less than the minimum age \(DurationText.format(minimum))"
        case .clearedRecently(let host, let age, let minimum):
            let by = host.map { "host \($0)'s janitor" } ?? "an unknown tool"
            let remedy = host.map { "host \($0)'s next run of virt-sanlock-cleanup removes it, or any host's once it is older than" }
                ?? "removed once it is older than"
            return "invalidated by \(by), which was stopped before unlinking it (no host can acquire it, and its guest cannot start while it exists); \(changed(age)): \(remedy) the minimum age \(DurationText.format(minimum))"
        case .notRetiredHost:
            return "not a lease of a retired host"
        case .lastHolderGone(let host, let state):
            return "free, last held by host \(host), which \(state == .dead ? "sanlock reports dead" : "has left the lockspace")"
        case .abandonedUninitialised:
            return "uninitialised lease older than the minimum age: abandoned by libvirt"
        case .abandonedCleared(let host):
            return "invalidated lease older than the minimum age: left by \(host.map { "host \($0)'s" } ?? "an") interrupted cleanup"
        case .leftInvalidatedByThisHost:
            return "invalidated by this host's janitor, which was stopped before unlinking it (no host can acquire it, and its guest cannot start while it exists): removed whatever its age"
        case .heldByThisHost:
            return "held by this host"
        case .heldByLiveHost(let host, let state):
            guard let host else { return "held by another live host" }
            return state == .unknown ? "held by host \(host) (just joined, treated as live)" : "held by live host \(host)"
        case .heldByHostOfUnknownState(let host):
            return "held by host \(host) (its liveness is unknown: sanlock not consulted or host not in the lockspace)"
        case .ownerHostFailing(let host, let ioTimeout):
            let name = host.map { "owner host \($0)" } ?? "owner host"
            let io = ioTimeout == 0 ? 10 : Int(ioTimeout)
            return "\(name) failing (stopped renewing); sanlock declares it dead within 60 s (\(8 * io + 60) s after its last renewal): retry after that"
        case .heldShared(let hosts):
            return hosts.isEmpty ? "held in shared mode by live hosts" : "held shared by host\(hosts.count > 1 ? "s" : "") \(list(hosts))"
        case .hardLinked(let links):
            return "has \(links) hard links: never invalidated or removed, so that nothing outside the lease directory changes"
        case .neverAcquired:
            return "free, never acquired"
        case .released(let host):
            return "free, last held by host \(host)"
        case .ownerHostDead(let host, let state):
            return state == .free ? "held by host \(host), which has left the lockspace" : "held by host \(host), which sanlock reports dead"
        case .ownerHostRestarted(let host, let held, let current):
            return "held by host \(host) generation \(held); that host has restarted since (generation \(current))"
        case .sharedHoldersGone(let hosts):
            return "shared holder\(hosts.count > 1 ? "s" : "") \(list(hosts)) gone"
        }
    }
}

extension RemovalFailure {
    /// What stopped the removal, and what the path holds now.
    public var sentence: String {
        switch self {
        case .usedDuringRun(let scanned, let lver):
            return "acquired by another holder while this run looked at it (lease version \(scanned) when scanned, \(lver) after our acquire): a guest may have started; left for the next run"
        case .changedDuringRun:
            return "changed while this run looked at it (libvirt may have finished making it); looked at again next run"
        case .acquireBusy(let error):
            return "another host is acquiring it right now (\(error.symbolicName)); retry later"
        case .lockspaceNotJoined(let error):
            return "lockspace not joined on this host (\(error.symbolicName)); nothing deleted"
        case .acquireFailed(let error):
            return "could not acquire it: \(error)"
        case .invalidateFailed(let error, let now):
            return "could not invalidate it (\(error)); \(now.sentence)"
        case .replacedBeforeDeletion(let error):
            return "\(error.message) during the run: nothing was written, the path is left as it is now"
        case .unlinkFailed(let error, let now):
            return "could not unlink it (\(error.message)); \(now.sentence)"
        case .removeFailed(let error):
            return "could not unlink it (\(error.message)); left unchanged"
        case .interrupted(let signal):
            return "not attempted: the run was interrupted (signal \(signal))"
        case .connectionFailed(let error):
            return "cannot register with sanlock: \(error)"
        case .daemonNotAnswering(let error):
            return "\(error.code.message) (\(error.operation.rawValue)): the lease is untouched; no other lease was tried"
        }
    }
}

extension PathState {
    /// What the path holds, and what to do about it.
    public var sentence: String {
        switch self {
        case .intact: "the lease is as it was, released: usable by its guest"
        case .invalidated: "it is left invalidated (no host can acquire it): this host's next run removes it, whatever the minimum age"
        case .replaced: "the path now holds another file, left alone"
        case .gone: "the path now holds nothing"
        case .unknown(let what): "the path now holds: \(what.sentence)"
        }
    }
}

/// "changed 5m ago", or, for a modification time in the future (clock skew
/// between NFS clients and server, or a hand-made file), "changed 5m in the
/// future".
private func changed(_ age: Double) -> String {
    age < 0 ? "changed \(DurationText.format(-age)) in the future" : "changed \(DurationText.format(age)) ago"
}

private func hex<T: BinaryInteger>(_ value: T) -> String { String(value, radix: 16) }

private func list(_ hosts: [UInt64]) -> String { hosts.map(String.init).joined(separator: ", ") }

/// Names from disk can hold anything; keep report lines single.
private func printable(_ text: String) -> String { EntryName(text).escaped }

extension RemovalOutcome {
    /// "deleted", or "kept"/"failed" and the reason's sentence.
    var summary: String {
        switch self {
        case .deleted: "deleted"
        case .kept(let reason): "kept: \(reason.sentence)"
        case .failed(let failure): "failed: \(failure.sentence)"
        }
    }

    var metadata: Logger.Metadata {
        switch self {
        case .deleted: ["outcome": "deleted"]
        case .kept(let reason): ["outcome": "kept", "reason": "\(reason.code)"]
        case .failed(let failure): ["outcome": "failed", "reason": "\(failure.code)"]
        }
    }
}
