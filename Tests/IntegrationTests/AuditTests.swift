import Foundation
import TestFixtures
import Testing

/// `--audit` against real daemons: holder processes stand in for qemu, and
/// status XML names their pids, as libvirt's does.
@Suite("--audit: every protection value, against real sanlock daemons", .enabled(if: DaemonTestEnvironment.shouldRun))
struct AuditTests {
    /// The disks of an audit document by their source path.
    static func disks(_ run: JanitorRun) -> [String: JSONValue] {
        var disks: [String: JSONValue] = [:]
        for guest in run.document?.guests?.elements ?? [] {
            for disk in guest.disks?.elements ?? [] {
                if let path = disk.path?.text { disks[path] = disk }
            }
        }
        return disks
    }

    static func audit(_ cluster: SanlockCluster, host: Int = 1, status: String) async throws -> JanitorRun {
        try await JanitorBinary.run(["--audit", "--lease-dir", cluster.leases.path, "--status-dir", status],
                                    daemon: cluster.host(host))
    }

    @Test("Running guests: held, not-held, held by another process or host, file missing, replaced or invalid, unmapped volume")
    func runningGuests() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let here = cluster.host(1)
            let dir = cluster.leases
            func lease(_ disk: String) async throws -> String { try await leaseName(forDisk: disk) }
            let held = "/images/held.qcow2", notHeld = "/images/not-held.qcow2", missing = "/images/missing.qcow2"
            let invalid = "/images/invalid.qcow2", byProcess = "/images/other-process.qcow2"
            let byHost = "/images/other-host.qcow2", replaced = "/images/replaced.qcow2", removed = "/images/removed.qcow2"
            let shared = "/images/shared.img"
            for disk in [held, notHeld, byProcess, byHost, replaced, removed, shared] {
                try await here.createLease(try await lease(disk), in: dir)
            }
            try dir.createZeroFile(try await lease(invalid))

            let guestA = try await here.hold(try await lease(held), in: dir)
            let guestB = try await here.hold(try await lease(replaced), in: dir)
            let guestC = try await here.hold(try await lease(removed), in: dir)
            let guestD = try await here.hold(try await lease(shared), in: dir, shared: true)
            let stranger = try await here.hold(try await lease(byProcess), in: dir)
            let otherHost = try await cluster.host(2).hold(try await lease(byHost), in: dir)
            defer { for process in [guestA, guestB, guestC, guestD, stranger, otherHost] { process.terminate() } }

            // guest B's file is removed and made again: sanlock still holds
            // the old inode; guest C's is removed.
            try FileManager.default.removeItem(atPath: dir.path(of: try await lease(replaced)))
            try await here.createLease(try await lease(replaced), in: dir)
            try FileManager.default.removeItem(atPath: dir.path(of: try await lease(removed)))

            let status = cluster.scratch.path + "/status"
            try TestGuest(name: "a", pid: guestA.processIdentifier, disks: [
                .init(path: held), .init(path: notHeld), .init(path: missing), .init(path: invalid),
                .init(path: byProcess), .init(path: byHost), .init(path: "/images/readonly.iso", readonly: true),
            ]).writeStatus(in: status)
            try TestGuest(name: "b", pid: guestB.processIdentifier, disks: [.init(path: replaced)]).writeStatus(in: status)
            try TestGuest(name: "c", pid: guestC.processIdentifier, disks: [.init(path: removed)]).writeStatus(in: status)
            try TestGuest(name: "d", pid: guestD.processIdentifier, disks: [.init(path: shared, shareable: true)])
                .writeStatus(in: status)
            try TestGuest(name: "e", pid: guestA.processIdentifier, rawDisks: """
                <disk type='volume' device='disk'><source pool='default' volume='e.qcow2'/><target dev='vda'/></disk>
                """).writeStatus(in: status)

            let run = try await Self.audit(cluster, status: status)
            #expect(run.status == 4, "\(run.result.stderr)")
            let disks = Self.disks(run)
            #expect(disks.count == 10, "the read-only disk gets no lease, so it is not audited: \(disks.keys.sorted())")
            #expect(disks[held]?.protection?.text == "held")
            #expect(disks[held]?.holderPid?.int == Int(guestA.processIdentifier))
            #expect(disks[held]?.holderHostId?.int == 1)
            #expect(disks[shared]?.protection?.text == "held" && disks[shared]?.mode?.text == "shared")
            #expect(disks[notHeld]?.protection?.text == "not-held")
            #expect(disks[missing]?.protection?.text == "file-missing")
            #expect(disks[invalid]?.protection?.text == "file-invalid")
            #expect(disks[byProcess]?.protection?.text == "held-by-other-process")
            #expect(disks[byProcess]?.holderPid?.int == Int(stranger.processIdentifier))
            #expect(disks[byHost]?.protection?.text == "held-by-other-host")
            #expect(disks[byHost]?.holderHostId?.int == 2)
            #expect(disks[byHost]?.holderHostName?.text == "host2")
            #expect(disks[byHost]?.holderHostState?.text == "live" || disks[byHost]?.holderHostState?.text == "unknown")
            #expect(disks[replaced]?.protection?.text == "file-replaced")
            #expect(disks[removed]?.protection?.text == "file-missing")
            #expect(disks[removed]?.holderPid?.int == Int(guestC.processIdentifier))
            #expect(disks["default/e.qcow2"]?.protection?.text == "unmapped-volume")

            let summary = run.document?.summary
            #expect(summary?.disks?.int == 10 && summary?.unprotected?.int == 8)
            let host = run.document?.host
            #expect(host?.joined == .bool(true) && host?.hostId?.int == 1 && host?.hostName?.text == "host1")
            #expect((host?.generation?.int ?? 0) >= 1)
            // The stranger holds a lease no guest accounts for.
            let unaccounted = host?.unaccountedLeases?.elements ?? []
            #expect(unaccounted.map { $0.pid?.int } == [Int(stranger.processIdentifier)])
            #expect(unaccounted.first?["lease"]?.text == (try await lease(byProcess)))

            // Nothing changed: every lease is still there and held as it was.
            #expect(FileManager.default.fileExists(atPath: dir.path(of: try await lease(notHeld))))
            let again = try await Self.audit(cluster, status: status)
            #expect(Self.disks(again).mapValues { $0.protection?.text } == disks.mapValues { $0.protection?.text })
        }
    }

    @Test("Paused guests: released-while-paused, held by another host; exit 0, 4, and 1 without a daemon")
    func pausedGuestsAndExitStatuses() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let here = cluster.host(1)
            let dir = cluster.leases
            let running = "/images/web.qcow2", paused = "/images/db.qcow2", gone = "/images/gone.qcow2"
            for disk in [running, paused] { try await here.createLease(try await leaseName(forDisk: disk), in: dir) }
            let web = try await here.hold(try await leaseName(forDisk: running), in: dir)
            defer { web.terminate() }
            let status = cluster.scratch.path + "/status"
            try TestGuest(name: "web", pid: web.processIdentifier, disks: [.init(path: running)]).writeStatus(in: status)
            // libvirt released the paused guest's lease; its qemu lives on.
            try TestGuest(name: "db", state: "paused", pid: getpid(), disks: [.init(path: paused)]).writeStatus(in: status)

            let metrics = cluster.scratch.path + "/audit.prom"
            let healthy = try await JanitorBinary.run(
                ["--audit", "--lease-dir", dir.path, "--status-dir", status, "--metrics-file", metrics], daemon: here)
            #expect(healthy.status == 0, "\(healthy.result.stderr)")
            #expect(Self.disks(healthy)[paused]?.protection?.text == "released-while-paused")
            #expect(Self.disks(healthy)[running]?.protection?.text == "held")
            let exposition = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(exposition.contains("virt_sanlock_cleanup_audit_disks{protection=\"held\"} 1"))
            #expect(exposition.contains("virt_sanlock_cleanup_audit_disks{protection=\"released-while-paused\"} 1"))
            #expect(exposition.contains("virt_sanlock_cleanup_audit_disks{protection=\"not-held\"} 0"))
            #expect(exposition.contains("virt_sanlock_cleanup_audit_last_run_timestamp_seconds "))

            // Host 2 takes the paused guest's lease: the guest cannot resume.
            let thief = try await cluster.host(2).hold(try await leaseName(forDisk: paused), in: dir)
            let taken = try await Self.audit(cluster, status: status)
            #expect(taken.status == 4)
            #expect(Self.disks(taken)[paused]?.protection?.text == "held-by-other-host")
            #expect(Self.disks(taken)[paused]?.holderHostId?.int == 2)
            let text = try await JanitorBinary.run(
                ["--audit", "--lease-dir", dir.path, "--status-dir", status], daemon: here, json: false)
            #expect(text.status == 4)
            #expect(text.result.stdout.contains("held-by-other-host 2 (host2, "), "\(text.result.stdout)")
            #expect(text.result.stdout.contains("1 UNPROTECTED"))
            try await cluster.host(2).release(thief)

            // A paused guest whose lease file is gone cannot resume either.
            try TestGuest(name: "old", state: "paused", pid: getpid(), disks: [.init(path: gone)]).writeStatus(in: status)
            let missing = try await Self.audit(cluster, status: status)
            #expect(missing.status == 4 && Self.disks(missing)[gone]?.protection?.text == "file-missing")
            try FileManager.default.removeItem(atPath: status + "/old.xml")

            // Without a daemon nothing can be proved: status 1, and the
            // metrics say so.
            let blind = try await JanitorBinary.run(
                ["--audit", "--lease-dir", dir.path, "--status-dir", status, "--metrics-file", metrics],
                daemon: nil, runDirectory: cluster.scratch.path + "/no-daemon")
            #expect(blind.status == 1)
            #expect(blind.document?.error?.code?.text == "daemon-unreachable")
            #expect(try String(contentsOfFile: metrics, encoding: .utf8)
                .contains("virt_sanlock_cleanup_audit_last_run_exit_status 1"))

            // An unreadable status file: the audit cannot vouch for that guest.
            try "<domstatus".write(toFile: status + "/broken.xml", atomically: true, encoding: .utf8)
            let unreadable = try await Self.audit(cluster, status: status)
            #expect(unreadable.status == 1 && unreadable.document?.error?.code?.text == "guests-unknown")
        }
    }
}
