import Foundation
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
        (.corruptLease(.badChecksum(stored: 1)), "corrupt-checksum"),
        (.corruptLease(.truncated(size: 1, needed: 2)), "corrupt-truncated"),
        (.corruptLease(.wrongLockspace("X")), "corrupt-names"),
        (.corruptLease(.wrongResourceName("X")), "corrupt-names"),
        (.corruptLease(.unsupportedVersion(5)), "corrupt-version"),
        (.corruptLease(.notALease(magic: 9)), "not-a-lease"),
        (.corruptLease(.outOfRange(field: "num_hosts", value: .max)), "corrupt-out-of-range"),
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

    // MARK: The last-holder rule.

    @Test func releasedByThisHostIsDeleted() {
        #expect(verdict(Self.lease(owner: Self.me, held: false), [Self.host(1, .live)]) == .delete(.released(lastOwner: Self.me)))
        #expect(verdict(Self.lease(owner: Self.me, held: false), nil) == .delete(.released(lastOwner: Self.me)))
    }

    static let lastHolderCases: [(HostState?, Verdict)] = [
        (.live, .keep(.lastHeldByLiveHost(other, .live))),
        (.unknown, .keep(.lastHeldByLiveHost(other, .unknown))),
        (.failing, .keep(.lastHeldByFailingHost(other))),
        (.dead, .delete(.lastHolderGone(other, .dead))),
        (.free, .delete(.lastHolderGone(other, .free))),
        (nil, .keep(.lastHeldByHostOfUnknownState(other))),
    ]

    @Test(arguments: lastHolderCases)
    func releasedByAnotherHost(state: HostState?, expected: Verdict) {
        let hosts = [Self.host(Self.me, .live)] + (state.map { [Self.host(Self.other, $0)] } ?? [])
        #expect(verdict(Self.lease(owner: Self.other, held: false), hosts) == expected)
    }

    @Test func releasedByAnotherHostWithoutLivenessIsKept() {
        #expect(verdict(Self.lease(owner: Self.other, held: false), nil) == .keep(.lastHeldByHostOfUnknownState(Self.other)))
    }

    @Test(arguments: [HostState.live, .failing, .unknown])
    func anyHostRestoresTheStockBehaviour(state: HostState) {
        var context = Self.context([Self.host(Self.me, .live), Self.host(Self.other, state)])
        context.policy.anyHost = true
        #expect(Decision.verdict(for: Self.lease(owner: Self.other, held: false), in: context)
            == .delete(.released(lastOwner: Self.other)))
        // --any-host is about free leases only: held ones stay held.
        #expect(Decision.verdict(for: Self.lease(owner: Self.other, held: true), in: context).disposition == .keep)
    }

    // MARK: Retirement.

    @Test func retirementNarrowsToTheRetiredHostsLeases() {
        var context = Self.context([Self.host(Self.me, .live), Self.host(2, .dead), Self.host(3, .live)])
        context.policy.retiredHosts = [2]
        #expect(Decision.verdict(for: Self.lease(owner: 2, held: false), in: context) == .delete(.released(lastOwner: 2)))
        #expect(Decision.verdict(for: Self.lease(owner: 2, held: true), in: context) == .delete(.ownerHostDead(2, .dead)))
        #expect(Decision.verdict(for: Self.lease(owner: 3, held: false), in: context) == .keep(.notRetiredHost))
        #expect(Decision.verdict(for: Self.lease(owner: Self.me, held: false), in: context) == .keep(.notRetiredHost))
        #expect(Decision.verdict(for: Self.lease(owner: 0, generation: 0, lver: 0, held: false), in: context) == .keep(.notRetiredHost))
        #expect(Decision.verdict(for: Self.entry(.uninitialisedLease), in: context) == .keep(.notRetiredHost))
        #expect(Decision.verdict(for: Self.lease(owner: 3, held: false, shared: [(2, 3)]), in: context)
            == .delete(.sharedHoldersGone(hosts: [2])))
    }

    @Test func aFailingRetiredHostKeepsItsLeasesUntilDead() {
        var context = Self.context([Self.host(Self.me, .live), Self.host(2, .failing, io: 1)])
        context.policy.retiredHosts = [2]
        #expect(Decision.verdict(for: Self.lease(owner: 2, held: true), in: context) == .keep(.ownerHostFailing(2, ioTimeout: 1)))
        #expect(Decision.verdict(for: Self.lease(owner: 2, held: false), in: context) == .keep(.lastHeldByFailingHost(2)))
    }

    // MARK: Invalidated leases and hard links.

    @Test("This host's own invalidated leftover goes at once; another host's waits for the minimum age")
    func invalidatedLeftovers() {
        var context = Self.context([Self.host(Self.me, .live), Self.host(Self.other, .live)])
        context.now = 1_000_000
        context.policy.minimumAge = 3600
        let mine = Self.aged(.clearedLease(ClearedLease(invalidatedBy: Self.me)), modifiedSecondsAgo: 4)
        let theirs = Self.aged(.clearedLease(ClearedLease(invalidatedBy: Self.other)), modifiedSecondsAgo: 4)
        let unknown = Self.aged(.clearedLease(ClearedLease(invalidatedBy: nil)), modifiedSecondsAgo: 4)
        #expect(Decision.verdict(for: mine, in: context) == .delete(.leftInvalidatedByThisHost))
        // Even with a modification time in the future (clock skew).
        #expect(Decision.verdict(for: Self.aged(.clearedLease(ClearedLease(invalidatedBy: Self.me)), modifiedSecondsAgo: -600), in: context)
            == .delete(.leftInvalidatedByThisHost))
        #expect(Decision.verdict(for: theirs, in: context)
            == .keep(.clearedRecently(invalidatedBy: Self.other, age: 4, minimumAge: 3600)))
        #expect(Decision.verdict(for: unknown, in: context)
            == .keep(.clearedRecently(invalidatedBy: nil, age: 4, minimumAge: 3600)))
        // Without knowing which host this is, nothing is "ours".
        context.lockspace.thisHostID = nil
        #expect(Decision.verdict(for: mine, in: context).disposition == .keep)
    }

    @Test("A guest's use still protects an invalidated lease, and retirement takes the retired host's leftovers")
    func invalidatedLeftoversAndGuestsAndRetirement() {
        var context = Self.context([Self.host(Self.me, .live), Self.host(Self.other, .dead)])
        context.now = 1_000_000
        let name = DiskLeaseName.forSourcePath("/images/db1.qcow2")
        let mine = LeaseEntry(
            name: EntryName(name), path: "/l/" + name,
            status: FileStatus(identity: FileIdentity(device: 1, inode: 1), type: .regular, size: 1 << 20, modified: 0),
            kind: .clearedLease(ClearedLease(invalidatedBy: Self.me)))
        #expect(Decision.verdict(for: mine, in: context) == .delete(.leftInvalidatedByThisHost))
        context.guests = GuestIndex(GuestInventory(active: [Guest(
            name: "db1", state: .paused, pid: 9, file: "/run/libvirt/qemu/db1.xml", isStatus: true, processAlive: true,
            disks: [GuestDisk(sourcePath: "/images/db1.qcow2")])]))
        #expect(Decision.verdict(for: mine, in: context).reason.code == "used-by-guest")

        context.guests = GuestIndex()
        context.policy.retiredHosts = [Self.other]
        let theirs = Self.aged(.clearedLease(ClearedLease(invalidatedBy: Self.other)), modifiedSecondsAgo: 7200)
        #expect(Decision.verdict(for: theirs, in: context) == .delete(.abandonedCleared(invalidatedBy: Self.other)))
        #expect(Decision.verdict(for: mine, in: context) == .keep(.notRetiredHost))
    }

    @Test("A lease file with another name is never nominated", arguments: [
        EntryKind.autoLease(LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false)),
        .uninitialisedLease, .clearedLease(ClearedLease(invalidatedBy: 1)),
    ] as [EntryKind])
    func hardLinkedLeasesAreKept(kind: EntryKind) {
        var context = Self.context([Self.host(Self.me, .live)])
        context.now = 1_000_000
        let entry = LeaseEntry(
            name: EntryName(String(repeating: "a", count: 32)), path: "/l/a",
            status: FileStatus(identity: FileIdentity(device: 1, inode: 1), type: .regular, size: 1 << 20,
                               modified: 0, linkCount: 2),
            kind: kind)
        #expect(Decision.verdict(for: entry, in: context) == .keep(.hardLinked(links: 2)))
    }

    // MARK: Minimum age.

    static func aged(_ kind: EntryKind, modifiedSecondsAgo age: Double, now: Double = 1_000_000) -> LeaseEntry {
        LeaseEntry(name: EntryName(String(repeating: "a", count: 32)), path: "/l/a",
                   status: FileStatus(identity: FileIdentity(device: 1, inode: 1), type: .regular, size: 1 << 20,
                                      modified: now - age),
                   kind: kind)
    }

    @Test(arguments: [
        (EntryKind.autoLease(LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false)), Reason.rule(.neverAcquired)),
        (EntryKind.uninitialisedLease, Reason.rule(.abandonedUninitialised)),
        (EntryKind.clearedLease(ClearedLease(invalidatedBy: nil)), Reason.rule(.abandonedCleared(invalidatedBy: nil))),
        (EntryKind.clearedLease(ClearedLease(invalidatedBy: 2)), Reason.rule(.abandonedCleared(invalidatedBy: 2))),
    ] as [(EntryKind, Reason)])
    func minimumAgeGuardsEveryDeletion(kind: EntryKind, reason: Reason) {
        var context = Self.context([Self.host(Self.me, .live)])
        context.now = 1_000_000
        context.policy.minimumAge = 3600
        let recent: Reason = if case .rule(.abandonedCleared(let host)) = reason {
            .rule(.clearedRecently(invalidatedBy: host, age: 3599, minimumAge: 3600))
        } else {
            .rule(.tooRecent(age: 3599, minimumAge: 3600))
        }
        #expect(Decision.verdict(for: Self.aged(kind, modifiedSecondsAgo: 3599), in: context) == .keep(recent))
        #expect(Decision.verdict(for: Self.aged(kind, modifiedSecondsAgo: 3601), in: context) == Verdict(disposition: .delete, reason: reason))
        // A file from the future (clock skew on NFS) is recent.
        #expect(Decision.verdict(for: Self.aged(kind, modifiedSecondsAgo: -50), in: context).disposition == .keep)
    }

    @Test func minimumAgeNeverTurnsAKeepIntoADelete() {
        var context = Self.context([Self.host(Self.me, .live), Self.host(Self.other, .live)])
        context.now = 1_000_000
        context.policy.minimumAge = 0
        let held = Self.aged(.autoLease(LeaseState(ownerID: 2, ownerGeneration: 3, lver: 1, held: true)), modifiedSecondsAgo: 1e6)
        #expect(Decision.verdict(for: held, in: context) == .keep(.heldByLiveHost(2, .live)))
    }

    // MARK: Guests on this host.

    static func guests(_ uses: [(String, GuestState, Bool, Bool)]) -> GuestIndex {
        var inventory = GuestInventory()
        for (index, (name, state, status, stale)) in uses.enumerated() {
            let disk = GuestDisk(sourcePath: "/images/\(name).qcow2")
            inventory.active += status ? [Guest(name: name, state: state, pid: Int32(100 + index), file: "/run/\(name).xml",
                                                  isStatus: true, processAlive: !stale, disks: [disk])] : []
            inventory.defined += status ? [] : [Guest(name: name, state: .shutoff, file: "/etc/\(name).xml", isStatus: false, disks: [disk])]
        }
        return GuestIndex(inventory)
    }

    static func lease(of guest: String, _ state: LeaseState) -> LeaseEntry {
        LeaseEntry(name: EntryName(DiskLeaseName.forSourcePath("/images/\(guest).qcow2")), path: "/l", status: nil, kind: .autoLease(state))
    }

    @Test(arguments: [GuestState.running, .paused, .pmsuspended, .blocked, .crashed, .shutdown, .nostate, .unknown])
    func anActiveGuestsLeaseIsKeptWhateverSanlockSays(state: GuestState) {
        var context = Self.context([Self.host(Self.me, .live)])
        context.guests = Self.guests([("web1", state, true, false)])
        let free = LeaseState(ownerID: Self.me, ownerGeneration: 3, lver: 2, held: false)
        let verdict = Decision.verdict(for: Self.lease(of: "web1", free), in: context)
        guard verdict.disposition == .keep, case .rule(.usedByGuest(let use)) = verdict.reason else {
            Issue.record("\(state): \(verdict)")
            return
        }
        #expect(use.guest == "web1" && use.state == state && use.diskPath == "/images/web1.qcow2")
        // Also with --any-host, and in a dry run without any daemon.
        context.policy.anyHost = true
        context.lockspace.hosts = nil
        #expect(Decision.verdict(for: Self.lease(of: "web1", free), in: context).disposition == .keep)
    }

    @Test func aStaleStatusFileStillProtects() {
        var context = Self.context([Self.host(Self.me, .live)])
        context.guests = Self.guests([("ghost", .running, true, true)])
        let verdict = Decision.verdict(for: Self.lease(of: "ghost", LeaseState(ownerID: 1, ownerGeneration: 3, lver: 1, held: false)), in: context)
        guard verdict.disposition == .keep, case .rule(.staleGuestStatus(let use)) = verdict.reason else {
            Issue.record("\(verdict)")
            return
        }
        #expect(use.guest == "ghost" && use.stale)
    }

    @Test func aStoppedGuestsLeaseIsDeletable() {
        var context = Self.context([Self.host(Self.me, .live)])
        context.guests = Self.guests([("db1", .shutoff, false, false)])
        #expect(Decision.verdict(for: Self.lease(of: "db1", LeaseState(ownerID: 1, ownerGeneration: 3, lver: 1, held: false)), in: context)
            == .delete(.released(lastOwner: 1)))
        #expect(context.guests.use(of: DiskLeaseName.forSourcePath("/images/db1.qcow2"))?.guest == "db1")
    }

    @Test func aGuestInStatusShutoffDoesNotProtect() {
        var context = Self.context([Self.host(Self.me, .live)])
        context.guests = Self.guests([("off", .shutoff, true, false)])
        #expect(Decision.verdict(for: Self.lease(of: "off", LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false)), in: context)
            == .delete(.neverAcquired))
    }

    @Test func unmappedVolumesKeepUnknownLeases() {
        var inventory = GuestInventory()
        inventory.active = [Guest(name: "pooled", state: .paused, pid: 5, file: "/run/pooled.xml", isStatus: true, processAlive: true,
                                   disks: [GuestDisk(type: "volume", sourcePath: nil, volume: VolumeSource(pool: "p", volume: "v"))])]
        var context = Self.context([Self.host(Self.me, .live)])
        context.guests = GuestIndex(inventory)
        let unknown = LeaseEntry(name: EntryName(String(repeating: "9", count: 32)), path: "/l", status: nil,
                                 kind: .autoLease(LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false)))
        #expect(Decision.verdict(for: unknown, in: context) == .keep(.unmappedVolumeGuests(["pooled"])))
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
        .entry(.lockspace), .entry(.directory), .entry(.symlink(target: nil)), .entry(.special(.socket)), .entry(.foreignFile), .entry(.uninitialisedLease),
        .entry(.clearedLease(ClearedLease(invalidatedBy: nil))), .entry(.clearedLease(ClearedLease(invalidatedBy: 3))), .rule(.hardLinked(links: 2)),
        .entry(.corruptLease(.outOfRange(field: "num_hosts", value: UInt64.max))),
        .rule(.tooRecent(age: -30, minimumAge: 3600)), .rule(.tooRecent(age: 1e19, minimumAge: 3600)),
        .rule(.clearedRecently(invalidatedBy: 2, age: 4, minimumAge: 3600)), .rule(.clearedRecently(invalidatedBy: nil, age: 4, minimumAge: 0)),
        .rule(.abandonedCleared(invalidatedBy: 2)), .rule(.abandonedCleared(invalidatedBy: nil)), .rule(.leftInvalidatedByThisHost),
        .removal(.changedDuringRun), .removal(.usedDuringRun(scannedLVer: UInt64.max, lver: 0)),
        .entry(.corruptLease(.badChecksum(stored: 0))), .entry(.corruptLease(.truncated(size: 0, needed: 1))), .entry(.corruptLease(.wrongLockspace(""))),
        .entry(.corruptLease(.unsupportedVersion(0))), .entry(.corruptLease(.notALease(magic: 0))),
        .entry(.unreadable(FileSystemError(.read, path: "/p", errno: .ioError))), .entry(.vanished),
        .rule(.heldByThisHost), .rule(.heldByLiveHost(2, .live)), .rule(.heldByHostOfUnknownState(2)), .rule(.ownerHostFailing(2, ioTimeout: 1)),
        .rule(.heldShared(hosts: [2])),
        .rule(.neverAcquired), .rule(.released(lastOwner: 2)), .rule(.ownerHostDead(2, .dead)), .rule(.ownerHostRestarted(2, heldGeneration: 1, currentGeneration: 2)),
        .rule(.sharedHoldersGone(hosts: [2])), .removal(.acquireBusy(SanlockError(.acquire, code: -16))),
        .removal(.usedDuringRun(scannedLVer: 1, lver: 4)),
        .removal(.lockspaceNotJoined(SanlockError(.acquire, code: -28))), .removal(.acquireFailed(SanlockError(.acquire, code: -5))),
        .removal(.invalidateFailed(FileSystemError(.write, path: "/p", errno: .ioError), now: .intact)),
        .removal(.replacedBeforeDeletion(FileSystemError(.stat, path: "/p", condition: .replaced))),
        .removal(.unlinkFailed(FileSystemError(.unlink, path: "/p", errno: .notPermitted), now: .intact)),
        .removal(.unlinkFailed(FileSystemError(.unlink, path: "/p", errno: .notPermitted), now: .invalidated)),
        .removal(.unlinkFailed(FileSystemError(.unlink, path: "/p", condition: .replaced), now: .replaced)),
        .removal(.unlinkFailed(FileSystemError(.unlink, path: "/p", errno: .notPermitted), now: .gone)),
        .removal(.connectionFailed(SanlockError(.register, code: -13))),
    ]

    @Test("Every reason code is in the published JSON schema")
    func codesAreInTheSchema() throws {
        let schemaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("man/virt-sanlock-cleanup-report.schema.json")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: schemaPath)) as? [String: Any])
        let lease = try #require((schema["$defs"] as? [String: Any])?["lease"] as? [String: Any])
        let reasons = try #require(((lease["properties"] as? [String: Any])?["reason"] as? [String: Any])?["enum"] as? [String])
        for reason in Self.everyReason {
            #expect(reasons.contains(reason.code), "\(reason.code) is missing from the schema")
        }
    }

    @Test func codesAreStableKebabCase() {
        for reason in Self.everyReason {
            #expect(reason.code.allSatisfy { $0.isLowercase || $0 == "-" }, "\(reason.code)")
            #expect(!reason.sentence.isEmpty)
            #expect(!reason.sentence.contains("\n"))
        }
    }

    @Test func sentencesNameHostsAndTimes() {
        #expect(Reason.rule(.heldByLiveHost(2, .live)).sentence == "held by live host 2")
        #expect(Reason.rule(.released(lastOwner: 3)).sentence == "free, last held by host 3")
        #expect(Reason.rule(.ownerHostFailing(4, ioTimeout: 1)).sentence.contains("68 s"))
        #expect(Reason.rule(.ownerHostFailing(4, ioTimeout: 0)).sentence.contains("140 s"))
        // What is at the path now, and what happens to it.
        #expect(Reason.removal(.unlinkFailed(FileSystemError(.unlink, path: "/p", errno: .notPermitted), now: .invalidated))
            .sentence.contains("this host's next run removes it"))
        #expect(Reason.removal(.unlinkFailed(FileSystemError(.unlink, path: "/p", condition: .replaced), now: .replaced))
            .sentence.contains("now holds another file"))
        #expect(Reason.rule(.tooRecent(age: -90, minimumAge: 3600)).sentence == "changed 1m30s in the future, less than the minimum age 1h")
        #expect(Reason.rule(.tooRecent(age: 9.3e18, minimumAge: 3600)).sentence.hasPrefix("changed 294"))
        #expect(Reason.rule(.clearedRecently(invalidatedBy: 2, age: 4, minimumAge: 3600)).sentence
            .contains("host 2's next run of virt-sanlock-cleanup removes it"))
        #expect(Reason.entry(.symlink(target: "/a\nb")).sentence == "symlink to /a\\nb (never followed, never deleted)")
    }

    @Test func errorCodesAreCarried() {
        #expect(Reason.removal(.acquireFailed(SanlockError(.acquire, code: -243))).errorCode == -243)
        #expect(Reason.entry(.unreadable(FileSystemError(.read, path: "/p", errno: .ioError))).errorCode == 5)
        #expect(Reason.rule(.neverAcquired).errorCode == nil)
    }
}
