import Sanlock

/// What the decision knows besides the entries themselves.
struct DecisionContext: Sendable, Hashable {
    /// Who this host is and what sanlock says of every host (see `Holder`).
    var lockspace: LockspaceFacts
    /// Which guest disk each lease name belongs to.
    public var guests: GuestIndex
    var policy: DeletionPolicy
    /// Seconds since the epoch, for the minimum age.
    public var now: Double

    public init(lockspace: LockspaceFacts, guests: GuestIndex = GuestIndex(),
                policy: DeletionPolicy = DeletionPolicy(minimumAge: 0), now: Double = 0) {
        self.lockspace = lockspace
        self.guests = guests
        self.policy = policy
        self.now = now
    }

    /// A joined host (tests).
    public init(thisHostID: UInt64?, hosts: [UInt64: SanlockHost]?, guests: GuestIndex = GuestIndex(),
                policy: DeletionPolicy = DeletionPolicy(minimumAge: 0), now: Double = 0) {
        self.init(lockspace: LockspaceFacts(thisHostID: thisHostID, joined: thisHostID != nil, hosts: hosts),
                  guests: guests, policy: policy, now: now)
    }

    var thisHostID: UInt64? { lockspace.thisHostID }
    var hosts: [UInt64: SanlockHost]? { lockspace.hosts }

    /// sanlock's state of `host`, nil when unknown.
    func state(of host: UInt64) -> HostState? { lockspace.state(of: host) }
}

/// The keep-or-delete rules, all of them, as pure functions of the gathered
/// facts. Nothing here reads a file or talks to sanlock.
///
/// The rules only nominate leases: a `delete` verdict is carried out under
/// the lease itself (acquire, invalidate, unlink, release), so a lease that
/// a host takes after the facts were gathered is still safe. The rules keep
/// what sanlock would refuse anyway (so no acquire is wasted on it) and,
/// above all, what sanlock would hand over although it is still in use: the
/// leases of paused guests, here (status XML) or on other hosts (last-holder
/// rule).
enum Decision {
    static func verdicts(for entries: [LeaseEntry], in context: DecisionContext) -> [Verdict] {
        entries.map { verdict(for: $0, in: context) }
    }

    public static func verdict(for entry: LeaseEntry, in context: DecisionContext) -> Verdict {
        let verdict = nominate(entry, in: context)
        guard verdict.disposition == .delete, case .rule(let rule) = verdict.reason, rule.waitsForMinimumAge else {
            return verdict
        }
        // libvirt creates a lease moments before acquiring it, and a guest's
        // acquire or release rewrites it (and so its modification time):
        // leave recently changed files alone. A modification time in the
        // future (clock skew between NFS clients, or a hostile file) is
        // recent too.
        if let status = entry.status {
            let age = context.now - status.modified
            if !(age >= context.policy.minimumAge) {
                if case .abandonedCleared(let host) = rule {
                    return .keep(.clearedRecently(invalidatedBy: host, age: age, minimumAge: context.policy.minimumAge))
                }
                return .keep(.tooRecent(age: age, minimumAge: context.policy.minimumAge))
            }
        }
        return verdict
    }

    static func nominate(_ entry: LeaseEntry, in context: DecisionContext) -> Verdict {
        let retiring = !context.policy.retiredHosts.isEmpty
        // Invalidating or unlinking a file with other names would change or
        // keep alive an inode reachable from outside the lease directory;
        // libvirt never makes hard links here.
        if entry.kind.isLeaseFile, let links = entry.status?.linkCount, links > 1 {
            return retiring ? .keep(.notRetiredHost) : .keep(.hardLinked(links: links))
        }
        switch entry.kind {
        case .autoLease(let state):
            if retiring, !inRetirementScope(state, context.policy.retiredHosts) { return .keep(.notRetiredHost) }
            if let name = entry.name.string, let use = context.guests.protectingUse(of: name) {
                return .keep(use.stale ? .staleGuestStatus(use) : .usedByGuest(use))
            }
            let verdict = verdict(for: state, in: context)
            if verdict.disposition == .delete, let name = entry.name.string,
               context.guests.use(of: name) == nil, !context.guests.guestsWithUnmappedVolumes.isEmpty {
                // A live guest has a pool volume disk whose lease we cannot
                // name: this unknown lease may be it.
                return .keep(.unmappedVolumeGuests(context.guests.guestsWithUnmappedVolumes))
            }
            return verdict
        case .uninitialisedLease, .clearedLease:
            let invalidatedBy: UInt64? = if case .clearedLease(let cleared) = entry.kind { cleared.invalidatedBy } else { nil }
            if retiring, !(invalidatedBy.map(context.policy.retiredHosts.contains) ?? false) {
                return .keep(.notRetiredHost)
            }
            if let name = entry.name.string, let use = context.guests.protectingUse(of: name) {
                return .keep(use.stale ? .staleGuestStatus(use) : .usedByGuest(use))
            }
            // No host can acquire such a file, so no lock guards its removal.
            // Left in place it breaks the guest's next start: libvirt sees
            // the file exists and sanlock refuses it.
            guard case .clearedLease = entry.kind else {
                // The minimum age (applied by the caller) is what keeps
                // libvirt's half-made lease safe.
                return .delete(.abandonedUninitialised)
            }
            // A cleared leader naming this host as its holder was written by
            // this host's janitor, which was stopped before the unlink; a
            // cleaning run holds this host's run lock, so no janitor of this
            // host is still at it: remove it now, whatever its age.
            if let invalidatedBy, context.lockspace.isThisHost(invalidatedBy) { return .delete(.leftInvalidatedByThisHost) }
            // Another host's janitor may be between its write and its
            // unlink: its own next run removes it; anyone past the minimum age.
            return .delete(.abandonedCleared(invalidatedBy: invalidatedBy))
        case .lockspace:
            return retiring ? .keep(.notRetiredHost) : .keep(.lockspace)
        case .directory, .symlink, .special, .foreignFile, .corruptLease, .unreadable, .vanished:
            return .keep(Reason.describing(entry.kind))
        }
    }

    /// Retirement looks only at leases the retired hosts held last (or hold
    /// shared).
    static func inRetirementScope(_ state: LeaseState, _ retired: Set<UInt64>) -> Bool {
        retired.contains(state.ownerID) || state.sharedHolders.contains { retired.contains($0.hostID) }
    }

    static func verdict(for state: LeaseState, in context: DecisionContext) -> Verdict {
        // Shared holders first: while a shared acquire holds the leader for a
        // moment, a dead leader owner must not hide living shared holders.
        if !state.sharedHolders.isEmpty {
            let shared = verdictForShared(state.sharedHolders, in: context)
            if shared.disposition == .keep || !state.held { return shared }
        }
        if state.held { return verdictForHeld(state, in: context) }
        if state.neverAcquired { return .delete(.neverAcquired) }
        return verdictForReleased(lastOwner: state.ownerID, in: context)
    }

    /// The last-holder rule. A released lease keeps its last owner on disk.
    /// If that host is alive, the lease may belong to a guest paused there
    /// (libvirt releases leases on pause), which only that host's status
    /// XML can tell: leave it to the janitor of that host.
    private static func verdictForReleased(lastOwner: UInt64, in context: DecisionContext) -> Verdict {
        if context.lockspace.isThisHost(lastOwner) || context.policy.anyHost
            || context.policy.retiredHosts.contains(lastOwner) && context.state(of: lastOwner).map(isGone) == true {
            return .delete(.released(lastOwner: lastOwner))
        }
        guard let state = context.state(of: lastOwner) else {
            return .keep(.lastHeldByHostOfUnknownState(lastOwner))
        }
        switch state {
        case .free, .dead: return .delete(.lastHolderGone(lastOwner, state))
        case .failing: return .keep(.lastHeldByFailingHost(lastOwner))
        case .live, .unknown: return .keep(.lastHeldByLiveHost(lastOwner, state))
        }
    }

    private static func isGone(_ state: HostState) -> Bool { state == .free || state == .dead }

    /// Who holds it, judged as the audit judges it (`LockspaceFacts.holder`).
    private static func verdictForHeld(_ state: LeaseState, in context: DecisionContext) -> Verdict {
        let owner = state.ownerID
        // Without sanlock's view of the hosts, a held lease is in use: this
        // host's own (when this host is sure of its id), or a host's whose
        // state is unknown.
        guard context.hosts != nil else {
            return context.lockspace.isThisHost(owner) ? .keep(.heldByThisHost) : .keep(.heldByHostOfUnknownState(owner))
        }
        switch context.lockspace.holder(id: owner, generation: state.ownerGeneration) {
        case .thisHost:
            // As sanlock judges this host too: its leases go with it.
            switch context.state(of: owner) {
            case .dead?, .free?: return .delete(.ownerHostDead(owner, context.state(of: owner)!))
            case .failing?: return .keep(.ownerHostFailing(owner, ioTimeout: context.hosts?[owner]?.ioTimeout ?? 0))
            default: return .keep(.heldByThisHost)
            }
        case .thisHostsEarlierIncarnation(let generation):
            return .delete(.ownerHostRestarted(
                owner, heldGeneration: generation, currentGeneration: context.lockspace.thisGeneration ?? 0))
        case .otherHost(_, nil):
            return .keep(.heldByHostOfUnknownState(owner))
        case .otherHost(_, .failing?):
            return .keep(.ownerHostFailing(owner, ioTimeout: context.hosts?[owner]?.ioTimeout ?? 0))
        case .otherHost(_, let hostState?):
            return .keep(.heldByLiveHost(owner, hostState))
        case .restartedHost(_, let held, let current):
            return .delete(.ownerHostRestarted(owner, heldGeneration: held, currentGeneration: current))
        case .goneHost(_, let hostState):
            return .delete(.ownerHostDead(owner, hostState))
        }
    }

    private static func verdictForShared(_ holders: [ResourceOwner], in context: DecisionContext) -> Verdict {
        let ids = holders.map(\.hostID)
        guard context.hosts != nil else { return .keep(.heldShared(hosts: ids)) }
        let inUse = holders.filter { context.lockspace.holder(id: $0.hostID, generation: $0.generation).isAlive }
        // sanlock's acquire clears the mode blocks of dead shared holders.
        return inUse.isEmpty ? .delete(.sharedHoldersGone(hosts: ids)) : .keep(.heldShared(hosts: inUse.map(\.hostID)))
    }
}
