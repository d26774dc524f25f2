import Sanlock

/// Whether a guest's disk is protected by its lease, as `--audit` reports it.
public enum Protection: String, Sendable, Hashable, CaseIterable, Codable {
    /// The guest's process holds the lease in the right mode, and the file
    /// at the lease path is the lease it holds.
    case held
    /// The guest runs without holding the lease: another host can take it.
    case notHeld = "not-held"
    /// Another process on this host holds it.
    case heldByOtherProcess = "held-by-other-process"
    /// Another live host holds it.
    case heldByOtherHost = "held-by-other-host"
    case fileMissing = "file-missing"
    /// The guest holds a lease that is no longer the file at the path: a
    /// host that acquires the file at the path gets the disk.
    case fileReplaced = "file-replaced"
    /// The file at the path is cleared, corrupt, uninitialised or not a file.
    case fileInvalid = "file-invalid"
    /// A paused guest: libvirt released the lease; the file is there and
    /// nobody holds it, so the guest can resume.
    case releasedWhilePaused = "released-while-paused"
    /// A paused guest that is a live migration's destination: another host
    /// (the source, where it still runs) holds the lease until the guest
    /// resumes here.
    case migratingIn = "migrating-in"
    /// A volume disk whose lease cannot be named from the status XML.
    case unmappedVolume = "unmapped-volume"

    /// The values that mean the disk is safe.
    public var isProtected: Bool { self == .held || self == .releasedWhilePaused || self == .migratingIn }
}

/// How libvirt leases a disk: shareable disks in shared mode.
public enum LeaseMode: String, Sendable, Hashable, Codable {
    case exclusive, shared
}

/// Everything the audit knows about one disk's lease, gathered before the
/// judgement (the daemon's tokens, the file at the path, host liveness).
public struct ProtectionFacts: Sendable, Hashable {
    /// Running (libvirt holds a running guest's leases) or paused (libvirt
    /// releases them on pause).
    public var guestPaused: Bool
    /// The guest is the destination of a live migration (`<job async='migration in'>`).
    public var migratingIn: Bool = false
    public var mode: LeaseMode
    /// The lease's name; nil for a volume disk the XML does not map.
    public var leaseName: String?
    /// Held tokens of the guest's own process on this lease.
    public var ownTokens: [DaemonStatus.Token]
    /// Held tokens of any other process of this host on this lease.
    public var otherTokens: [DaemonStatus.Token]
    /// What the file at the lease path is (read from disk, without following
    /// a symlink).
    public var file: EntryKind
    /// Who this host is, and sanlock's liveness of every host: whose a hold
    /// is, and whether it stands, is judged as the cleaning run judges it.
    public var lockspace: LockspaceFacts

    public var thisHostID: UInt64? { lockspace.thisHostID }
    /// This host's generation: a lease held by this host at an older
    /// generation is a previous incarnation's.
    public var thisGeneration: UInt64? { lockspace.thisGeneration }

    public init(
        guestPaused: Bool, migratingIn: Bool = false, mode: LeaseMode, leaseName: String?, ownTokens: [DaemonStatus.Token],
        otherTokens: [DaemonStatus.Token], file: EntryKind, lockspace: LockspaceFacts
    ) {
        self.guestPaused = guestPaused
        self.migratingIn = migratingIn
        self.mode = mode
        self.leaseName = leaseName
        self.ownTokens = ownTokens
        self.otherTokens = otherTokens
        self.file = file
        self.lockspace = lockspace
    }
}

/// The audit's finding on one disk.
public struct ProtectionFinding: Sendable, Hashable {
    public var protection: Protection
    public var holderPID: Int32?
    public var holderHostID: UInt64?
    /// What exactly was seen, for the report (no trailing period).
    public var detail: String

    public init(_ protection: Protection, holderPID: Int32? = nil, holderHostID: UInt64? = nil, detail: String) {
        self.protection = protection
        self.holderPID = holderPID
        self.holderHostID = holderHostID
        self.detail = detail
    }
}

extension Protection {
    /// The judgement: a pure function of the facts.
    public static func judge(_ facts: ProtectionFacts) -> ProtectionFinding {
        guard facts.leaseName != nil else {
            return ProtectionFinding(.unmappedVolume, detail: "the lease of a volume disk cannot be named from the status XML")
        }
        if let own = facts.ownTokens.first {
            return judgeHeld(own, facts)
        }
        if let other = facts.otherTokens.first {
            return ProtectionFinding(
                .heldByOtherProcess, holderPID: other.pid, holderHostID: facts.thisHostID,
                detail: "process \(other.pid) of this host holds it\(other.shared ? " shared" : ""), not the guest's")
        }
        if let problem = fileProblem(facts.file) { return problem }
        guard case .autoLease(let state) = facts.file else { return ProtectionFinding(.notHeld, detail: "no lease") }
        if let holder = standingHolder(of: state, facts) {
            let host = holder.id
            if facts.guestPaused && facts.migratingIn {
                return ProtectionFinding(
                    .migratingIn, holderHostID: host,
                    detail: "the destination of a live migration: host \(host), where the guest still runs, holds it until it resumes here")
            }
            let whose = facts.thisHostID == host ? " (this host's id, in the lockspace another host's)" : ""
            return ProtectionFinding(
                .heldByOtherHost, holderHostID: host,
                detail: facts.guestPaused
                    ? "host \(host)\(whose) holds it: the guest cannot resume here, and its disk may be in use there"
                    : "host \(host)\(whose) holds it while the guest runs here")
        }
        // Nobody's hold stands; say whose lapsed, if anyone's.
        let lapsed = state.held ? lapsedHold(state, facts) : nil
        if facts.guestPaused {
            if !state.sharedHolders.isEmpty {
                let hosts = state.sharedHolders.map { String($0.hostID) }.joined(separator: ", ")
                return ProtectionFinding(
                    .releasedWhilePaused,
                    detail: "released on pause; host \(hosts) hold\(state.sharedHolders.count == 1 ? "s" : "") it shared, which a shareable disk allows")
            }
            if let lapsed {
                return ProtectionFinding(.releasedWhilePaused, detail: "released on pause; \(lapsed), so the guest can resume")
            }
            return ProtectionFinding(.releasedWhilePaused, detail: "released on pause; the file is a valid lease nobody holds")
        }
        if let lapsed {
            return ProtectionFinding(.notHeld, detail: "the guest runs, but its process holds no lease on this disk; \(lapsed)")
        }
        return ProtectionFinding(.notHeld, detail: "the guest runs, but its process holds no lease on this disk")
    }

    /// The guest's process holds a token: the right mode, and the file at the
    /// path must be the lease it holds.
    private static func judgeHeld(_ token: DaemonStatus.Token, _ facts: ProtectionFacts) -> ProtectionFinding {
        let pid = token.pid
        guard token.shared == (facts.mode == .shared) else {
            let held = token.shared ? "shared" : "exclusive"
            return ProtectionFinding(
                .notHeld, holderPID: pid, holderHostID: facts.thisHostID,
                detail: "the guest's process holds it \(held), not \(facts.mode.rawValue)")
        }
        if case .vanished = facts.file {
            return ProtectionFinding(
                .fileMissing, holderPID: pid, holderHostID: facts.thisHostID,
                detail: "the guest holds a lease whose file was removed: a new file at the path can be taken by any host")
        }
        guard case .autoLease(let state) = facts.file else {
            let problem = fileProblem(facts.file)
            return ProtectionFinding(
                .fileInvalid, holderPID: pid, holderHostID: facts.thisHostID,
                detail: "the guest holds the lease, but \(problem?.detail ?? "the file at the lease path is not a lease")")
        }
        let matches: Bool
        if token.shared {
            matches = state.sharedHolders.contains { $0.hostID == facts.thisHostID && $0.generation == facts.thisGeneration }
        } else {
            matches = state.held && state.ownerID == facts.thisHostID && state.ownerGeneration == facts.thisGeneration
                && state.lver == token.lver
        }
        guard matches else {
            let leader = token.shared
                ? "the file's mode blocks do not name this host at generation \(facts.thisGeneration.map(String.init) ?? "?")"
                : "the file's leader says host \(state.ownerID) generation \(state.ownerGeneration) lver \(state.lver)"
                    + "\(state.held ? "" : " (free)"), the held lease is lver \(token.lver) of host "
                    + "\(facts.thisHostID.map(String.init) ?? "?") generation \(facts.thisGeneration.map(String.init) ?? "?")"
            return ProtectionFinding(
                .fileReplaced, holderPID: pid, holderHostID: facts.thisHostID,
                detail: "the lease the guest holds is no longer the file at the path: \(leader)")
        }
        return ProtectionFinding(
            .held, holderPID: pid, holderHostID: facts.thisHostID,
            detail: token.shared ? "held shared by the guest's process" : "held by the guest's process (lver \(token.lver))")
    }

    /// A file that is not a usable lease.
    private static func fileProblem(_ file: EntryKind) -> ProtectionFinding? {
        switch file {
        case .autoLease, .lockspace:
            nil
        case .vanished:
            ProtectionFinding(.fileMissing, detail: "no lease file at the path")
        default:
            ProtectionFinding(.fileInvalid, detail: "the file at the lease path: \(Reason.describing(file).sentence)")
        }
    }

    /// A hold by another host that stands (the leader's owner, or a shared
    /// holder when this disk needs the lease exclusively): sanlock refuses
    /// the lease to this host while it does. A hold by a dead host, or by a
    /// daemon that restarted since, does not stand: anyone may take it.
    private static func standingHolder(of state: LeaseState, _ facts: ProtectionFacts) -> (id: UInt64, holder: Holder)? {
        var holds: [(UInt64, UInt64)] = state.held && state.ownerID != 0 ? [(state.ownerID, state.ownerGeneration)] : []
        if facts.mode == .exclusive { holds += state.sharedHolders.map { ($0.hostID, $0.generation) } }
        for (id, generation) in holds {
            let holder = facts.lockspace.holder(id: id, generation: generation)
            if case .otherHost = holder { return (id, holder) }
        }
        return nil
    }

    /// Whose hold the leader still records, when it does not stand.
    private static func lapsedHold(_ state: LeaseState, _ facts: ProtectionFacts) -> String? {
        switch facts.lockspace.holder(id: state.ownerID, generation: state.ownerGeneration) {
        case .thisHost, .otherHost:
            return nil
        case .thisHostsEarlierIncarnation(let generation):
            return "the leader still names this host at generation \(generation), an earlier incarnation of its sanlock daemon, "
                + "which sanlock lets any host take over"
        case .restartedHost(let host, let held, let current):
            return "the leader names host \(host) at generation \(held); that host has restarted since (generation \(current)), "
                + "so any host may take it"
        case .goneHost(let host, let hostState):
            return "the leader names host \(host), which sanlock reports \(hostState.rawValue), so any host may take it"
        }
    }
}
