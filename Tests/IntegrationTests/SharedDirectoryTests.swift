import Foundation
import Testing

/// Two sanlock daemons on one machine act as two hosts sharing one lease
/// directory (separate SANLOCK_RUN_DIR, one lockspace file, host ids 1, 2).
@Suite("Shared lease directories, crashed hosts, retirement", .enabled(if: DaemonTestEnvironment.shouldRun))
struct SharedDirectoryTests {
    @Test("A lease another live host held last (its paused guest) is kept by default, deleted with --any-host")
    func lastHolderRule() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let theirs = String(repeating: "2", count: 32)
            let ours = String(repeating: "1", count: 32)
            for (host, lease) in [(2, theirs), (1, ours)] {
                try await cluster.host(host).createLease(lease, in: cluster.leases)
                try await cluster.host(host).release(try await cluster.host(host).hold(lease, in: cluster.leases))
            }
            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: cluster.host(1))
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(theirs).action == "kept")
            #expect(try run.lease(theirs).reason == "last-held-by-live-host")
            #expect(try run.lease(theirs).ownerHostId == 2)
            #expect(try run.lease(theirs).detail?.text?.contains("run the janitor on host 2") == true)
            // Who host 2 is: its name from the lockspace file, its liveness from
            // sanlock (live, or unknown in the seconds after it joined).
            let state = try run.lease(theirs).ownerHostState?.text
            #expect(try run.lease(theirs).ownerHostName?.text == cluster.host(2).hostName)
            #expect(state == "live" || state == "unknown", "\(String(describing: state))")
            let text = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: cluster.host(1), json: false)
            #expect(text.result.stdout.contains("run the janitor on host 2; unknown disk; host 2 is \(cluster.host(2).hostName), live")
                    || text.result.stdout.contains("run the janitor on host 2; unknown disk; host 2 is \(cluster.host(2).hostName), unknown"),
                    "\(text.result.stdout)")
            // Without a daemon the name still comes from the lockspace file.
            let offline = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: nil)
            #expect(try offline.lease(theirs).ownerHostName?.text == cluster.host(2).hostName)
            #expect(try offline.lease(theirs).ownerHostState == nil)
            #expect(try run.lease(ours).action == "deleted")
            #expect(try run.lease(ours).reason == "released")

            // Host 2's own janitor may delete it (no guest of host 2 uses it).
            let there = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: cluster.host(2))
            #expect(try there.lease(theirs).action == "deleted")

            try await cluster.host(2).createLease(theirs, in: cluster.leases)
            try await cluster.host(2).release(try await cluster.host(2).hold(theirs, in: cluster.leases))
            let any = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--any-host"], daemon: cluster.host(1))
            #expect(try any.lease(theirs).action == "deleted")
        }
    }

    @Test("Retirement is refused for this host and for a live host")
    func retirementRefusals() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let lease = String(repeating: "3", count: 32)
            try await cluster.host(2).createLease(lease, in: cluster.leases)
            try await cluster.host(2).release(try await cluster.host(2).hold(lease, in: cluster.leases))

            let me = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--retired-host", "1"], daemon: cluster.host(1))
            #expect(me.status == 1)
            #expect(me.document?.error?.code == "retiring-this-host")
            let live = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--retired-host", "2"], daemon: cluster.host(1))
            #expect(live.status == 1)
            #expect(live.document?.error?.code == "retired-host-live")
            // Just joined, host 2 may still read "unknown": treated as live.
            #expect(live.result.stderr.contains("refusing to purge its leases"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
        }
    }

    /// The one test that waits for sanlock to declare a host dead (8 × io +
    /// 60 s = 68 s with io_timeout 1): it covers "failing" (never a blocking
    /// run) and the purge after retirement.
    @Test("A crashed host: failing within seconds without blocking, then dead, then purged with --retired-host", .timeLimit(.minutes(4)))
    func crashedHostIsRetired() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let host2 = cluster.host(2)
            let held = (1...3).map { String(format: "%032x", 0xd00 + $0) }
            let released = String(format: "%032x", 0xe00)
            let ours = String(format: "%032x", 0xf00)
            for lease in held + [released] { try await host2.createLease(lease, in: cluster.leases) }
            try await cluster.host(1).createLease(ours, in: cluster.leases)
            for lease in held { _ = try await host2.hold(lease, in: cluster.leases) }
            try await host2.release(try await host2.hold(released, in: cluster.leases))
            _ = try await cluster.host(1).hold(ours, in: cluster.leases)

            let crashed = Date()
            host2.crash()

            // No run blocks on the crashed owner, and that needs no clock: an
            // acquire that waited (no SANLK_ACQUIRE_OWNER_NOWAIT) would only
            // come back once sanlock declares host 2 dead (68 s), and then
            // with the lease granted and deleted. A run that answers
            // `held-by-live-host` or `owner-host-failing` with the file still
            // there got sanlock's immediate refusal. Within seconds of the
            // crash the refusal says "failing". The loop's bound is a hang
            // guard, well inside the 68 s before host 2 is dead.
            var failingAfter: Double?
            while failingAfter == nil, Date().timeIntervalSince(crashed) < 60 {
                let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: cluster.host(1))
                #expect(run.status == 0)
                for lease in held { #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: lease))) }
                if try run.lease(held[0]).reason == "owner-host-failing" {
                    failingAfter = Date().timeIntervalSince(crashed)
                    #expect(try run.lease(held[0]).detail?.text?.contains("retry after") == true)
                    #expect(try run.lease(released).reason == "last-held-by-failing-host")
                } else {
                    #expect(try run.lease(held[0]).reason == "held-by-live-host", "a run blocked until host 2 was dead")
                    try await Task.sleep(for: .seconds(1))
                }
            }
            let failing = try #require(failingAfter, "host 2 never reported failing")
            print("crashed host 2: failing after \(String(format: "%.1f", failing)) s")

            // Retiring a failing host: reported, its leases kept until dead.
            let early = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--retired-host", "2"], daemon: cluster.host(1))
            #expect(early.status == 0)
            #expect(early.document?.warnings?.strings?.contains { $0.contains("host 2 is failing") && $0.contains("within 60 s") } == true)
            #expect(early.document?.summary?.deleted == 0)

            // Wait for sanlock to declare it dead, then purge.
            var purge: JanitorRun?
            while Date().timeIntervalSince(crashed) < 180 {
                let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--retired-host", "2"], daemon: cluster.host(1))
                if try run.lease(held[0]).reason != "owner-host-failing" {
                    purge = run
                    break
                }
                try await Task.sleep(for: .seconds(2))
            }
            let dead = Date().timeIntervalSince(crashed)
            print("crashed host 2: purged after \(String(format: "%.1f", dead)) s")
            let run = try #require(purge, "host 2 never declared dead")
            #expect(run.status == 0, "\(run.result.stderr)")
            for lease in held {
                #expect(try run.lease(lease).action == "deleted")
                #expect(try run.lease(lease).reason == "owner-host-dead")
                #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
            }
            #expect(try run.lease(released).action == "deleted")
            // Host 1's own lease is outside the retirement: not listed, untouched.
            #expect(run.document?.lease(ours) == nil)
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: ours)))
            #expect(run.document?.retiredHosts == [2])
        }
    }

    @Test("The minimum age keeps recent leases; old uninitialised ones go")
    func minimumAge() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let fresh = String(repeating: "a", count: 32)
            let old = String(repeating: "b", count: 32)
            let halfMade = String(repeating: "c", count: 32)
            try await host.createLease(fresh, in: cluster.leases)
            try await host.createLease(old, in: cluster.leases)
            try cluster.leases.createZeroFile(halfMade)
            try await Command.run(["touch", "-d", "2 hours ago", cluster.leases.path(of: old), cluster.leases.path(of: halfMade)])

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--min-age", "30m"], daemon: host)
            #expect(run.status == 0)
            #expect(try run.lease(fresh).action == "kept")
            #expect(try run.lease(fresh).reason == "too-recent")
            #expect(try run.lease(old).action == "deleted")
            #expect(try run.lease(halfMade).action == "deleted")
            #expect(try run.lease(halfMade).reason == "uninitialised-abandoned")
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: fresh)))

            let bad = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--min-age", "soon"], daemon: host)
            #expect(bad.status == 64)
            #expect(bad.result.stderr.contains("The value 'soon' is invalid for '--min-age <duration>'"))
        }
    }

    /// "At once" is proven without a clock: this test holds the lock until
    /// the second janitor has exited, so one that waited for the lock would
    /// never exit (the time limit ends the test then), and only one that
    /// gave up at once can name the holder's pid and exit 3.
    @Test("One janitor at a time per lease directory and host: a second exits at once with status 3", .timeLimit(.minutes(2)))
    func secondJanitorExits() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "d", count: 32)
            try await host.createLease(free, in: cluster.leases)
            var status = stat(), daemon = stat()
            #expect(stat(cluster.leases.path, &status) == 0)
            #expect(stat(host.runDirectory, &daemon) == 0)
            let lockFile = "/run/virt-sanlock-cleanup/lease-dir-\(status.st_dev)-\(status.st_ino)-run-\(daemon.st_dev)-\(daemon.st_ino).lock"
            try FileManager.default.createDirectory(atPath: "/run/virt-sanlock-cleanup", withIntermediateDirectories: true)
            // Another janitor, as far as the lock goes: this process holds it.
            let fd = open(lockFile, O_RDWR | O_CREAT, 0o600)
            #expect(fd >= 0)
            #expect(flock(fd, LOCK_EX) == 0)
            _ = "pid \(getpid())\n".withCString { write(fd, $0, strlen($0)) }

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(run.status == 3)
            #expect(run.document?.error?.code == "another-janitor-running")
            #expect(run.result.stderr.contains("another virt-sanlock-cleanup is working on this lease directory (pid \(getpid()))"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
            // A dry run takes no lock.
            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: host)
            #expect(dry.status == 0)

            close(fd)
            let after = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(after.status == 0)
            #expect(try after.lease(free).action == "deleted")
        }
    }

    @Test("Janitors on two hosts at once never both act on one lease: sanlock arbitrates")
    func twoHostsAtOnce() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let names = (1...200).map { String(format: "%032x", 0xa0000 + $0) }
            try await createLeases(names, host: cluster.host(1), in: cluster.leases)
            async let first = JanitorBinary.run(["--lease-dir", cluster.leases.path, "--any-host"], daemon: cluster.host(1))
            async let second = JanitorBinary.run(["--lease-dir", cluster.leases.path, "--any-host"], daemon: cluster.host(2))
            let runs = try await [first, second]
            for run in runs { #expect(run.status == 0, "\(run.result.stderr)") }
            var deletedBy: [String: Int] = [:]
            for (index, run) in runs.enumerated() {
                for lease in run.document?.leases?.elements ?? [] where lease.action == "deleted" {
                    let name = lease.name?.text ?? ""
                    #expect(deletedBy[name] == nil, "\(name) deleted by both hosts")
                    deletedBy[name] = index + 1
                }
                for lease in run.document?.leases?.elements ?? [] where names.contains(lease.name?.text ?? "") {
                    #expect(lease.action != "failed", "host \(index + 1): \(lease.name?.text ?? ""): \(lease.reason?.text ?? "") \(lease.detail?.text ?? "")")
                }
            }
            #expect(deletedBy.count == 200)
            let remaining = try FileManager.default.contentsOfDirectory(atPath: cluster.leases.path)
            #expect(remaining == ["__LIBVIRT__DISKS__"])
            print("two janitors at once: host 1 deleted \(deletedBy.values.filter { $0 == 1 }.count), host 2 \(deletedBy.values.filter { $0 == 2 }.count)")
        }
    }
}

/// Creates many leases with sanlock, eight `sanlock client init` at a time.
func createLeases(_ names: [String], host: TestSanlockDaemon, in directory: TestLeaseDirectory) async throws {
    for batch in stride(from: 0, to: names.count, by: 8) {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names[batch..<min(batch + 8, names.count)] {
                group.addTask { try await host.createLease(name, in: directory) }
            }
            try await group.waitForAll()
        }
    }
}
