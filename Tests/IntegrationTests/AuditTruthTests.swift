import Foundation
import Sanlock
import Synchronization
import TestFixtures
import Testing

/// The audit must never vouch for a lease nobody holds, and never alarm on a
/// transient (issue 20). Each of the first three tests failed on the code
/// before its fix (run them with VSC_BINARY set to an older binary).
@Suite("--audit: no false all-clear, no false alarm", .enabled(if: DaemonTestEnvironment.shouldRun))
struct AuditTruthTests {
    /// qemu-sanlock.conf for a host configured with `hostID`.
    static func configuration(_ cluster: SanlockCluster, hostID: Int) throws -> String {
        let path = cluster.scratch.path + "/qemu-sanlock-\(hostID).conf"
        try "auto_disk_leases = 1\nhost_id = \(hostID)\ndisk_lease_dir = \"\(cluster.leases.path)\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func disk(_ run: JanitorRun, _ path: String) -> JSONValue? {
        (run.document?.guests?.elements ?? []).flatMap { $0.disks?.elements ?? [] }.first { $0.path?.text == path }
    }

    @Test("A host configured with the id another host joined with, not joined: that host's hold is not its own (exit 4)")
    func collidingHostID() async throws {
        try await withCluster(hosts: [1]) { cluster in
            let a = cluster.host(1)
            let b = try await cluster.startHost(2, join: false)
            let paused = "/images/db.qcow2"
            let lease = try await leaseName(forDisk: paused)
            try await a.createLease(lease, in: cluster.leases)
            let holder = try await a.hold(lease, in: cluster.leases)
            defer { holder.terminate() }
            let status = cluster.scratch.path + "/status-b"
            try TestGuest(name: "db", state: "paused", pid: getpid(), disks: [.init(path: paused)]).writeStatus(in: status)

            for configured in [1, 2] {
                let run = try await JanitorBinary.run(
                    ["--audit", "--lease-dir", cluster.leases.path, "--status-dir", status,
                     "--config", try Self.configuration(cluster, hostID: configured)], daemon: b)
                #expect(run.status == 4, "configured \(configured): \(run.result.stdout)")
                #expect(Self.disk(run, paused)?.protection?.text == "held-by-other-host", "configured \(configured)")
                #expect(Self.disk(run, paused)?.holderHostId?.int == 1)
                #expect(Self.disk(run, paused)?.holderHostName?.text == a.hostName)
                let conflict = run.document?.host?.identityConflict
                if configured == 1 {
                    #expect(conflict?.lockspaceName?.text == a.hostName && conflict?.thisHostName?.text == b.hostName,
                            "\(String(describing: conflict))")
                } else {
                    #expect(conflict == nil)
                }
            }
            let text = try await JanitorBinary.run(
                ["--audit", "--lease-dir", cluster.leases.path, "--status-dir", status,
                 "--config", try Self.configuration(cluster, hostID: 1)], daemon: b, json: false)
            #expect(text.result.stdout.contains("CONFLICT: host id 1 is \(a.hostName) in the lockspace file"), "\(text.result.stdout)")
            #expect(!text.result.stdout.contains("this host is 1 ("))
        }
    }

    /// A live migration hands the lease over between the hosts; either end,
    /// paused, sees the other's live hold: protected. Found by the two-host
    /// test under load: the source's audit called the handover
    /// held-by-other-host (exit 4) when it read the guest before libvirt
    /// ended it there. Once the other end's daemon has restarted, its old
    /// hold neither protects nor alarms (issue 20).
    @Test("A migration's other end: its live hold protects either end (without the job: an alarm); a restarted one's neither")
    func migrationHandover() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let here = cluster.host(1), other = cluster.host(2)
            let disk = "/images/moving.qcow2"
            let lease = try await leaseName(forDisk: disk)
            try await here.createLease(lease, in: cluster.leases)
            let qemu = try await other.hold(lease, in: cluster.leases)
            defer { qemu.terminate() }
            let status = cluster.scratch.path + "/status"
            func audit(_ job: String?) async throws -> (run: JanitorRun, disk: JSONValue?) {
                try TestGuest(name: "moving", state: "paused", pid: getpid(), disks: [.init(path: disk)], asyncJob: job)
                    .writeStatus(in: status)
                let run = try await JanitorBinary.run(
                    ["--audit", "--lease-dir", cluster.leases.path, "--status-dir", status], daemon: here)
                return (run, Self.disk(run, disk))
            }

            for (job, protection, exit) in [("migration in", "migrating-in", Int32(0)), ("migration out", "migrating-out", 0),
                                             (nil, "held-by-other-host", 4)] as [(String?, String, Int32)] {
                let (run, found) = try await audit(job)
                #expect(run.status == exit, "\(job ?? "no job"): \(run.result.stdout)")
                #expect(found?.protection?.text == protection, "\(job ?? "no job")")
                #expect(found?.holderHostId?.int == 2, "\(job ?? "no job")")
            }

            // The other host's daemon dies and comes back (a new
            // generation); its earlier incarnation's hold is anyone's to take.
            other.crashDaemonOnly()
            let restarted = try await TestSanlockDaemon.start(runDirectory: other.runDirectory, hostName: other.hostName)
            defer { Task { await restarted.stop() } }
            try await restarted.join(cluster.leases, hostID: 2)
            for job in ["migration in", "migration out", nil] {
                let (run, found) = try await audit(job)
                #expect(run.status == 0, "\(job ?? "no job"): \(run.result.stdout)")
                #expect(found?.protection?.text == "released-while-paused", "\(job ?? "no job")")
                #expect(found?.detail?.text?.contains("has restarted since") == true)
            }
            // The cleaner judges the hold the same way.
            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: here)
            #expect(try dry.lease(lease).reason == "owner-host-restarted")
        }
    }

    /// Found by the two-host test: right after a join sanlock cannot list
    /// the hosts (EAGAIN until its first renewal, 2 × io_timeout later), and
    /// every lease a guest here held passed for another generation's:
    /// file-replaced, exit 4. The join wrote this host's generation into the
    /// lockspace file; the audit reads it there.
    @Test("Right after a join, while sanlock cannot list the hosts yet: a guest's held lease is held")
    func justJoined() async throws {
        try await withCluster(hosts: []) { cluster in
            let host = try await cluster.startHost(1, join: false)
            let disk = "/images/fresh.qcow2"
            let lease = try await leaseName(forDisk: disk)
            try await host.createLease(lease, in: cluster.leases)
            // io_timeout 10: the join takes some 20 s, then get_hosts answers
            // EAGAIN for 20 s more: long enough to look.
            try await host.client(["add_lockspace", "-o", "10", "-s", cluster.leases.lockspaceSpec(hostID: 1)])
            let qemu = try await host.hold(lease, in: cluster.leases)
            defer { qemu.terminate() }
            let status = cluster.scratch.path + "/status"
            try TestGuest(name: "fresh", pid: qemu.processIdentifier, disks: [.init(path: disk)]).writeStatus(in: status)

            let audit = try await JanitorBinary.run(
                ["--audit", "--lease-dir", cluster.leases.path, "--status-dir", status], daemon: host)
            let warnings = audit.document?.warnings?.strings ?? []
            #expect(warnings.contains { $0.contains("sanlock_get_hosts failed") && $0.contains("EAGAIN") },
                    "the audit must run inside the window for this test to mean anything: \(warnings)")
            #expect(audit.status == 0, "\(audit.result.stdout)")
            #expect(Self.disk(audit, disk)?.protection?.text == "held")
            #expect(audit.document?.host?.generation?.int == 1)
        }
    }

    @Test("A lockspace still being added is not joined: the cleaning run stops before trying anything, the audit says joining")
    func joiningIsNotJoined() async throws {
        try await withCluster(hosts: []) { cluster in
            let host = try await cluster.startHost(1, join: false)
            let lease = String(repeating: "9", count: 32)
            try await host.createLease(lease, in: cluster.leases)
            // A join at io_timeout 10 takes some 20 s: long enough to look.
            let join = try Command.start(["sanlock", "client", "add_lockspace", "-o", "10", "-s", cluster.leases.lockspaceSpec(hostID: 1)],
                                         environment: host.environment)
            defer { join.terminate() }
            try await waitUntil("the join to be under way") {
                (try await host.client(["status"], check: false)).stdout.split(separator: "\n").contains { $0.hasPrefix("s ") && $0.hasSuffix(" ADD") }
            }
            let clean = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(clean.status == 1, "\(clean.result.stderr)")
            #expect(clean.document?.error?.code == "lockspace-not-joined")
            #expect(clean.result.stderr.contains("still joining"), "\(clean.result.stderr)")
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
            let audit = try await JanitorBinary.run(["--audit", "--lease-dir", cluster.leases.path], daemon: host)
            #expect(audit.document?.host?.lockspaceState == "joining")
            #expect(audit.document?.host?.joined == false)
        }
    }
}

/// In the in-process suite: the guests' "qemu" are connections of this
/// process, which finds its daemon through SANLOCK_RUN_DIR (see there).
extension SanlockBehaviourTests {
    /// Guests pause and resume as libvirt does it (release, a 20 ms gap, then
    /// the status file; acquire, a gap, the status file) while audits run
    /// back to back; one more guest runs without ever holding its lease. No
    /// audit may report any disk unprotected but that one, and every audit
    /// must report that one.
    @Test("Churn: guests pausing and resuming under audits, back to back: no false alarm, every real one", .timeLimit(.minutes(3)))
    func churn() async throws {
        try await Self.withInProcessCluster { cluster in
            let host = cluster.host(1)
            let status = cluster.scratch.path + "/status"
            let guests = 8, seconds = 20.0
            var leases: [String] = []
            for index in 0..<guests {
                let lease = try await leaseName(forDisk: "/images/churn-\(index).qcow2")
                try await host.createLease(lease, in: cluster.leases)
                leases.append(lease)
                try TestGuest(name: "churn-\(index)", state: "paused", pid: getpid(), disks: [.init(path: "/images/churn-\(index).qcow2")])
                    .writeStatus(in: status)
            }
            let broken = "/images/broken.qcow2"
            try await host.createLease(try await leaseName(forDisk: broken), in: cluster.leases)
            try TestGuest(name: "broken", state: "running", pid: getpid(), disks: [.init(path: broken)]).writeStatus(in: status)

            let stop = Atomic<Bool>(false)
            let transitions = Atomic<Int>(0)
            let failures = Mutex<[String]>([])
            let done = DispatchGroup()
            for index in 0..<guests {
                let resource = SanlockResource(lockspace: TestLeaseDirectory.lockspace, name: leases[index],
                                               path: cluster.leases.path(of: leases[index]))
                // Written once here: the threads below only swap the files.
                let guest = TestGuest(name: "churn-\(index)", pid: getpid(), disks: [.init(path: "/images/churn-\(index).qcow2")])
                var paused = guest
                paused.state = "paused"
                let runningXML = try guest.statusXML(), pausedXML = try paused.statusXML()
                let file = status + "/\(guest.name).xml"
                done.enter()
                Thread {
                    defer { done.leave() }
                    do {
                        let qemu = try SanlockConnection()
                        var generator = SystemRandomNumberGenerator()
                        while !stop.load(ordering: .relaxed) {
                            try qemu.acquire(resource)
                            usleep(20_000)
                            try TestGuest.write(runningXML, to: file)
                            usleep(UInt32.random(in: 50_000...400_000, using: &generator))
                            try qemu.release(resource)
                            usleep(20_000)
                            try TestGuest.write(pausedXML, to: file)
                            transitions.add(2, ordering: .relaxed)
                            usleep(UInt32.random(in: 50_000...400_000, using: &generator))
                        }
                    } catch {
                        failures.withLock { $0.append("\(guest.name): \(error)") }
                    }
                }.start()
            }

            var audits = 0, falseAlarms = 0, caught = 0
            var examples: [String] = []
            let started = Date()
            while Date().timeIntervalSince(started) < seconds {
                let run = try await JanitorBinary.run(["--audit", "--lease-dir", cluster.leases.path, "--status-dir", status],
                                                      daemon: host)
                audits += 1
                let unprotected = (run.document?.guests?.elements ?? []).flatMap { $0.disks?.elements ?? [] }
                    .filter { !["held", "released-while-paused", "migrating-in", "migrating-out"].contains($0.protection?.text ?? "") }
                if unprotected.contains(where: { $0.path?.text == broken }) { caught += 1 }
                let others = unprotected.filter { $0.path?.text != broken }
                if !others.isEmpty {
                    falseAlarms += 1
                    examples += others.map { "\($0.path?.text ?? "?"): \($0.protection?.text ?? "?"): \($0.detail?.text ?? "")" }
                }
                #expect(run.status == 4, "\(run.result.stderr)")
            }
            stop.store(true, ordering: .relaxed)
            await withCheckedContinuation { continuation in done.notify(queue: .global()) { continuation.resume() } }
            print("churn: \(audits) audits, \(transitions.load(ordering: .relaxed)) pauses and resumes, "
                  + "\(falseAlarms) false alarms, \(caught) of \(audits) real alarms caught")
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
            #expect(transitions.load(ordering: .relaxed) > guests * 4, "the guests hardly moved")
            #expect(falseAlarms == 0, "\(examples.prefix(5))")
            #expect(caught == audits)
        }
    }
}
