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
    /// A paused guest that is a live migration's source: the destination,
    /// where it now runs, holds the lease; libvirt ends the guest here next.
    case migratingOut = "migrating-out"
    /// A volume disk whose lease cannot be named from the status XML.
    case unmappedVolume = "unmapped-volume"

    /// The values that mean the disk is safe.
    public var isProtected: Bool {
        self == .held || self == .releasedWhilePaused || self == .migratingIn || self == .migratingOut
    }
}

/// How libvirt leases a disk: shareable disks in shared mode.
public enum LeaseMode: String, Sendable, Hashable, Codable {
    case exclusive, shared
}

/// Everything the audit knows about one disk's lease, gathered before the
/// judgement (the daemon's tokens, the file at the path, host liveness).
struct ProtectionFacts: Sendable, Hashable {
    /// Running (libvirt holds a running guest's leases) or paused (libvirt
    /// releases them on pause).
    var guestPaused: Bool
    /// The guest is the destination of a live migration (`<job async='migration in'>`).
    var migratingIn: Bool = false
    /// The guest is the source of a live migration (`<job async='migration out'>`).
    var migratingOut: Bool = false
    public var mode: LeaseMode
    /// The lease's name; nil for a volume disk the XML does not map.
    var leaseName: String?
    /// Held tokens of the guest's own process on this lease.
    var ownTokens: [DaemonStatus.Token]
    /// Held tokens of any other process of this host on this lease.
    var otherTokens: [DaemonStatus.Token]
    /// What the file at the lease path is (read from disk, without following
    /// a symlink).
    public var file: EntryKind
    /// Who this host is, and sanlock's liveness of every host: whose a hold
    /// is, and whether it stands, is judged as the cleaning run judges it.
    var lockspace: LockspaceFacts

    var thisHostID: UInt64? { lockspace.thisHostID }
    /// This host's generation: a lease held by this host at an older
    /// generation is a previous incarnation's.
    var thisGeneration: UInt64? { lockspace.thisGeneration }

    public init(
        guestPaused: Bool, migratingIn: Bool = false, migratingOut: Bool = false, mode: LeaseMode, leaseName: String?,
        ownTokens: [DaemonStatus.Token], otherTokens: [DaemonStatus.Token], file: EntryKind, lockspace: LockspaceFacts
    ) {
        self.guestPaused = guestPaused
        self.migratingIn = migratingIn
        self.migratingOut = migratingOut
        self.mode = mode
        self.leaseName = leaseName
        self.ownTokens = ownTokens
        self.otherTokens = otherTokens
        self.file = file
        self.lockspace = lockspace
    }
}

/// The audit's finding on one disk: the protection value, who holds the
/// lease, and what was seen (rendered in words by Report).
public struct ProtectionFinding: Sendable, Hashable {
    public var protection: Protection
    var holderPID: Int32?
    var holderHostID: UInt64?
    var evidence: ProtectionEvidence
    /// Set when a later reading found the disk unprotected and this, an
    /// earlier one's finding, stands (see `Snapshot.settled`).
    var settled: SettledReading?

    init(_ protection: Protection, holderPID: Int32? = nil, holderHostID: UInt64? = nil,
                evidence: ProtectionEvidence, settled: SettledReading? = nil) {
        self.protection = protection
        self.holderPID = holderPID
        self.holderHostID = holderHostID
        self.evidence = evidence
        self.settled = settled
    }
}

/// What the judgement saw, case by case.
enum ProtectionEvidence: Sendable, Hashable {
    /// A volume disk: its lease cannot be named from the status XML.
    case volumeUnnamed
    /// Another process of this host holds the lease.
    case heldByProcess(pid: Int32, shared: Bool)
    case noFile
    /// The file at the lease path is not a usable lease.
    case invalidFile(EntryKind)
    /// A migration's source holds it until the guest resumes here.
    case migrationSource(host: UInt64)
    /// A migration's destination holds it: the guest runs there now.
    case migrationDestination(host: UInt64)
    /// Another host's hold stands; `claimsThisHostsID`: that host has the id
    /// this host claims.
    case otherHostHolds(host: UInt64, guestPaused: Bool, claimsThisHostsID: Bool)
    /// Released on pause, held shared elsewhere, as a shareable disk allows.
    case releasedSharedElsewhere(hosts: [UInt64])
    /// Nobody's hold stands; `lapsed`: whose the leader still records.
    case released(lapsed: Holder?)
    /// The guest runs and holds nothing; `lapsed` as above.
    case notHeld(lapsed: Holder?)
    /// The guest's process holds it in the wrong mode.
    case wrongMode(heldShared: Bool, needed: LeaseMode)
    case heldFileRemoved
    case heldFileInvalid(EntryKind)
    /// The guest holds a lease that is not the file at the path.
    case heldFileReplaced(HeldLeaseMismatch)
    case held(shared: Bool, lver: UInt64)
}

/// How the file at the path differs from the lease the guest holds.
enum HeldLeaseMismatch: Sendable, Hashable {
    /// Shared: no mode block names this host at its generation.
    case modeBlocks(thisGeneration: UInt64?)
    /// Exclusive: the leader names another holder, generation or version.
    case leader(ownerID: UInt64, ownerGeneration: UInt64, lver: UInt64, held: Bool,
                heldLVer: UInt64, thisHostID: UInt64?, thisGeneration: UInt64?)
}

/// An earlier reading's finding standing for a disk a later one found
/// unprotected.
struct SettledReading: Sendable, Hashable {
    var delay: Double
    /// The guest's state at the earlier reading, when it differed.
    var earlierState: GuestState?
    /// What the later reading found.
    var laterProtection: Protection
}

extension Protection {
    /// The judgement: a pure function of the facts.
    static func judge(_ facts: ProtectionFacts) -> ProtectionFinding {
        guard facts.leaseName != nil else { return ProtectionFinding(.unmappedVolume, evidence: .volumeUnnamed) }
        if let own = facts.ownTokens.first {
            return judgeHeld(own, facts)
        }
        if let other = facts.otherTokens.first {
            return ProtectionFinding(
                .heldByOtherProcess, holderPID: other.pid, holderHostID: facts.thisHostID,
                evidence: .heldByProcess(pid: other.pid, shared: other.shared))
        }
        if let problem = fileProblem(facts.file) { return problem }
        guard case .autoLease(let state) = facts.file else { return ProtectionFinding(.notHeld, evidence: .notHeld(lapsed: nil)) }
        if let host = standingHolder(of: state, facts) {
            // A live migration hands the lease from host to host: the
            // source releases it when it pauses the guest at the end, the
            // destination acquires it before it starts the CPUs. A paused
            // end of a migration whose other end holds the lease is that
            // handover, not a disk in use elsewhere.
            if facts.guestPaused && facts.migratingIn {
                return ProtectionFinding(.migratingIn, holderHostID: host, evidence: .migrationSource(host: host))
            }
            if facts.guestPaused && facts.migratingOut {
                return ProtectionFinding(.migratingOut, holderHostID: host, evidence: .migrationDestination(host: host))
            }
            return ProtectionFinding(
                .heldByOtherHost, holderHostID: host,
                evidence: .otherHostHolds(host: host, guestPaused: facts.guestPaused, claimsThisHostsID: facts.thisHostID == host))
        }
        // Nobody's hold stands; say whose lapsed, if anyone's.
        let lapsed = state.held ? lapsedHold(state, facts) : nil
        if facts.guestPaused {
            if !state.sharedHolders.isEmpty {
                return ProtectionFinding(.releasedWhilePaused, evidence: .releasedSharedElsewhere(hosts: state.sharedHolders.map(\.hostID)))
            }
            return ProtectionFinding(.releasedWhilePaused, evidence: .released(lapsed: lapsed))
        }
        return ProtectionFinding(.notHeld, evidence: .notHeld(lapsed: lapsed))
    }

    /// The guest's process holds a token: the right mode, and the file at the
    /// path must be the lease it holds.
    private static func judgeHeld(_ token: DaemonStatus.Token, _ facts: ProtectionFacts) -> ProtectionFinding {
        let pid = token.pid
        func finding(_ protection: Protection, _ evidence: ProtectionEvidence) -> ProtectionFinding {
            ProtectionFinding(protection, holderPID: pid, holderHostID: facts.thisHostID, evidence: evidence)
        }
        guard token.shared == (facts.mode == .shared) else {
            return finding(.notHeld, .wrongMode(heldShared: token.shared, needed: facts.mode))
        }
        if case .vanished = facts.file { return finding(.fileMissing, .heldFileRemoved) }
        guard case .autoLease(let state) = facts.file else { return finding(.fileInvalid, .heldFileInvalid(facts.file)) }
        let matches: Bool
        if token.shared {
            matches = state.sharedHolders.contains { $0.hostID == facts.thisHostID && $0.generation == facts.thisGeneration }
        } else {
            matches = state.held && state.ownerID == facts.thisHostID && state.ownerGeneration == facts.thisGeneration
                && state.lver == token.lver
        }
        guard matches else {
            let mismatch: HeldLeaseMismatch = token.shared
                ? .modeBlocks(thisGeneration: facts.thisGeneration)
                : .leader(ownerID: state.ownerID, ownerGeneration: state.ownerGeneration, lver: state.lver, held: state.held,
                          heldLVer: token.lver, thisHostID: facts.thisHostID, thisGeneration: facts.thisGeneration)
            return finding(.fileReplaced, .heldFileReplaced(mismatch))
        }
        return finding(.held, .held(shared: token.shared, lver: token.lver))
    }

    /// A file that is not a usable lease.
    private static func fileProblem(_ file: EntryKind) -> ProtectionFinding? {
        switch file {
        case .autoLease, .lockspace: nil
        case .vanished: ProtectionFinding(.fileMissing, evidence: .noFile)
        default: ProtectionFinding(.fileInvalid, evidence: .invalidFile(file))
        }
    }

    /// A hold by another host that stands (the leader's owner, or a shared
    /// holder when this disk needs the lease exclusively): sanlock refuses
    /// the lease to this host while it does. A hold by a dead host, or by a
    /// daemon that restarted since, does not stand: anyone may take it.
    private static func standingHolder(of state: LeaseState, _ facts: ProtectionFacts) -> UInt64? {
        var holds: [(UInt64, UInt64)] = state.held && state.ownerID != 0 ? [(state.ownerID, state.ownerGeneration)] : []
        if facts.mode == .exclusive { holds += state.sharedHolders.map { ($0.hostID, $0.generation) } }
        return holds.first { id, generation in
            if case .otherHost = facts.lockspace.holder(id: id, generation: generation) { return true }
            return false
        }?.0
    }

    /// Whose hold the leader still records, when it does not stand.
    private static func lapsedHold(_ state: LeaseState, _ facts: ProtectionFacts) -> Holder? {
        let holder = facts.lockspace.holder(id: state.ownerID, generation: state.ownerGeneration)
        return holder.isAlive ? nil : holder
    }
}
