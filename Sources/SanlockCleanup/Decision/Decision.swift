import Sanlock

/// What the decision knows besides the entries themselves.
public struct DecisionContext: Sendable, Hashable {
    /// This host's id in the lockspace (from the daemon when joined, else
    /// from the configuration); nil when unknown.
    public var thisHostID: UInt64?
    /// sanlock's liveness verdict for each host of the lockspace; nil when
    /// the daemon was not asked (dry run without a daemon).
    public var hosts: [UInt64: SanlockHost]?

    public init(thisHostID: UInt64?, hosts: [UInt64: SanlockHost]?) {
        self.thisHostID = thisHostID
        self.hosts = hosts
    }
}

/// The keep-or-delete rules, all of them, as pure functions of the gathered
/// facts. Nothing here reads a file or talks to sanlock.
///
/// The rules only nominate leases: a `delete` verdict is carried out under
/// the lease itself (acquire, invalidate, unlink, release), so a lease that
/// a host takes after the facts were gathered is still safe. The rules keep
/// what sanlock would refuse anyway (so no acquire is wasted on it) and what
/// sanlock would hand over although it is still in use.
public enum Decision {
    public static func verdicts(for entries: [LeaseEntry], in context: DecisionContext) -> [Verdict] {
        entries.map { verdict(for: $0, in: context) }
    }

    public static func verdict(for entry: LeaseEntry, in context: DecisionContext) -> Verdict {
        switch entry.kind {
        case .lockspace: .keep(.lockspace)
        case .directory: .keep(.directory)
        case .symlink(let target): .keep(.symlink(target: target))
        case .special(let type): .keep(.specialFile(type))
        case .foreignFile: .keep(.foreignFile)
        case .uninitialisedLease: .keep(.uninitialised)
        case .clearedLease: .keep(.cleared)
        case .corruptLease(let corruption): .keep(.corrupt(corruption))
        case .unreadable(let error): .keep(.unreadable(error))
        case .vanished: .keep(.vanished)
        case .autoLease(let state): verdict(for: state, in: context)
        }
    }

    static func verdict(for state: LeaseState, in context: DecisionContext) -> Verdict {
        if let error = state.sanlockReadError { return .keep(.sanlockReadFailed(error)) }
        // Shared holders first: while a shared acquire holds the leader for a
        // moment, a dead leader owner must not hide living shared holders.
        if !state.sharedHolders.isEmpty {
            let shared = verdictForShared(state.sharedHolders, in: context)
            if shared.disposition == .keep || !state.held { return shared }
        }
        if state.held { return verdictForHeld(state, in: context) }
        if state.neverAcquired { return .delete(.neverAcquired) }
        return .delete(.released(lastOwner: state.ownerID))
    }

    private static func verdictForHeld(_ state: LeaseState, in context: DecisionContext) -> Verdict {
        let owner = state.ownerID
        guard let host = context.hosts?[owner] else {
            // Without sanlock's view of the owner, a held lease is in use.
            return owner == context.thisHostID ? .keep(.heldByThisHost) : .keep(.heldByHostOfUnknownState(owner))
        }
        if state.ownerGeneration > 0, host.generation > state.ownerGeneration {
            return .delete(.ownerHostRestarted(
                owner, heldGeneration: state.ownerGeneration, currentGeneration: host.generation))
        }
        switch host.state {
        case .live, .unknown:
            return owner == context.thisHostID ? .keep(.heldByThisHost) : .keep(.heldByLiveHost(owner, host.state))
        case .failing:
            return .keep(.ownerHostFailing(owner, ioTimeout: host.ioTimeout))
        case .dead, .free:
            return .delete(.ownerHostDead(owner, host.state))
        }
    }

    private static func verdictForShared(_ holders: [ResourceOwner], in context: DecisionContext) -> Verdict {
        let ids = holders.map(\.hostID)
        guard let hosts = context.hosts else { return .keep(.heldShared(hosts: ids)) }
        let inUse = holders.filter { holder in
            guard let host = hosts[holder.hostID] else { return true }
            if holder.generation > 0, host.generation > holder.generation { return false }
            return host.state == .live || host.state == .unknown || host.state == .failing
        }
        // sanlock's acquire clears the mode blocks of dead shared holders.
        return inUse.isEmpty ? .delete(.sharedHoldersGone(hosts: ids)) : .keep(.heldShared(hosts: inUse.map(\.hostID)))
    }
}
