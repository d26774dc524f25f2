import CSanlock
import Foundation
import Sanlock
@testable import SanlockCleanup
import Testing

@Suite("The audit's judgement of a disk's protection")
struct ProtectionTests {
    static let me: UInt64 = 1
    static let generation: UInt64 = 5
    static let name = String(repeating: "c", count: 32)

    static func token(pid: Int32 = 100, shared: Bool = false, lver: UInt64 = 7) -> DaemonStatus.Token {
        DaemonStatus.Token(pid: pid, lockspace: LeaseClassifier.lockspaceName, name: name, path: "/l/" + name, shared: shared, lver: lver)
    }

    static func lease(owner: UInt64 = me, generation: UInt64 = generation, lver: UInt64 = 7, held: Bool = true,
                      shared: [(UInt64, UInt64)] = []) -> EntryKind {
        .autoLease(LeaseState(ownerID: owner, ownerGeneration: generation, lver: lver, held: held,
                              sharedHolders: shared.map { ResourceOwner(hostID: $0.0, generation: $0.1, timestamp: 0) }))
    }

    /// This host joined as `me` at `generation`; `hosts`: other hosts' states
    /// (at generation 1, unless `generations` says otherwise).
    static func judge(paused: Bool = false, migratingIn: Bool = false, migratingOut: Bool = false, mode: LeaseMode = .exclusive,
                      leaseName: String? = name, own: [DaemonStatus.Token] = [], other: [DaemonStatus.Token] = [], file: EntryKind,
                      hosts: [UInt64: HostState] = [:], generations: [UInt64: UInt64] = [:]) -> ProtectionFinding {
        var table = hosts.map { id, state in
            (id, SanlockHost(hostID: id, generation: generations[id] ?? 1, timestamp: 1, ioTimeout: 10, state: state))
        }
        table.append((me, SanlockHost(hostID: me, generation: generation, timestamp: 1, ioTimeout: 10, state: .live)))
        return judge(paused: paused, migratingIn: migratingIn, migratingOut: migratingOut, mode: mode, leaseName: leaseName,
                     own: own, other: other, file: file, lockspace: LockspaceFacts(thisHostID: me, joined: true, hosts: Dictionary(uniqueKeysWithValues: table)))
    }

    static func judge(paused: Bool = false, migratingIn: Bool = false, migratingOut: Bool = false, mode: LeaseMode = .exclusive,
                      leaseName: String? = name, own: [DaemonStatus.Token] = [], other: [DaemonStatus.Token] = [], file: EntryKind,
                      lockspace: LockspaceFacts) -> ProtectionFinding {
        Protection.judge(ProtectionFacts(
            guestPaused: paused, migratingIn: migratingIn, migratingOut: migratingOut, mode: mode, leaseName: leaseName,
            ownTokens: own, otherTokens: other, file: file, lockspace: lockspace))
    }

    @Test func heldWhenTheFileIsTheHeldLease() {
        let finding = Self.judge(own: [Self.token()], file: Self.lease())
        #expect(finding.protection == .held && finding.holderPID == 100 && finding.holderHostID == Self.me)
    }

    @Test("The held lease is not the file at the path", arguments: [
        lease(lver: 8), lease(generation: 4), lease(owner: 2), lease(held: false), lease(owner: 0, generation: 0, lver: 0, held: false),
    ])
    func replaced(file: EntryKind) {
        #expect(Self.judge(own: [Self.token()], file: file).protection == .fileReplaced)
    }

    @Test func sharedHeldNeedsThisHostsModeBlockAtThisGeneration() {
        #expect(Self.judge(mode: .shared, own: [Self.token(shared: true)], file: Self.lease(held: false, shared: [(1, 5)])).protection == .held)
        #expect(Self.judge(mode: .shared, own: [Self.token(shared: true)], file: Self.lease(held: false, shared: [(1, 4)])).protection
            == .fileReplaced)
    }

    @Test func wrongModeIsNotHeld() {
        #expect(Self.judge(own: [Self.token(shared: true)], file: Self.lease()).protection == .notHeld)
        #expect(Self.judge(mode: .shared, own: [Self.token()], file: Self.lease()).protection == .notHeld)
    }

    @Test func heldButTheFileIsGoneOrInvalid() {
        #expect(Self.judge(own: [Self.token()], file: .vanished).protection == .fileMissing)
        #expect(Self.judge(own: [Self.token()], file: .uninitialisedLease).protection == .fileInvalid)
        #expect(Self.judge(own: [Self.token()], file: .clearedLease(ClearedLease(invalidatedBy: nil))).protection == .fileInvalid)
    }

    @Test func notHeldByTheGuest() {
        #expect(Self.judge(file: Self.lease(held: false)).protection == .notHeld)
        #expect(Self.judge(file: .vanished).protection == .fileMissing)
        #expect(Self.judge(file: .symlink(target: "/etc/passwd")).protection == .fileInvalid)
        #expect(Self.judge(file: .corruptLease(.badChecksum(stored: 1))).protection == .fileInvalid)
        let byProcess = Self.judge(other: [Self.token(pid: 200)], file: Self.lease())
        #expect(byProcess.protection == .heldByOtherProcess && byProcess.holderPID == 200)
        let byHost = Self.judge(file: Self.lease(owner: 2, generation: 9))
        #expect(byHost.protection == .heldByOtherHost && byHost.holderHostID == 2)
        // A previous incarnation of this host: acquirable, not held.
        #expect(Self.judge(file: Self.lease(generation: 4)).protection == .notHeld)
    }

    @Test("A host sanlock says is dead or gone holds nothing", arguments: [HostState.dead, .free])
    func deadHolder(state: HostState) {
        #expect(Self.judge(file: Self.lease(owner: 2), hosts: [2: state]).protection == .notHeld)
        #expect(Self.judge(paused: true, file: Self.lease(owner: 2), hosts: [2: state]).protection == .releasedWhilePaused)
    }

    @Test("A host that may be alive holds it", arguments: [HostState.live, .unknown, .failing])
    func liveHolder(state: HostState) {
        #expect(Self.judge(paused: true, file: Self.lease(owner: 2), hosts: [2: state]).protection == .heldByOtherHost)
    }

    @Test func pausedGuests() {
        #expect(Self.judge(paused: true, file: Self.lease(held: false)).protection == .releasedWhilePaused)
        #expect(Self.judge(paused: true, file: .vanished).protection == .fileMissing)
        #expect(Self.judge(paused: true, file: .uninitialisedLease).protection == .fileInvalid)
        #expect(Self.judge(paused: true, own: [Self.token()], file: Self.lease()).protection == .held)
        // Another host holding a shareable disk shared does not block it.
        #expect(Self.judge(paused: true, mode: .shared, file: Self.lease(held: false, shared: [(2, 3)])).protection
            == .releasedWhilePaused)
        #expect(Self.judge(paused: true, file: Self.lease(held: false, shared: [(2, 3)])).protection == .heldByOtherHost)
    }

    @Test func unmappedVolume() {
        #expect(Self.judge(leaseName: nil, file: .vanished).protection == .unmappedVolume)
    }

    @Test func onlyHeldReleasedWhilePausedAndMigratingAreProtected() {
        #expect(Protection.allCases.filter(\.isProtected) == [.held, .releasedWhilePaused, .migratingIn, .migratingOut])
    }

    @Test("A migration's destination: the source host holds the lease until the guest resumes here")
    func migrationDestination() {
        let finding = Self.judge(paused: true, migratingIn: true, file: Self.lease(owner: 2, generation: 9))
        #expect(finding.protection == .migratingIn && finding.holderHostID == 2)
        // Not paused any more, or no migration: held by another host.
        #expect(Self.judge(migratingIn: true, file: Self.lease(owner: 2, generation: 9)).protection == .heldByOtherHost)
        #expect(Self.judge(paused: true, file: Self.lease(owner: 2, generation: 9)).protection == .heldByOtherHost)
        #expect(Self.judge(paused: true, migratingIn: true, file: Self.lease(held: false)).protection == .releasedWhilePaused)
    }

    /// Found by the two-host test under load: an audit of the source, slow
    /// enough to read the guest still paused with `migration out` after the
    /// destination had acquired the lease and started the CPUs, said
    /// held-by-other-host and exit status 4 for a migration that went well.
    @Test("A migration's source: the destination holds the lease, and the guest ends here next")
    func migrationSource() {
        let finding = Self.judge(paused: true, migratingOut: true, file: Self.lease(owner: 2, generation: 9))
        #expect(finding.protection == .migratingOut && finding.holderHostID == 2)
        #expect(finding.detail.contains("the source of a live migration: host 2"), "\(finding.detail)")
        // Running here again (the migration failed and the guest resumed
        // here) while host 2 holds it: two hosts may write the disk.
        #expect(Self.judge(migratingOut: true, file: Self.lease(owner: 2, generation: 9)).protection == .heldByOtherHost)
        // Nobody holds it yet (between the source's release and the
        // destination's acquire): released.
        #expect(Self.judge(paused: true, migratingOut: true, file: Self.lease(held: false)).protection == .releasedWhilePaused)
        // A hold that does not stand (the destination's daemon restarted): no hold.
        #expect(Self.judge(paused: true, migratingOut: true, file: Self.lease(owner: 2, generation: 1),
                           hosts: [2: .live], generations: [2: 2]).protection == .releasedWhilePaused)
        // Another process of this host holds it: not the migration's handover.
        #expect(Self.judge(paused: true, migratingOut: true, other: [Self.token(pid: 99)], file: Self.lease())
            .protection == .heldByOtherProcess)
    }

    @Test("Not joined: a lease this host's earlier incarnation holds is not another host's (found by the two-host test)")
    func notJoinedHostsOwnLease() {
        let finding = Self.judge(file: Self.lease(generation: 1), lockspace: LockspaceFacts(
            thisHostID: Self.me, joined: false, thisHostName: "host-b", hosts: nil, hostNames: [Self.me: "host-b"]))
        #expect(finding.protection == .notHeld && finding.holderHostID == nil)
        #expect(finding.detail.contains("earlier incarnation"))
    }

    /// Issue 20, defect 1: host B configured with host A's id, not joined
    /// (or still joining), keeps a paused guest whose lease A holds. Before:
    /// released-while-paused, an all-clear.
    @Test("Not joined, configured with an id another host joined with: that host's hold is another host's")
    func collidingHostID() {
        let lockspace = LockspaceFacts(
            thisHostID: Self.me, joined: false, thisHostName: "host-b", hosts: nil, hostNames: [Self.me: "host-a"])
        #expect(lockspace.identityConflict == IdentityConflict(hostID: Self.me, lockspaceName: "host-a", thisHostName: "host-b"))
        let paused = Self.judge(paused: true, file: Self.lease(generation: 1), lockspace: lockspace)
        #expect(paused.protection == .heldByOtherHost && paused.holderHostID == Self.me, "\(paused)")
        #expect(paused.detail.contains("this host's id, in the lockspace another host's"))
        let running = Self.judge(file: Self.lease(generation: 1), lockspace: lockspace)
        #expect(running.protection == .heldByOtherHost)
    }

    /// Issue 20, defect 2: the source's hold died with its daemon (restarted
    /// since): anyone may take the lease. Before: migrating-in (an all-clear
    /// for a hold that does not stand), and held-by-other-host without the
    /// job (a false alarm).
    @Test("A dead incarnation's hold is no hold: not migrating-in, not held by another host")
    func restartedHoldersLeaseIsFree() {
        let file = Self.lease(owner: 2, generation: 1)
        for migrating in [true, false] {
            let finding = Self.judge(paused: true, migratingIn: migrating, file: file, hosts: [2: .live], generations: [2: 2])
            #expect(finding.protection == .releasedWhilePaused, "\(migrating): \(finding)")
            #expect(finding.detail.contains("host 2 at generation 1; that host has restarted since"), "\(finding.detail)")
        }
        // A dead host's hold: the same.
        #expect(Self.judge(paused: true, migratingIn: true, file: file, hosts: [2: .dead]).protection == .releasedWhilePaused)
        // Running here: nobody's hold stands, and the guest holds nothing.
        #expect(Self.judge(file: file, hosts: [2: .live], generations: [2: 2]).protection == .notHeld)
        // The source's live hold at its current generation: migrating in.
        #expect(Self.judge(paused: true, migratingIn: true, file: file, hosts: [2: .live]).protection == .migratingIn)
    }

    @Test func pausedShareableDiskHeldSharedElsewhere() {
        let finding = Self.judge(paused: true, mode: .shared, file: Self.lease(held: false, shared: [(2, 3)]))
        #expect(finding.protection == .releasedWhilePaused && finding.detail.contains("host 2 holds it shared"))
    }
}

@Suite("The daemon's status reply, decoded")
struct DaemonStatusDecodeTests {
    /// One record as sanlock's daemon writes it.
    static func record(type: Int32, pid: UInt32 = 0, data64: UInt64 = 0, name: String = "", text: String = "",
                       resource: (lockspace: String, name: String, path: String, shared: Bool)? = nil) -> [UInt8] {
        var state = vsc_sanlk_state()
        state.type = UInt32(type)
        state.data32 = pid
        state.data64 = data64
        withUnsafeMutableBytes(of: &state.name) { bytes in
            for (index, byte) in name.utf8.prefix(48).enumerated() { bytes[index] = byte }
        }
        let textBytes = text.isEmpty ? [] : Array(text.utf8) + [0]
        state.str_len = UInt32(textBytes.count)
        var bytes = withUnsafeBytes(of: state) { Array($0) } + textBytes
        if let resource {
            var res = sanlk_resource()
            withUnsafeMutableBytes(of: &res.lockspace_name) { b in for (i, c) in resource.lockspace.utf8.enumerated() { b[i] = c } }
            withUnsafeMutableBytes(of: &res.name) { b in for (i, c) in resource.name.utf8.enumerated() { b[i] = c } }
            res.num_disks = 1
            res.flags = resource.shared ? UInt32(SANLK_RES_SHARED) : 0
            var disk = sanlk_disk()
            withUnsafeMutableBytes(of: &disk.path) { b in for (i, c) in resource.path.utf8.enumerated() { b[i] = c } }
            bytes += withUnsafeBytes(of: res) { Array($0) } + withUnsafeBytes(of: disk) { Array($0) }
        }
        if type == VSC_SANLK_STATE_LOCKSPACE { bytes += [UInt8](repeating: 0, count: MemoryLayout<sanlk_lockspace>.size) }
        return bytes
    }

    @Test func clientsAndTokens() throws {
        let bytes = Self.record(type: VSC_SANLK_STATE_DAEMON, name: "uuid.host")
            + Self.record(type: VSC_SANLK_STATE_CLIENT, pid: 42, name: "web1", text: "ci=2 fd=9")
            + Self.record(type: VSC_SANLK_STATE_LOCKSPACE, name: "__LIBVIRT__DISKS__", text: "list=spaces")
            + Self.record(type: VSC_SANLK_STATE_RESOURCE, pid: 42, data64: 3, name: "abc", text: "list=held flags=0 lver=3",
                          resource: ("__LIBVIRT__DISKS__", "abc", "/l/abc", false))
            + Self.record(type: VSC_SANLK_STATE_RESOURCE, pid: 43, name: "def", text: "list=rem flags=0",
                          resource: ("__LIBVIRT__DISKS__", "def", "/l/d:ef", true))
        let status = try bytes.withUnsafeBytes { try DaemonStatus.decode(records: $0) }
        #expect(status.clients == [DaemonStatus.Client(pid: 42, name: "web1")])
        #expect(status.tokens.count == 2)
        #expect(status.tokens[0] == DaemonStatus.Token(pid: 42, lockspace: "__LIBVIRT__DISKS__", name: "abc", path: "/l/abc",
                                                        shared: false, lver: 3, list: .held))
        #expect(status.tokens[1].list == .rem && status.tokens[1].shared && status.tokens[1].path == "/l/d:ef")
        #expect(status.holders(of: "abc", in: "__LIBVIRT__DISKS__").map(\.pid) == [42])
        #expect(status.holders(of: "def", in: "__LIBVIRT__DISKS__").isEmpty, "a token on its way out holds nothing")
    }

    @Test("A record type of any 32-bit value is skipped, not trapped on (found by FuzzDaemonStatus)")
    func unknownRecordTypes() throws {
        var bytes = Self.record(type: 1, text: "x")
        bytes[0...3] = [0xff, 0xff, 0xff, 0xff]
        let status = try bytes.withUnsafeBytes { try DaemonStatus.decode(records: $0) }
        #expect(status.clients.isEmpty && status.tokens.isEmpty)
    }

    @Test func truncatedRepliesAreRefused() {
        let whole = Self.record(type: VSC_SANLK_STATE_RESOURCE, pid: 1, name: "abc", text: "list=held",
                                resource: ("ls", "abc", "/p", false))
        for cut in [1, 79, 80, 85, whole.count - 1] {
            #expect(throws: DaemonStatus.DecodeError.self) {
                try Array(whole.prefix(cut)).withUnsafeBytes { try DaemonStatus.decode(records: $0) }
            }
        }
        var tooMany = whole
        // num_disks sits after lockspace_name, name, lver, data64, data32, unused, flags.
        let numDisks = MemoryLayout<vsc_sanlk_state>.size + 10 + MemoryLayout<sanlk_resource>.offset(of: \.num_disks)!
        tooMany[numDisks] = 200
        #expect(throws: DaemonStatus.DecodeError.tooManyDisks(record: 0, count: 200)) {
            try tooMany.withUnsafeBytes { try DaemonStatus.decode(records: $0) }
        }
    }
}

@Suite("The audit's reports")
struct AuditReportTests {
    static func report(guestName: String = "web1", path: String = "/images/web1.qcow2", protection: Protection = .held,
                       holderHost: UInt64? = nil, configuredHostID: UInt64 = 1) -> AuditReport {
        let finding = ProtectionFinding(protection, holderPID: 42, holderHostID: holderHost ?? 1, evidence: .held(shared: false, lver: 3))
        var disk = AuditReport.Disk(target: "vda", sourcePath: path, lease: "abc", leasePath: "/l/abc", mode: .exclusive,
                                    finding: finding)
        if holderHost != nil {
            disk.holderHostName = "node-b\u{1b}[2J"
            disk.holderHostState = .live
        }
        return AuditReport(
            leaseDirectory: "/l", host: .init(lockspace: "__LIBVIRT__DISKS__", joined: true, hostID: 1, configuredHostID: configuredHostID,
                                               generation: 3, hostName: "node-a"),
            guests: [.init(name: guestName, state: .running, stateReason: "booted", pid: 42, disks: [disk])],
            unaccountedLeases: [], warnings: [], startedAt: Date(timeIntervalSince1970: 0), duration: 0.1)
    }

    @Test func textEscapesWhatItReadAndNamesTheOtherHost() {
        let text = AuditTextReport.render(Self.report(guestName: "evil\nguest 1 (running)", path: "/i/\u{7}x",
                                                      protection: .heldByOtherHost, holderHost: 2, configuredHostID: 2))
        #expect(!text.contains("\u{7}") && !text.contains("\u{1b}"))
        #expect(text.split(separator: "\n").count == 4, "one line per header, guest, disk and summary: \(text)")
        #expect(text.contains("held-by-other-host 2 (node-b"))
        #expect(text.contains("but host_id in the configuration is 2: CONFLICT"))
        #expect(text.hasSuffix("1 disk of 1 guest: 1 held-by-other-host; 1 UNPROTECTED; this host's identity in the lockspace is in CONFLICT (see the host line)\n"))
    }

    @Test func exitStatusAndCounts() throws {
        #expect(Self.report().exitStatus == .success)
        // Every disk protected, but the joined id is not the configured
        // one: no all-clear.
        #expect(Self.report(configuredHostID: 2).exitStatus == .unprotected)
        let bad = Self.report(protection: .fileReplaced, configuredHostID: 2)
        #expect(bad.exitStatus == .unprotected && bad.exitStatus.rawValue == 4)
        #expect(bad.countsByProtection.count == Protection.allCases.count)
        let json = try JSONSerialization.jsonObject(with: Data(AuditJSONReport.render(bad).utf8)) as? [String: Any]
        #expect(json?["mode"] as? String == "audit")
        let summary = json?["summary"] as? [String: Any]
        #expect(summary?["unprotected"] as? Int == 1)
        let host = json?["host"] as? [String: Any]
        #expect(host?["host_id_matches"] as? Bool == false)
        let metrics = MetricsFile.renderAudit(report: bad, exitCode: 4, now: 1000)
        #expect(metrics.contains("virt_sanlock_cleanup_audit_disks{protection=\"file-replaced\"} 1"))
        #expect(metrics.contains("virt_sanlock_cleanup_audit_last_run_exit_status 4"))
    }
}
