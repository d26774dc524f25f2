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
    /// A volume disk whose lease cannot be named from the status XML.
    case unmappedVolume = "unmapped-volume"

    /// The two values that mean the disk is safe.
    public var isProtected: Bool { self == .held || self == .releasedWhilePaused }
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
    public var thisHostID: UInt64?
    /// This host's generation in the lockspace: a lease held by this host at
    /// an older generation is a previous incarnation's.
    public var thisGeneration: UInt64?
    /// sanlock's liveness of other hosts; a host missing from it counts as
    /// possibly live.
    public var hosts: [UInt64: SanlockHost]

    public init(
        guestPaused: Bool, mode: LeaseMode, leaseName: String?, ownTokens: [DaemonStatus.Token],
        otherTokens: [DaemonStatus.Token], file: EntryKind, thisHostID: UInt64?, thisGeneration: UInt64?,
        hosts: [UInt64: SanlockHost]
    ) {
        self.guestPaused = guestPaused
        self.mode = mode
        self.leaseName = leaseName
        self.ownTokens = ownTokens
        self.otherTokens = otherTokens
        self.file = file
        self.thisHostID = thisHostID
        self.thisGeneration = thisGeneration
        self.hosts = hosts
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
        if case .autoLease(let state) = facts.file, let host = otherHolder(of: state, facts) {
            return ProtectionFinding(
                .heldByOtherHost, holderHostID: host,
                detail: facts.guestPaused
                    ? "host \(host) holds it: the guest cannot resume here, and its disk may be in use there"
                    : "host \(host) holds it while the guest runs here")
        }
        if facts.guestPaused {
            return ProtectionFinding(.releasedWhilePaused, detail: "released on pause; the file is a valid lease nobody holds")
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

    /// Another host that holds the lease (exclusively, or shared when this
    /// disk needs it exclusively), unless sanlock says that host is dead or
    /// gone: its leases can then be taken.
    private static func otherHolder(of state: LeaseState, _ facts: ProtectionFacts) -> UInt64? {
        func mayBeAlive(_ host: UInt64) -> Bool {
            guard let known = facts.hosts[host] else { return true }
            return known.state != .dead && known.state != .free
        }
        if state.held, state.ownerID != 0, state.ownerID != facts.thisHostID, mayBeAlive(state.ownerID) {
            return state.ownerID
        }
        if facts.mode == .exclusive {
            return state.sharedHolders.first { $0.hostID != facts.thisHostID && mayBeAlive($0.hostID) }?.hostID
        }
        return nil
    }
}
