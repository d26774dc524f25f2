import Sanlock
@testable import SanlockCleanup
import Testing

@Suite("The keep-or-delete decision")
struct DecisionTests {
    static let me: UInt64 = 1
    static let other: UInt64 = 2

    static func host(_ id: UInt64, _ state: HostState, generation: UInt64 = 3, io: UInt32 = 10) -> SanlockHost {
        SanlockHost(hostID: id, generation: generation, timestamp: 100, ioTimeout: io, state: state)
    }

    static func context(_ hosts: [SanlockHost]?) -> DecisionContext {
        DecisionContext(thisHostID: me, hosts: hosts.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.hostID, $0) }) })
    }

    static func entry(_ kind: EntryKind) -> LeaseEntry {
        LeaseEntry(name: EntryName(String(repeating: "a", count: 32)), path: "/l/a", status: nil, kind: kind)
    }

    static func lease(owner: UInt64, generation: UInt64 = 3, lver: UInt64 = 4, held: Bool, shared: [(UInt64, UInt64)] = []) -> LeaseEntry {
        entry(.autoLease(LeaseState(
            ownerID: owner, ownerGeneration: generation, lver: lver, held: held,
            sharedHolders: shared.map { ResourceOwner(hostID: $0.0, generation: $0.1, timestamp: 0) })))
    }

    func verdict(_ entry: LeaseEntry, _ hosts: [SanlockHost]?) -> Verdict {
        Decision.verdict(for: entry, in: Self.context(hosts))
    }

    // MARK: Entries that are never deleted, whatever the hosts say.

    static let neverDeleted: [(EntryKind, String)] = [
        (.lockspace, "lockspace"),
        (.directory, "directory"),
        (.symlink(target: "/elsewhere/lease"), "symlink"),
        (.special(.fifo), "special-file"),
        (.foreignFile, "foreign-file"),
        (.uninitialisedLease, "uninitialised"),
        (.clearedLease, "cleared"),
        (.corruptLease(.badChecksum(stored: 1)), "corrupt-checksum"),
        (.corruptLease(.truncated(size: 1, needed: 2)), "corrupt-truncated"),
        (.corruptLease(.wrongLockspace("X")), "corrupt-names"),
        (.corruptLease(.wrongResourceName("X")), "corrupt-names"),
        (.corruptLease(.unsupportedVersion(5)), "corrupt-version"),
        (.corruptLease(.notALease(magic: 9)), "not-a-lease"),
        (.unreadable(FileSystemError(.open, path: "/l/a", errno: .permissionDenied)), "unreadable"),
        (.vanished, "vanished"),
    ]

    @Test(arguments: neverDeleted)
    func nonLeasesAreKept(kind: EntryKind, code: String) {
        for hosts in [nil, [Self.host(1, .live)], [Self.host(1, .dead), Self.host(2, .dead)]] {
            let result = verdict(Self.entry(kind), hosts)
            #expect(result.disposition == .keep)
            #expect(result.reason.code == code)
        }
    }

    // MARK: Free leases.

    @Test func neverAcquiredIsDeleted() {
        for hosts in [nil, [Self.host(1, .live)]] {
            #expect(verdict(Self.lease(owner: 0, generation: 0, lver: 0, held: false), hosts) == .delete(.neverAcquired))
        }
    }

    @Test(arguments: [me, other, 7])
    func releasedIsDeletedWithItsLastOwner(owner: UInt64) {
        #expect(verdict(Self.lease(owner: owner, held: false), [Self.host(1, .live), Self.host(2, .live)])
            == .delete(.released(lastOwner: owner)))
    }

    // MARK: Held leases: sanlock's view of the owner decides.

    @Test func heldWithoutLivenessIsKept() {
        #expect(verdict(Self.lease(owner: Self.other, held: true), nil) == .keep(.heldByHostOfUnknownState(Self.other)))
        #expect(verdict(Self.lease(owner: Self.me, held: true), nil) == .keep(.heldByThisHost))
    }

    @Test func heldByAHostMissingFromTheLockspaceIsKept() {
        #expect(verdict(Self.lease(owner: 9, held: true), [Self.host(1, .live)]) == .keep(.heldByHostOfUnknownState(9)))
    }

    static let heldCases: [(UInt64, HostState, Verdict)] = [
        (me, .live, .keep(.heldByThisHost)),
        (me, .unknown, .keep(.heldByThisHost)),
        (other, .live, .keep(.heldByLiveHost(other, .live))),
        (other, .unknown, .keep(.heldByLiveHost(other, .unknown))),
        (other, .failing, .keep(.ownerHostFailing(other, ioTimeout: 10))),
        (other, .dead, .delete(.ownerHostDead(other, .dead))),
        (other, .free, .delete(.ownerHostDead(other, .free))),
        (me, .dead, .delete(.ownerHostDead(me, .dead))),
    ]

    @Test(arguments: heldCases)
    func heldByHostInState(owner: UInt64, state: HostState, expected: Verdict) {
        let hosts = [Self.host(Self.me, owner == Self.me ? state : .live), Self.host(Self.other, owner == Self.other ? state : .live)]
        #expect(verdict(Self.lease(owner: owner, held: true), hosts) == expected)
    }

    @Test func heldByAPreviousIncarnationIsDeleted() {
        let hosts = [Self.host(Self.other, .live, generation: 5)]
        #expect(verdict(Self.lease(owner: Self.other, generation: 4, held: true), hosts)
            == .delete(.ownerHostRestarted(Self.other, heldGeneration: 4, currentGeneration: 5)))
        // Same generation: the holder is that live host.
        #expect(verdict(Self.lease(owner: Self.other, generation: 5, held: true), hosts) == .keep(.heldByLiveHost(Self.other, .live)))
    }

    // MARK: Shared leases.

    @Test func sharedWithoutLivenessIsKept() {
        #expect(verdict(Self.lease(owner: 1, held: false, shared: [(2, 3), (3, 1)]), nil) == .keep(.heldShared(hosts: [2, 3])))
    }

    @Test(arguments: [HostState.live, .unknown, .failing])
    func sharedByAnyLivingHolderIsKept(state: HostState) {
        let hosts = [Self.host(2, state), Self.host(3, .dead)]
        #expect(verdict(Self.lease(owner: 1, held: false, shared: [(2, 3), (3, 3)]), hosts) == .keep(.heldShared(hosts: [2])))
    }

    @Test func sharedByGoneHoldersIsDeleted() {
        let hosts = [Self.host(2, .dead), Self.host(3, .free), Self.host(4, .live, generation: 9)]
        #expect(verdict(Self.lease(owner: 1, held: false, shared: [(2, 3), (3, 3), (4, 8)]), hosts)
            == .delete(.sharedHoldersGone(hosts: [2, 3, 4])))
    }

    @Test func sharedByAHostMissingFromTheLockspaceIsKept() {
        #expect(verdict(Self.lease(owner: 1, held: false, shared: [(6, 1)]), [Self.host(1, .live)]) == .keep(.heldShared(hosts: [6])))
    }

    @Test func aLeaseSanlockCouldNotReadIsKept() {
        var state = LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false)
        state.sanlockReadError = SanlockError(.readResourceOwners, code: -5)
        #expect(verdict(Self.entry(.autoLease(state)), [Self.host(1, .live)]).disposition == .keep)
    }

    /// The invariant, over every combination: a lease held by a host that is
    /// live, unknown or failing, or held shared by one, is never nominated.
    @Test func noLeaseInUseIsEverNominated() {
        let states: [HostState?] = HostState.allCases + [nil]
        for owner in [Self.me, Self.other] {
            for ownerState in states {
                for held in [true, false] {
                    for sharedState in states {
                        var hosts: [SanlockHost] = []
                        if let ownerState { hosts.append(Self.host(owner, ownerState)) }
                        if let sharedState { hosts.append(Self.host(3, sharedState)) }
                        let entry = Self.lease(owner: owner, held: held, shared: sharedState == nil ? [] : [(3, 3)])
                        let result = verdict(entry, hosts)
                        let ownerInUse = held && (ownerState.map { [.live, .unknown, .failing].contains($0) } ?? true)
                        let sharedInUse = sharedState.map { [.live, .unknown, .failing].contains($0) } ?? false
                        if ownerInUse || sharedInUse {
                            #expect(result.disposition == .keep, "owner \(owner) \(String(describing: ownerState)) held \(held) shared \(String(describing: sharedState))")
                        }
                    }
                }
            }
        }
    }
}

@Suite("Reasons")
struct ReasonTests {
    static let everyReason: [Reason] = [
        .lockspace, .directory, .symlink(target: nil), .specialFile(.socket), .foreignFile, .uninitialised, .cleared,
        .corrupt(.badChecksum(stored: 0)), .corrupt(.truncated(size: 0, needed: 1)), .corrupt(.wrongLockspace("")),
        .corrupt(.unsupportedVersion(0)), .corrupt(.notALease(magic: 0)),
        .unreadable(FileSystemError(.read, path: "/p", errno: .ioError)), .vanished,
        .heldByThisHost, .heldByLiveHost(2, .live), .heldByHostOfUnknownState(2), .ownerHostFailing(2, ioTimeout: 1),
        .heldShared(hosts: [2]), .sanlockReadFailed(SanlockError(.readResourceOwners, code: -5)),
        .neverAcquired, .released(lastOwner: 2), .ownerHostDead(2, .dead), .ownerHostRestarted(2, heldGeneration: 1, currentGeneration: 2),
        .sharedHoldersGone(hosts: [2]), .acquireBusy(SanlockError(.acquire, code: -16)),
        .lockspaceNotJoined(SanlockError(.acquire, code: -28)), .acquireFailed(SanlockError(.acquire, code: -5)),
        .invalidateFailed(SanlockError(.writeResource, code: -5)),
        .replacedBeforeDeletion(FileSystemError(.stat, path: "/p", errno: .resourceBusy)),
        .unlinkFailed(FileSystemError(.unlink, path: "/p", errno: .notPermitted), leaseRestored: true),
        .connectionFailed(SanlockError(.register, code: -13)),
    ]

    @Test func codesAreStableKebabCase() {
        for reason in Self.everyReason {
            #expect(reason.code.allSatisfy { $0.isLowercase || $0 == "-" }, "\(reason.code)")
            #expect(!reason.sentence.isEmpty)
            #expect(!reason.sentence.contains("\n"))
        }
    }

    @Test func sentencesNameHostsAndTimes() {
        #expect(Reason.heldByLiveHost(2, .live).sentence == "held by live host 2")
        #expect(Reason.released(lastOwner: 3).sentence == "free, last held by host 3")
        #expect(Reason.ownerHostFailing(4, ioTimeout: 1).sentence.contains("68 s"))
        #expect(Reason.ownerHostFailing(4, ioTimeout: 0).sentence.contains("140 s"))
        #expect(Reason.unlinkFailed(FileSystemError(.unlink, path: "/p", errno: .notPermitted), leaseRestored: false)
            .sentence.contains("delete it by hand"))
        #expect(Reason.symlink(target: "/a\nb").sentence == "symlink to /a\\nb (never followed, never deleted)")
    }

    @Test func errorCodesAreCarried() {
        #expect(Reason.acquireFailed(SanlockError(.acquire, code: -243)).errorCode == -243)
        #expect(Reason.unreadable(FileSystemError(.read, path: "/p", errno: .ioError)).errorCode == 5)
        #expect(Reason.neverAcquired.errorCode == nil)
    }
}
