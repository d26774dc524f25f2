import Foundation
import Sanlock
@testable import SanlockCleanup
import Testing

/// One judgement of who holds a lease, and whether that hold stands, for the
/// cleaning run and the audit alike.
@Suite("Who holds a lease, and whether the hold stands")
struct HolderTests {
    static func host(_ id: UInt64, generation: UInt64, _ state: HostState) -> (UInt64, SanlockHost) {
        (id, SanlockHost(hostID: id, generation: generation, timestamp: 1, ioTimeout: 10, state: state))
    }

    static let joined = LockspaceFacts(
        thisHostID: 1, joined: true, thisHostName: "a",
        hosts: Dictionary(uniqueKeysWithValues: [host(1, generation: 4, .live), host(2, generation: 3, .live),
                                                 host(3, generation: 1, .failing), host(4, generation: 1, .dead)]),
        hostNames: [1: "a", 2: "b"])

    @Test func joinedHost() {
        #expect(Self.joined.holder(id: 1, generation: 4) == .thisHost)
        #expect(Self.joined.holder(id: 1, generation: 3) == .thisHostsEarlierIncarnation(generation: 3))
        #expect(Self.joined.holder(id: 2, generation: 3) == .otherHost(2, .live))
        #expect(Self.joined.holder(id: 2, generation: 2) == .restartedHost(2, heldGeneration: 2, currentGeneration: 3))
        #expect(Self.joined.holder(id: 3, generation: 1) == .otherHost(3, .failing))
        #expect(Self.joined.holder(id: 4, generation: 1) == .goneHost(4, .dead))
        #expect(Self.joined.holder(id: 9, generation: 1) == .otherHost(9, nil))
        #expect(Self.joined.holder(id: 2, generation: 3).isAlive && !Self.joined.holder(id: 4, generation: 1).isAlive)
        #expect(Self.joined.identityConflict == nil)
    }

    @Test("Not joined: the configured id is this host only if the lockspace file does not name another host for it")
    func notJoined() {
        var facts = LockspaceFacts(thisHostID: 1, joined: false, thisHostName: "a", hosts: nil, hostNames: [1: "a"])
        #expect(facts.isThisHost(1))
        #expect(facts.holder(id: 1, generation: 7) == .thisHostsEarlierIncarnation(generation: 7))
        facts.hostNames = [1: "b"]
        #expect(!facts.isThisHost(1))
        #expect(facts.holder(id: 1, generation: 7) == .otherHost(1, nil))
        #expect(facts.identityConflict == IdentityConflict(hostID: 1, lockspaceName: "b", thisHostName: "a"))
        // What cannot be compared is taken as claimed.
        facts.thisHostName = nil
        #expect(facts.isThisHost(1) && facts.identityConflict == nil)
    }

    /// After a join sanlock answers sanlock_get_hosts with EAGAIN until its
    /// first renewal: no host table. The join wrote this host's generation
    /// into its delta lease, which the lockspace file gives.
    @Test("No host table yet: this host's generation from its delta lease, unless the lockspace names another host")
    func generationFromTheLockspaceFile() {
        var facts = LockspaceFacts(thisHostID: 1, joined: true, thisHostName: "a", hosts: nil,
                                   hostNames: [1: "a", 2: "b"], generationsOnDisk: [1: 4, 2: 3])
        #expect(facts.thisGeneration == 4)
        #expect(facts.holder(id: 1, generation: 4) == .thisHost)
        #expect(facts.holder(id: 1, generation: 3) == .thisHostsEarlierIncarnation(generation: 3))
        // Another host's: sanlock cannot say whether it lives, so it stands.
        #expect(facts.holder(id: 2, generation: 3) == .otherHost(2, nil))
        // sanlock's word wins over the file's.
        facts.hosts = Dictionary(uniqueKeysWithValues: [Self.host(1, generation: 5, .live)])
        #expect(facts.thisGeneration == 5)
        // The file gives this host's id to another host: not ours to read.
        facts.hosts = nil
        facts.hostNames[1] = "b"
        #expect(facts.thisGeneration == nil)
        // Not joined: no current generation at all.
        facts.hostNames[1] = "a"
        facts.joined = false
        #expect(facts.thisGeneration == nil)
    }

    @Test("The cleaning run judges holders as the audit does")
    func decisionUsesTheSameJudgement() {
        let context = DecisionContext(lockspace: Self.joined)
        func verdict(owner: UInt64, generation: UInt64) -> Verdict {
            Decision.verdict(for: LeaseEntry(
                name: EntryName(String(repeating: "a", count: 32)), path: "/l/a",
                status: FileStatus(identity: FileIdentity(device: 1, inode: 2), type: .regular, size: 1 << 20, modified: 0),
                kind: .autoLease(LeaseState(ownerID: owner, ownerGeneration: generation, lver: 2, held: true))), in: context)
        }
        #expect(verdict(owner: 1, generation: 4) == .keep(.heldByThisHost))
        #expect(verdict(owner: 1, generation: 3) == .delete(.ownerHostRestarted(1, heldGeneration: 3, currentGeneration: 4)))
        #expect(verdict(owner: 2, generation: 2) == .delete(.ownerHostRestarted(2, heldGeneration: 2, currentGeneration: 3)))
        #expect(verdict(owner: 2, generation: 3) == .keep(.heldByLiveHost(2, .live)))
        #expect(verdict(owner: 4, generation: 1) == .delete(.ownerHostDead(4, .dead)))
    }
}

/// Issue 20, defect 4: two readings, and a disk reported unprotected only
/// when every reading that saw it agrees.
@Suite("The audit's second reading")
struct SettledReadingTests {
    static func guest(_ name: String, _ state: GuestState, _ protection: Protection, pid: Int32 = 10) -> AuditReport.Guest {
        AuditReport.Guest(
            name: name, state: state, stateReason: nil, asyncJob: nil, pid: pid,
            disks: [AuditReport.Disk(target: "vda", sourcePath: "/i/\(name)", lease: name, leasePath: "/l/\(name)",
                                     mode: .exclusive, finding: ProtectionFinding(protection, evidence: .released(lapsed: nil)))])
    }

    static func reading(_ guests: [AuditReport.Guest]) -> Snapshot {
        Snapshot(host: AuditReport.Host(lockspace: "L", joined: true, hostID: 1, configuredHostID: 1, generation: 1),
                 guests: guests, unaccounted: [], warnings: [])
    }

    @Test func transitionsAreNotAlarms() {
        let first = Self.reading([
            Self.guest("a", .running, .notHeld),          // pausing: released, status not written yet
            Self.guest("b", .running, .held),             // pauses between the readings
            Self.guest("c", .running, .notHeld),          // really unprotected
            Self.guest("d", .running, .held, pid: 11),    // restarted between the readings
        ])
        let second = Self.reading([
            Self.guest("a", .paused, .releasedWhilePaused),
            Self.guest("b", .running, .notHeld),
            Self.guest("c", .running, .notHeld),
            Self.guest("d", .running, .notHeld, pid: 12),
            Self.guest("e", .running, .notHeld),          // started between the readings
        ])
        let settled = Snapshot.settled(first: first, second: second, delay: 0.5)
        let protection = Dictionary(uniqueKeysWithValues: settled.guests.map { ($0.name, $0.disks[0].finding.protection) })
        #expect(protection == ["a": .releasedWhilePaused, "b": .held, "c": .notHeld, "d": .notHeld, "e": .notHeld])
        let b = settled.guests.first { $0.name == "b" }!
        #expect(b.disks[0].finding.detail.contains("as read 0.5 s earlier; not-held in the reading after it"))
    }
}
