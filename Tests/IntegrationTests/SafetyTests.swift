import Foundation
import Testing

/// Everything the janitor must never delete, and the conditions under which
/// it must delete nothing at all.
@Suite("Safety against a real sanlock daemon", .enabled(if: DaemonTestEnvironment.shouldRun))
struct SafetyTests {
    @Test("Entries that are not deletable leases are reported and left untouched")
    func nonLeasesUntouched() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let dir = cluster.leases
            let uninitialised = String(repeating: "0", count: 31) + "1"
            let empty = String(repeating: "0", count: 31) + "2"
            let badChecksum = String(repeating: "0", count: 31) + "3"
            let truncated = String(repeating: "0", count: 31) + "4"
            let wrongName = String(repeating: "0", count: 31) + "5"
            let cleared = String(repeating: "0", count: 31) + "6"
            let junk = String(repeating: "0", count: 31) + "7"
            let hexDirectory = String(repeating: "0", count: 31) + "8"
            let hexSymlink = String(repeating: "0", count: 31) + "9"
            let fifo = String(repeating: "0", count: 31) + "a"
            let upperCase = String(repeating: "A", count: 32)
            let free = String(repeating: "f", count: 32)

            try dir.createZeroFile(uninitialised)
            try dir.createZeroFile(empty, size: 0)
            try await host.createLease(badChecksum, in: dir)
            try flipByte(at: 120, in: dir.path(of: badChecksum))
            try await host.createLease(truncated, in: dir)
            #expect(truncate(dir.path(of: truncated), 8192) == 0)
            // A lease whose leader names another resource than its file name.
            try dir.createZeroFile(wrongName)
            try await host.client(["init", "-r", "__LIBVIRT__DISKS__:\(free.prefix(31))0:\(sanlockEscaped(dir.path(of: wrongName))):0"])
            try await host.createLease(cleared, in: dir)
            try await Command.run(["sanlock", "client", "init", "-z", "1", "-r", dir.resourceSpec(cleared)], environment: host.environment)
            try Data(repeating: 0x5A, count: 1 << 20).write(to: URL(fileURLWithPath: dir.path(of: junk)))
            try FileManager.default.createDirectory(atPath: dir.path(of: hexDirectory), withIntermediateDirectories: false)
            // A symlink with a lease name pointing at a real, free lease
            // outside the directory: neither may be deleted.
            let outside = TestLeaseDirectory(path: cluster.scratch.path + "/elsewhere")
            try FileManager.default.createDirectory(atPath: outside.path, withIntermediateDirectories: false)
            try await host.createLease(hexSymlink, in: outside)
            try FileManager.default.createSymbolicLink(atPath: dir.path(of: hexSymlink), withDestinationPath: outside.path(of: hexSymlink))
            #expect(mkfifo(dir.path(of: fifo), 0o600) == 0)
            try await host.createLease(upperCase, in: dir)
            try dir.createZeroFile("notes.txt", size: 10)
            try await host.createLease(free, in: dir)

            // Within the minimum age, also the uninitialised and invalidated
            // leases stay (past it they are deleted: LeaseDirectoryTests).
            let run = try await JanitorBinary.run(["--lease-dir", dir.path, "--min-age", "1h"], daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            let expected: [(String, String, String)] = [
                (uninitialised, "uninitialised", "too-recent"),
                (empty, "uninitialised", "too-recent"),
                (badChecksum, "corrupt", "corrupt-checksum"),
                (truncated, "corrupt", "corrupt-truncated"),
                (wrongName, "corrupt", "corrupt-names"),
                (cleared, "cleared", "cleared-too-recent"),
                (junk, "corrupt", "not-a-lease"),
                (hexDirectory, "directory", "directory"),
                (hexSymlink, "symlink", "symlink"),
                (fifo, "special", "special-file"),
                (upperCase, "foreign", "foreign-file"),
                ("notes.txt", "foreign", "foreign-file"),
            ]
            for (name, kind, reason) in expected {
                let lease = try run.lease(name)
                #expect(lease.kind?.text == kind, "\(name)")
                #expect(lease.reason?.text == reason, "\(name): \(lease.detail?.text ?? "")")
                #expect(lease.action == "kept", "\(name)")
                #expect(lexists(dir.path(of: name)), "\(name) was removed")
            }
            #expect(try run.lease(free).action == "kept")
            #expect(try run.lease(free).reason == "too-recent")
            let now = try await JanitorBinary.run(["--lease-dir", dir.path, "--min-age", "0"], daemon: host)
            #expect(try now.lease(free).action == "deleted")
            #expect(FileManager.default.fileExists(atPath: outside.path(of: hexSymlink)), "symlink target removed")
            let targetSize = try FileManager.default.attributesOfItem(atPath: outside.path(of: hexSymlink))[.size] as? Int
            #expect(targetSize == 1 << 20)
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: dir.path(of: hexSymlink))
            #expect(target == outside.path(of: hexSymlink))
            #expect(run.document?.summary?.deleted == 0)
            // Past the minimum age: the free lease, the two uninitialised and
            // the invalidated one go; everything else is still there.
            #expect(now.document?.summary?.deleted == 4)
            for (name, kind, _) in expected {
                let gone = [uninitialised, empty, cleared].contains(name)
                #expect(lexists(dir.path(of: name)) == !gone, "\(name) (\(kind))")
                #expect(try now.lease(name).action == (gone ? "deleted" : "kept"), "\(name)")
            }
        }
    }

    @Test("Hostile names are ordinary, also in a lease directory whose path has ':' and spaces")
    func hostileNames() async throws {
        try await withCluster(leaseDirectoryName: "lease dir: a*b c") { cluster in
            let host = cluster.host(1)
            let dir = cluster.leases
            let hostile = ["a:b", "with space", "new\nline", "star*", String(repeating: "x", count: 200),
                           "colon:\(String(repeating: "c", count: 32))", "-rf", "..."]
            for name in hostile { try dir.createZeroFile(name, size: 4096) }
            let free = String(repeating: "1", count: 32)
            let held = String(repeating: "2", count: 32)
            try await host.createLease(free, in: dir)
            try await host.createLease(held, in: dir)
            _ = try await host.hold(held, in: dir)

            let run = try await JanitorBinary.run(["--lease-dir", dir.path], daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            for name in hostile {
                #expect(try run.lease(name).action == "kept", "\(name)")
                #expect(try run.lease(name).reason == "foreign-file", "\(name)")
                #expect(FileManager.default.fileExists(atPath: dir.path(of: name)), "\(name) removed")
            }
            #expect(try run.lease(free).action == "deleted")
            #expect(try run.lease(held).action == "kept")
            #expect(try run.lease(held).reason == "held-by-this-host")
            #expect(FileManager.default.fileExists(atPath: dir.path(of: held)))
            #expect(!FileManager.default.fileExists(atPath: dir.path(of: free)))

            // The text report keeps one line per entry whatever the names hold.
            let text = try await JanitorBinary.run(["--lease-dir", dir.path, "-n"], daemon: host, json: false)
            let lines = text.result.stdout.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
            #expect(lines.count == 1 + (hostile.count + 2) + 1)
            #expect(lines.contains { $0.contains("new\\nline") })
        }
    }

    @Test("Daemon down: a cleaning run deletes nothing and says why; a dry run still reports")
    func daemonDown() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "a", count: 32)
            let held = String(repeating: "b", count: 32)
            try await host.createLease(free, in: cluster.leases)
            try await host.createLease(held, in: cluster.leases)
            _ = try await host.hold(held, in: cluster.leases)
            host.crash()  // leaves `held` owned by host 1 on disk

            let clean = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(clean.status == 1)
            #expect(clean.document?.error?.code == "daemon-unreachable")
            #expect(clean.result.stderr.contains("cannot reach the sanlock daemon"))
            #expect(clean.result.stderr.contains("nothing deleted"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))

            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--dry-run"], daemon: host)
            #expect(dry.status == 0, "\(dry.result.stderr)")
            #expect(try dry.lease(free).action == "would-delete")
            #expect(try dry.lease(free).stateSource == "disk")
            #expect(try dry.lease(held).action == "kept")
            #expect(try dry.lease(held).reason == "held-by-host-unknown-state")
            #expect(try dry.lease(held).ownerHostId == 1)
            #expect(dry.document?.warnings?.strings?.contains { $0.contains("cannot reach the sanlock daemon") } == true)
        }
    }

    @Test("Lockspace not joined on this host: nothing deleted, clear error; dry run reports")
    func lockspaceNotJoined() async throws {
        try await withCluster(hosts: []) { cluster in
            let host = try await cluster.startHost(1, join: false)
            let free = String(repeating: "c", count: 32)
            try await host.createLease(free, in: cluster.leases)
            let clean = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(clean.status == 1)
            #expect(clean.document?.error?.code == "lockspace-not-joined")
            #expect(clean.result.stderr.contains("has not joined the lockspace __LIBVIRT__DISKS__"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: host)
            #expect(dry.status == 0)
            #expect(try dry.lease(free).action == "would-delete")
        }
    }

    @Test("A lockspace joined from another directory is not this directory's")
    func lockspaceJoinedElsewhere() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let other = TestLeaseDirectory(path: cluster.scratch.path + "/copy")
            try FileManager.default.createDirectory(atPath: other.path, withIntermediateDirectories: false)
            try FileManager.default.copyItem(atPath: cluster.leases.lockspacePath, toPath: other.lockspacePath)
            let free = String(repeating: "d", count: 32)
            try await host.createLease(free, in: other)
            let run = try await JanitorBinary.run(["--lease-dir", other.path], daemon: host)
            #expect(run.status == 1)
            #expect(run.document?.error?.code == "lockspace-joined-elsewhere")
            #expect(FileManager.default.fileExists(atPath: other.path(of: free)))
        }
    }

    @Test("A --status-dir that does not exist is an error, not an empty guest list")
    func missingStatusDirectory() async throws {
        try await withCluster { cluster in
            let free = String(repeating: "9", count: 32)
            try await cluster.host(1).createLease(free, in: cluster.leases)
            let typo = cluster.scratch.path + "/run/libvirt/qemuu"
            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", typo], daemon: cluster.host(1))
            #expect(run.status == 1)
            #expect(run.document?.error?.code == "configuration")
            #expect(run.result.stderr.contains("--status-dir \(typo): no such directory"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
        }
    }

    @Test("A missing lease directory is a fatal error naming it")
    func missingLeaseDirectory() async throws {
        try await withCluster { cluster in
            let missing = cluster.scratch.path + "/no-such-dir"
            let run = try await JanitorBinary.run(["--lease-dir", missing], daemon: cluster.host(1))
            #expect(run.status == 1)
            #expect(run.document?.error?.code == "lease-directory")
            #expect(run.result.stderr.contains(missing))
            #expect(run.result.stderr.contains("No such file or directory"))
        }
    }

    @Test("Not root: sanlock refuses the connection; nothing deleted")
    func notRoot() async throws {
        try #require(Command.exists("setpriv"), "setpriv (util-linux) is needed")
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "e", count: 32)
            try await host.createLease(free, in: cluster.leases)
            // Let "nobody" reach the binary and list the directory.
            try await Command.run(["chmod", "o+rx", cluster.scratch.path, cluster.leases.path])
            let result = try await Command.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", JanitorBinary.binary,
                 "--config", "/nonexistent", "--lease-dir", cluster.leases.path],
                environment: host.environment, check: false)
            #expect(result.status == 1)
            #expect(result.stderr.contains("run as root"), "\(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
        }
    }
}

private func lexists(_ path: String) -> Bool {
    var status = stat()
    return lstat(path, &status) == 0
}

private func flipByte(at offset: Int, in path: String) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    let byte = try handle.read(upToCount: 1)?.first ?? 0
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: [byte ^ 0xFF])
}
