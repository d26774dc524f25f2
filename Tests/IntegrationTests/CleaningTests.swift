import Foundation
import Testing

@Suite("Cleaning against a real sanlock daemon", .enabled(if: DaemonTestEnvironment.shouldRun))
struct CleaningTests {
    @Test("Free leases are deleted, held ones kept, the lockspace untouched")
    func freeLeasesDeletedHeldKept() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let names = (1...4).map { String(format: "%032x", $0) }
            for name in names { try await host.createLease(name, in: cluster.leases) }
            // names[1]: held then released (its leader keeps owner 1, lver 1).
            let guest = try await host.hold(names[1], in: cluster.leases)
            try await host.release(guest)
            // names[2]: held by a running "guest" on this host.
            _ = try await host.hold(names[2], in: cluster.leases)

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(names[0]).action == "deleted")
            #expect(try run.lease(names[0]).reason == "never-acquired")
            #expect(try run.lease(names[1]).action == "deleted")
            #expect(try run.lease(names[1]).reason == "released")
            #expect(try run.lease(names[1]).ownerHostId == 1)
            #expect(try run.lease(names[2]).action == "kept")
            #expect(try run.lease(names[2]).reason == "held-by-this-host")
            #expect(try run.lease(names[3]).action == "deleted")
            #expect(try run.lease("__LIBVIRT__DISKS__").reason == "lockspace")
            let remaining = try FileManager.default.contentsOfDirectory(atPath: cluster.leases.path).sorted()
            #expect(remaining == [names[2], "__LIBVIRT__DISKS__"])
            #expect(run.document?.summary?.deleted == 3)
            #expect(run.document?.summary?.bytesReclaimed?.int == 3 << 20)
            #expect(run.document?.hostId == 1)
        }
    }

    @Test("A lease held by another live host is kept, shared or exclusive")
    func otherHostsLeasesKept() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let exclusive = String(repeating: "e", count: 32)
            let shared = String(repeating: "5", count: 32)
            try await cluster.host(2).createLease(exclusive, in: cluster.leases)
            try await cluster.host(2).createLease(shared, in: cluster.leases)
            _ = try await cluster.host(2).hold(exclusive, in: cluster.leases)
            _ = try await cluster.host(2).hold(shared, in: cluster.leases, shared: true)

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: cluster.host(1))
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(exclusive).action == "kept")
            #expect(try run.lease(exclusive).reason == "held-by-live-host")
            #expect(try run.lease(exclusive).ownerHostId == 2)
            #expect(try run.lease(shared).action == "kept")
            #expect(try run.lease(shared).reason == "held-shared")
            #expect(try run.lease(shared).sharedHolders == [2])
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: exclusive)))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: shared)))
        }
    }

    @Test("A dry run decides everything and changes nothing")
    func dryRunChangesNothing() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "f", count: 32)
            let held = String(repeating: "b", count: 32)
            try await host.createLease(free, in: cluster.leases)
            try await host.createLease(held, in: cluster.leases)
            _ = try await host.hold(held, in: cluster.leases)
            let before = try FileManager.default.contentsOfDirectory(atPath: cluster.leases.path).sorted()

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--dry-run"], daemon: host)
            #expect(run.status == 0)
            #expect(run.document?.mode == "dry-run")
            #expect(try run.lease(free).action == "would-delete")
            // From disk: a dry run does not ask the daemon about each lease.
            #expect(try run.lease(free).stateSource == "disk")
            #expect(try run.lease(held).action == "kept")
            #expect(run.document?.summary?.bytesReclaimable?.int == 1 << 20)
            #expect(try FileManager.default.contentsOfDirectory(atPath: cluster.leases.path).sorted() == before)
        }
    }

    @Test("Text report: one line per entry and a summary; -q prints nothing")
    func textAndQuietOutput() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "a", count: 32)
            try await host.createLease(free, in: cluster.leases)
            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: host, json: false)
            #expect(dry.status == 0)
            let lines = dry.result.stdout.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("would-delete") && $0.contains(free) && $0.contains("free, never acquired") })
            #expect(lines.contains { $0.hasPrefix("kept") && $0.contains("__LIBVIRT__DISKS__") })
            #expect(lines.last?.hasPrefix("summary: 2 entries: 1 would be deleted (1.0 MiB), 1 kept, 0 failed") == true)

            let quiet = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-q"], daemon: host, json: false)
            #expect(quiet.status == 0)
            #expect(quiet.result.stdout.isEmpty)
            #expect(quiet.result.stderr.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
        }
    }

    @Test("Several parallel connections delete many leases, each exactly once")
    func parallelJobs() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let names = (1...40).map { String(format: "%032x", $0 * 7919) }
            for name in names { try await host.createLease(name, in: cluster.leases) }
            let held = names[17]
            _ = try await host.hold(held, in: cluster.leases)
            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--jobs", "4"], daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(run.document?.summary?.deleted == 39)
            #expect(try run.lease(held).action == "kept")
            let remaining = try FileManager.default.contentsOfDirectory(atPath: cluster.leases.path).sorted()
            #expect(remaining == [held, "__LIBVIRT__DISKS__"])
        }
    }
}
