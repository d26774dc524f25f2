import Foundation
import Logging
import Sanlock
import Synchronization
@testable import SanlockCleanup
import TestFixtures
import Testing

/// The facts about sanlock this tool relies on, checked in-process through
/// our own wrapper against a real daemon: what the on-disk decoder reads
/// matches what sanlock reports, how sanlock refuses an acquire and how the
/// remover words it, and what SANLK_WRITE_CLEAR does under a held lease.
///
/// libsanlock_client finds the daemon through SANLOCK_RUN_DIR in this
/// process's environment. `make check` runs this suite in its own test
/// process with the variable set; run alone otherwise, it sets it once.
@Suite("sanlock behaviour through the Swift wrapper", .serialized, .enabled(if: DaemonTestEnvironment.shouldRun))
struct SanlockBehaviourTests {
    /// Host 1 is the daemon this process talks to; host 2 is another host
    /// sharing the lease directory.
    static func withInProcessCluster(_ body: (SanlockCluster) async throws -> Void) async throws {
        let cluster = try SanlockCluster()
        // Outside the cluster's scratch directory: the variable outlives this
        // test, and every test of the suite reuses (and removes) the path.
        let runDirectory: String
        if let configured = ProcessInfo.processInfo.environment["SANLOCK_RUN_DIR"], !configured.isEmpty {
            runDirectory = configured
        } else {
            runDirectory = "/var/tmp/vsc-inprocess-\(getpid())"
            setenv("SANLOCK_RUN_DIR", runDirectory, 1)
        }
        // A run directory left by an earlier, killed run would hold a stale pid file.
        try? FileManager.default.removeItem(atPath: runDirectory)
        defer { try? FileManager.default.removeItem(atPath: runDirectory) }
        do {
            try await cluster.startHosts([1, 2], runDirectories: [1: runDirectory])
            try await body(cluster)
        } catch {
            await cluster.tearDown()
            throw error
        }
        await cluster.tearDown()
    }

    @Test("The daemon's status: every registered process and the leases it holds, exclusive with its lver, shared flagged")
    func daemonStatusListsHolders() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let exclusive = String(repeating: "e", count: 32)
            let shared = String(repeating: "5", count: 32)
            for lease in [exclusive, shared] { try await cluster.host(1).createLease(lease, in: dir) }
            let holder = try await cluster.host(1).hold(exclusive, in: dir)
            let sharer = try await cluster.host(1).hold(shared, in: dir, shared: true)

            let status = try SanlockClient.status()
            let clientPIDs = Set(status.clients.map(\.pid))
            #expect(clientPIDs.isSuperset(of: [holder.processIdentifier, sharer.processIdentifier]))

            let held = status.holders(of: exclusive, in: TestLeaseDirectory.lockspace)
            #expect(held.map(\.pid) == [holder.processIdentifier])
            #expect(held.first?.path == dir.path(of: exclusive) && held.first?.offset == 0)
            #expect(held.first?.shared == false && held.first?.list == .held)
            // The version the holder acquired: what the leader on disk says.
            let leader = try SanlockClient.readOwners(
                of: SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: exclusive, path: dir.path(of: exclusive)))
            #expect(held.first?.lver == leader.lver && leader.lver >= 1)

            let sharedHeld = status.holders(of: shared, in: TestLeaseDirectory.lockspace)
            #expect(sharedHeld.map(\.pid) == [sharer.processIdentifier] && sharedHeld.first?.shared == true)
            #expect(status.tokens.filter(\.isHeld).count == 2)
        }
    }

    @Test("The on-disk decoder reads what sanlock reads: free, released, held, shared, other host")
    func decoderAgreesWithSanlock() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let names = ["never", "released", "held", "shared", "host2", "shared2"].map { label in
                (label, String(label.utf8.map { String(format: "%02x", $0) }.joined().padding(toLength: 32, withPad: "0", startingAt: 0)))
            }
            let name = Dictionary(uniqueKeysWithValues: names)
            for (_, lease) in names { try await cluster.host(1).createLease(lease, in: dir) }
            let released = try await cluster.host(1).hold(name["released"]!, in: dir)
            try await cluster.host(1).release(released)
            _ = try await cluster.host(1).hold(name["held"]!, in: dir)
            _ = try await cluster.host(1).hold(name["shared"]!, in: dir, shared: true)
            _ = try await cluster.host(2).hold(name["host2"]!, in: dir)
            _ = try await cluster.host(2).hold(name["shared2"]!, in: dir, shared: true)
            _ = try await cluster.host(1).hold(name["shared2"]!, in: dir, shared: true)

            let directory = try LeaseDirectory(path: dir.path)
            let scanner = InventoryScanner(directory: directory, classifier: LeaseClassifier(probeHostIDs: [1, 2]))
            let everyHost = InventoryScanner(directory: directory, classifier: LeaseClassifier(probeHostIDs: nil))
            for (label, lease) in names {
                let resource = SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: lease, path: dir.path(of: lease))
                let owners = try SanlockClient.readOwners(of: resource)
                let lver = try SanlockDirectCalls.readResource(resource)
                let entry = scanner.examine(EntryName(lease))
                let state = try #require(entry.leaseState, "\(label): \(entry.kind)")
                #expect(everyHost.examine(EntryName(lease)) == entry, "\(label): probing all 2000 hosts differs")

                let exclusive = owners.owners.first { $0.timestamp != 0 }
                #expect(state.held == (exclusive != nil), "\(label)")
                if let exclusive {
                    #expect(state.ownerID == exclusive.hostID, "\(label)")
                    #expect(state.ownerGeneration == exclusive.generation, "\(label)")
                }
                #expect(state.lver == lver, "\(label)")
                #expect(state.lver == owners.lver, "\(label)")
                let sharedBySanlock = owners.owners.filter { $0.timestamp == 0 }
                #expect(state.sharedHolders.map(\.hostID).sorted() == sharedBySanlock.map(\.hostID).sorted(), "\(label)")
                #expect(state.sharedHolders.map(\.generation).sorted() == sharedBySanlock.map(\.generation).sorted(), "\(label)")
                #expect(owners.shared == !sharedBySanlock.isEmpty, "\(label)")
            }
            // Spot checks of the facts the decision relies on.
            let releasedState = try #require(scanner.examine(EntryName(name["released"]!)).leaseState)
            #expect(!releasedState.held && releasedState.ownerID == 1 && releasedState.lver == 1)
            let neverState = try #require(scanner.examine(EntryName(name["never"]!)).leaseState)
            #expect(neverState.neverAcquired)
            let sharedTwice = try #require(scanner.examine(EntryName(name["shared2"]!)).leaseState)
            #expect(sharedTwice.sharedHolders.map(\.hostID).sorted() == [1, 2])
        }
    }

    @Test("Every acquire refusal becomes a reason a person understands")
    func acquireRefusals() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let heldHere = String(repeating: "1", count: 32)
            let heldThere = String(repeating: "2", count: 32)
            let sharedThere = String(repeating: "3", count: 32)
            let cleared = String(repeating: "4", count: 32)
            let missing = String(repeating: "5", count: 32)
            let otherLockspace = String(repeating: "6", count: 32)
            for lease in [heldHere, heldThere, sharedThere, cleared, missing] {
                try await cluster.host(1).createLease(lease, in: dir)
            }
            _ = try await cluster.host(1).hold(heldHere, in: dir)
            _ = try await cluster.host(2).hold(heldThere, in: dir)
            _ = try await cluster.host(2).hold(sharedThere, in: dir, shared: true)
            try await cluster.host(1).client(["init", "-z", "1", "-r", dir.resourceSpec(cleared)])
            try dir.createZeroFile(otherLockspace)
            try await cluster.host(1).client(["init", "-r", "NOT_JOINED:\(otherLockspace):\(sanlockEscaped(dir.path(of: otherLockspace))):0"])

            let directory = try LeaseDirectory(path: dir.path)
            let scanner = InventoryScanner(directory: directory, classifier: LeaseClassifier(probeHostIDs: [1, 2]))
            let hosts = Dictionary(uniqueKeysWithValues: try SanlockClient.hosts(in: TestLeaseDirectory.lockspace).map { ($0.hostID, $0) })
            let remover = LeaseRemover(directory: directory, hosts: hosts, thisHost: (id: 1, generation: nil))
            let connection = try SanlockConnection()
            let missingEntry = scanner.forRemoval(missing)
            try FileManager.default.removeItem(atPath: dir.path(of: missing))

            #expect(remover.remove(scanner.forRemoval(heldHere), using: connection) == .kept(.heldByThisHost))
            #expect(remover.remove(scanner.forRemoval(heldThere), using: connection) == .kept(.heldByLiveHost(2, .live)))
            #expect(remover.remove(scanner.forRemoval(sharedThere), using: connection) == .kept(.heldShared(hosts: [])))
            #expect(remover.remove(scanner.forRemoval(cleared), using: connection) == .kept(.clearedLease(ClearedLease(invalidatedBy: nil))))
            #expect(remover.remove(missingEntry, using: connection) == .kept(.vanished))
            let notJoined = LeaseRemover(directory: directory, lockspace: "NOT_JOINED", hosts: hosts, thisHost: (id: 1, generation: nil))
            guard case .failed(.lockspaceNotJoined(let error)) = notJoined.remove(scanner.forRemoval(otherLockspace), using: connection) else {
                Issue.record("acquire in a lockspace this host has not joined was not reported as such")
                return
            }
            #expect(error.code == .noSpace)
            for lease in [heldHere, heldThere, sharedThere, cleared, otherLockspace] {
                #expect(FileManager.default.fileExists(atPath: dir.path(of: lease)), "\(lease) removed")
            }

            // A guest starts (acquires) and pauses (releases) between the
            // scan and our acquire: the lease version tells, the lease stays.
            let racing = String(repeating: "7", count: 32)
            try await cluster.host(1).createLease(racing, in: dir)
            let scanned = scanner.forRemoval(racing)
            #expect(scanned.entry.leaseState?.lver == 0)
            try await cluster.host(2).release(try await cluster.host(2).hold(racing, in: dir))
            #expect(remover.remove(scanned, using: connection) == .kept(.usedDuringRun(scannedLVer: 0, lver: 2)))
            #expect(FileManager.default.fileExists(atPath: dir.path(of: racing)))
            // Looked at afresh, it is a released lease like any other.
            #expect(remover.remove(scanner.forRemoval(racing), using: connection) == .deleted)
        }
    }

    @Test("SANLK_WRITE_CLEAR is allowed under a held lease, but it zeroes every host's paxos ballot")
    func writeClearWhileHeld() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let lease = String(repeating: "c", count: 32)
            try await cluster.host(1).createLease(lease, in: dir)
            let resource = SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: lease, path: dir.path(of: lease))
            let connection = try SanlockConnection()
            try connection.acquire(resource)
            #expect(try dblock(of: 1, in: dir.path(of: lease)).contains { $0 != 0 }, "the acquire's ballot is on disk")
            try SanlockDirectCalls.writeClear(resource)
            #expect(try leaderOnDisk(dir.path(of: lease)).isCleared)
            // The committed ballot is gone: a host mid-acquire could no longer
            // see it, which is why the janitor invalidates only the leader.
            #expect(try dblock(of: 1, in: dir.path(of: lease)).allSatisfy { $0 == 0 })
            #expect(throws: SanlockError(.release, code: SanlockCode.leaderMagic)) { try connection.release(resource) }
        }
    }

    @Test("Deleting under the lease: a stale opener of the inode can never win it, and the ballot stays")
    func staleOpenerLoses() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let lease = String(repeating: "e", count: 32)
            try await cluster.host(1).createLease(lease, in: dir)
            // The stale opener: a process that opened the lease before the
            // cleanup. Host 2 then reaches that inode through the opener's
            // descriptor in /proc after the unlink. (A hard link would keep
            // the janitor from touching the file at all: hard-linked.)
            let opener = open(dir.path(of: lease), O_RDONLY)
            #expect(opener >= 0)
            defer { close(opener) }

            let directory = try LeaseDirectory(path: dir.path)
            let scanner = InventoryScanner(directory: directory, classifier: LeaseClassifier(probeHostIDs: [1, 2]))
            let remover = LeaseRemover(directory: directory, hosts: nil, thisHost: (id: 1, generation: nil))
            #expect(remover.remove(scanner.forRemoval(lease), using: try SanlockConnection()) == .deleted)
            #expect(!FileManager.default.fileExists(atPath: dir.path(of: lease)))
            let staleLink = "/proc/\(getpid())/fd/\(opener)"

            let leader = try leaderOnDisk(staleLink)
            #expect(leader.isCleared && leader.checksumIsValid)
            #expect(leader.ownerID == 1 && leader.lver == 1, "only the magic changed")
            #expect(try dblock(of: 1, in: staleLink).contains { $0 != 0 }, "our committed ballot is still there")
            // Host 2 tries the orphaned inode: refused (SANLK_LEADER_MAGIC).
            let attempt = try await cluster.host(2).client(
                ["command", "-r", "\(TestLeaseDirectory.lockspace):\(lease):\(sanlockEscaped(staleLink)):0", "-c", "/bin/true"],
                check: false)
            #expect(attempt.status != 0)
            #expect(attempt.stdout.contains("-223") || attempt.stderr.contains("-223"), "\(attempt.stdout)\(attempt.stderr)")
            // And so does this host.
            #expect(throws: SanlockError(.acquire, code: SanlockCode.leaderMagic)) {
                try SanlockConnection().acquire(SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: lease, path: staleLink))
            }
        }
    }

    @Test("A guest that starts and pauses between the lease scan and the guest read keeps its lease")
    func guestStartingBetweenTheInventoryReads() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let disk = "/var/lib/libvirt/images/late.qcow2"
            let lease = try await leaseName(forDisk: disk)
            try await cluster.host(1).createLease(lease, in: dir)
            let status = cluster.scratch.path + "/run-libvirt-qemu"
            try FileManager.default.createDirectory(atPath: status, withIntermediateDirectories: true)
            let resource = SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: lease, path: dir.path(of: lease))
            // Right after the first of the two inventory reads (whichever it
            // is), the guest starts (acquires its lease) and pauses (libvirt
            // releases it and writes the status file). Before the fix the
            // guests were read first: the scan then saw a lease released by
            // this host, no guest named it, and it was deleted.
            let entered = Mutex<[RunControl.Stage]>([])
            let control = RunControl { stage in
                guard stage == .scanningLeases || stage == .readingGuests else { return }
                let second = entered.withLock { stages in
                    stages.append(stage)
                    return stages.count == 2
                }
                guard second else { return }
                do {
                    let guest = try SanlockConnection()
                    try guest.acquire(resource)
                    try guest.release(resource)
                    try TestGuest(name: "late", state: "paused", pid: getpid(), disks: [.init(path: disk)]).writeStatus(in: status)
                } catch {
                    Issue.record("the guest could not start: \(error)")
                }
            }
            let configuration = RunConfiguration(
                leaseDirectory: dir.path, mode: .clean, jobs: 1, statusDirectories: [status], configDirectories: [],
                policy: DeletionPolicy(minimumAge: 0))
            let report = try SanlockCleanup.Janitor(configuration: configuration, logger: Logger(label: "test"), control: control).run()
            #expect(entered.withLock { $0.count } == 2)
            let line = try #require(report.leases.first { $0.entry.name.string == lease })
            #expect(line.action == .kept)
            #expect(line.reason.code == "used-by-guest")
            #expect(FileManager.default.fileExists(atPath: dir.path(of: lease)))
        }
    }

    @Test("When unlink fails after invalidating, a fresh lease is written back")
    func unlinkFailureRestoresLease() async throws {
        try #require(Command.exists("chattr"), "chattr (e2fsprogs) is needed")
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let lease = String(repeating: "d", count: 32)
            try await cluster.host(1).createLease(lease, in: dir)
            // Append-only directory: files stay writable, entries cannot be removed.
            try await Command.run(["chattr", "+a", dir.path])
            let directory = try LeaseDirectory(path: dir.path)
            let scanner = InventoryScanner(directory: directory, classifier: LeaseClassifier(probeHostIDs: [1, 2]))
            let remover = LeaseRemover(directory: directory, hosts: nil, thisHost: (id: 1, generation: nil))
            let outcome = remover.remove(scanner.forRemoval(lease), using: try SanlockConnection())
            try await Command.run(["chattr", "-a", dir.path])
            guard case .failed(.unlinkFailed(let error, let now)) = outcome else {
                Issue.record("unexpected outcome \(outcome)")
                return
            }
            #expect(error.errno == .notPermitted)
            #expect(now == .intact)
            let leader = try leaderOnDisk(dir.path(of: lease))
            #expect(leader.isPaxosLeader && leader.checksumIsValid && !leader.isHeld)
            #expect(leader.ownerID == 1 && leader.lver == 1, "released normally by this host")
            // libvirt can use it again.
            let guest = try await cluster.host(2).hold(lease, in: dir)
            try await cluster.host(2).release(guest)
        }
    }
}

extension SanlockBehaviourTests {
    /// One "guest" hold during the churn.
    struct Hold: Sendable {
        var lease: String
        var fileExistedAtRelease: Bool
        var releaseCode: Int32
    }

    @Test("While guests start and stop, a janitor on another host never deletes a lease while it is held")
    func churnDuringCleanup() async throws {
        try await Self.withInProcessCluster { cluster in
            let dir = cluster.leases
            let names = (1...300).map { String(format: "%032x", 0xc0000 + $0) }
            try await createLeases(names, host: cluster.host(1), in: dir)

            // Guests on host 1 (this process) acquiring and releasing leases
            // of the directory while host 2's janitor cleans it.
            let stop = Atomic<Bool>(false)
            let holds = Mutex<[Hold]>([])
            let refusals = Mutex<[Int32: Int]>([:])
            let group = DispatchGroup()
            for worker in 0..<4 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    guard let connection = try? SanlockConnection() else { return }
                    var generator = SystemRandomNumberGenerator()
                    var index = worker
                    while !stop.load(ordering: .relaxed) {
                        index = (index + Int.random(in: 1...37, using: &generator)) % names.count
                        let lease = names[index]
                        let resource = SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: lease, path: dir.path(of: lease))
                        do throws(SanlockError) {
                            try connection.acquire(resource)
                        } catch {
                            refusals.withLock { $0[error.code.rawValue, default: 0] += 1 }
                            continue
                        }
                        usleep(UInt32.random(in: 2_000...20_000, using: &generator))
                        let exists = FileManager.default.fileExists(atPath: dir.path(of: lease))
                        var code: Int32 = 0
                        do throws(SanlockError) { try connection.release(resource) } catch { code = error.code.rawValue }
                        holds.withLock { $0.append(Hold(lease: lease, fileExistedAtRelease: exists, releaseCode: code)) }
                    }
                }.start()
            }
            try await Task.sleep(for: .milliseconds(300))
            let run = try await JanitorBinary.run(["--lease-dir", dir.path, "--any-host"], daemon: cluster.host(2))
            stop.store(true, ordering: .relaxed)
            await withCheckedContinuation { continuation in
                group.notify(queue: .global()) { continuation.resume() }
            }

            #expect(run.status == 0, "\(run.result.stderr)")
            let allHolds = holds.withLock { $0 }
            #expect(allHolds.count > 20, "the churn hardly ran: \(allHolds.count) holds")
            for hold in allHolds {
                #expect(hold.fileExistedAtRelease, "\(hold.lease) was deleted while a guest held it")
                #expect(hold.releaseCode == 0, "\(hold.lease): release \(hold.releaseCode)")
            }
            // The report is what happened: deleted files are gone, kept ones
            // are there, nothing failed.
            let document = try #require(run.document)
            var deleted = 0
            for name in names {
                let lease = try #require(document.lease(name))
                let exists = FileManager.default.fileExists(atPath: dir.path(of: name))
                #expect(lease.action != "failed", "\(name): \(lease.detail)")
                #expect(exists == (lease.action == "kept"), "\(name): \(lease.action) but file \(exists ? "exists" : "is gone")")
                if lease.action == "kept" {
                    #expect(["held-by-live-host", "acquire-busy", "held-by-host-unknown-state", "used-during-run"].contains(lease.reason),
                            "\(name): kept for \(lease.reason)")
                }
                if lease.action == "deleted" { deleted += 1 }
            }
            let heldNames = Set(allHolds.map(\.lease))
            print("churn: \(allHolds.count) holds of \(heldNames.count) leases, refusals \(refusals.withLock { $0 }), janitor deleted \(deleted), kept \(names.count - deleted)")
            #expect(deleted > 0)
        }
    }
}

/// Host `host`'s paxos dblock (128 bytes of sector 1 + host).
private func dblock(of host: Int, in path: String) throws -> [UInt8] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return Array(data[((1 + host) * 512)..<((1 + host) * 512 + 128)])
}

