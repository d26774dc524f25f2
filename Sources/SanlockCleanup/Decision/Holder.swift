import Sanlock

/// Who this host is in the lockspace, and what sanlock says of every host:
/// the facts from which both the cleaning run and the audit judge who holds
/// a lease and whether that hold is alive (`holder(id:generation:)`).
struct LockspaceFacts: Sendable, Hashable {
    /// This host's id: the daemon's when joined, else `--host-id` or
    /// `host_id` from the configuration (unproven).
    var thisHostID: UInt64?
    /// The daemon has joined the lockspace (not merely adding it): then
    /// `thisHostID` is sanlock's own, and its generation is current.
    var joined: Bool
    /// The name this host's daemon joins with (`our_host_name`), if asked.
    var thisHostName: String?
    /// sanlock's liveness verdict for each host; nil when not available (no
    /// daemon, or not joined). A host missing from it is one sanlock could
    /// not tell about: unknown.
    var hosts: [UInt64: SanlockHost]?
    /// The name each host id last joined with, from its delta lease in the
    /// lockspace file.
    var hostNames: [UInt64: String]
    /// The generation each host id last joined at, from the same delta leases.
    var generationsOnDisk: [UInt64: UInt64]

    public init(thisHostID: UInt64?, joined: Bool, thisHostName: String? = nil,
                hosts: [UInt64: SanlockHost]?, hostNames: [UInt64: String] = [:],
                generationsOnDisk: [UInt64: UInt64] = [:]) {
        self.thisHostID = thisHostID
        self.joined = joined
        self.thisHostName = thisHostName
        self.hosts = hosts
        self.hostNames = hostNames
        self.generationsOnDisk = generationsOnDisk
    }

    /// What the site says of this host, with `hosts` as sanlock's liveness.
    public init(site: Site, hosts: [UInt64: SanlockHost]?) {
        self.init(thisHostID: site.thisHostID, joined: site.sanlock.joined != nil, thisHostName: site.sanlock.hostName,
                  hosts: hosts, hostNames: site.hostNames, generationsOnDisk: site.generationsOnDisk)
    }

    /// This host's current generation (joined only). sanlock's, else the
    /// one this host's delta lease in the lockspace file records: after a
    /// join sanlock cannot list the hosts (EAGAIN) until its first renewal
    /// has read the others' delta leases, up to 2 × io_timeout (docs/design.md,
    /// "sanlock"), while the join itself wrote this host's generation. Without
    /// it every lease a guest here holds would pass for another generation's.
    var thisGeneration: UInt64? {
        guard joined, let thisHostID else { return nil }
        if let generation = hosts?[thisHostID]?.generation { return generation }
        return identityConflict == nil ? generationsOnDisk[thisHostID] : nil
    }

    /// sanlock's state of `host`, nil when unknown.
    public func state(of host: UInt64) -> HostState? { hosts?[host]?.state }

    /// Whether host id `id` is this host. Joined, sanlock says so. Not
    /// joined, the configured id is only a claim: another host may have
    /// joined with it (two hosts configured alike), and a lease that host
    /// holds must not pass for this host's. The claim falls when the
    /// lockspace file's delta lease for `id` names another host than this
    /// host's daemon (`identityConflict`).
    func isThisHost(_ id: UInt64) -> Bool {
        guard id != 0, id == thisHostID else { return false }
        return joined || identityConflict == nil
    }

    /// A conflict between what this host claims to be and what the
    /// lockspace says: another name than this host's daemon's on this
    /// host's id. Another host joined with it (two hosts configured with the
    /// same `host_id`), or this host's daemon restarted under a new name
    /// (sanlock makes one up at each start unless it is configured) and has
    /// not joined again: either way no disk of a guest here is safe.
    var identityConflict: IdentityConflict? {
        guard let id = thisHostID, let ours = thisHostName, !ours.isEmpty,
              let named = hostNames[id], !named.isEmpty, named != ours else { return nil }
        return IdentityConflict(hostID: id, lockspaceName: named, thisHostName: ours)
    }

    /// The judgement of one hold (a leader's owner, or a shared holder's
    /// mode block): whose it is, and whether it is alive.
    func holder(id: UInt64, generation: UInt64) -> Holder {
        if isThisHost(id) {
            // Not joined, no incarnation of this host's daemon holds anything:
            // the hold is an earlier one's (a daemon restarted under it).
            guard joined else { return .thisHostsEarlierIncarnation(generation: generation) }
            if let current = thisGeneration, generation > 0, current > generation {
                return .thisHostsEarlierIncarnation(generation: generation)
            }
            return .thisHost
        }
        guard let host = hosts?[id] else { return .otherHost(id, nil) }
        // A host's generation grows each time its daemon joins: a hold by an
        // earlier generation died with that daemon, and anyone may take it.
        if generation > 0, host.generation > generation {
            return .restartedHost(id, heldGeneration: generation, currentGeneration: host.generation)
        }
        switch host.state {
        case .dead, .free: return .goneHost(id, host.state)
        case .live, .unknown, .failing: return .otherHost(id, host.state)
        }
    }
}

/// Whose a hold is, and whether it is alive.
enum Holder: Sendable, Hashable {
    /// This host's daemon as it is now.
    case thisHost
    /// This host, at an older generation (or while its daemon has not joined
    /// the lockspace): the daemon that held it is gone.
    case thisHostsEarlierIncarnation(generation: UInt64)
    /// Another host that may be alive (live, just joined, failing), or that
    /// sanlock cannot tell about (nil): its hold stands.
    case otherHost(UInt64, HostState?)
    /// Another host whose daemon restarted since: the hold died with it.
    case restartedHost(UInt64, heldGeneration: UInt64, currentGeneration: UInt64)
    /// Another host sanlock reports dead or gone.
    case goneHost(UInt64, HostState)

    /// The hold stands: sanlock refuses the lease to anyone else.
    var isAlive: Bool {
        switch self {
        case .thisHost, .otherHost: true
        case .thisHostsEarlierIncarnation, .restartedHost, .goneHost: false
        }
    }
}

/// This host claims an id that the lockspace file gives another host: two
/// hosts configured with the same `host_id`.
struct IdentityConflict: Sendable, Hashable {
    public var hostID: UInt64
    /// The name host `hostID`'s delta lease carries.
    var lockspaceName: String
    /// The name this host's daemon joins with.
    var thisHostName: String
}
