import Foundation
@testable import Sanlock
import Testing

/// Faults a run must survive without breaking a guest, stopping or hanging:
/// a reader that goes away, a kill between invalidating and unlinking a
/// lease, hostile files in the shared directory, a signal while blocked.
/// Each test failed on the code before its fix.
@Suite("Faults: dying readers, kills, hostile files, signals", .enabled(if: DaemonTestEnvironment.shouldRun))
struct FaultTests {
    /// Names for `count` leases that sort in creation order.
    static func names(_ count: Int, prefix: String = "c") -> [String] {
        (0..<count).map { prefix + String(format: "%031x", $0) }
    }

    @Test("A reader that goes away (| head) does not stop a cleaning run halfway: no SIGPIPE, nothing left invalidated")
    func closedStdoutAndStderr() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let leases = Self.names(40)
            for lease in leases { try await host.createLease(lease, in: cluster.leases) }
            let metrics = cluster.scratch.path + "/metrics.prom"
            // stdout and stderr are a pipe nobody reads (as `2>&1 | head`
            // once head has exited): every write fails with EPIPE. Before the
            // fix the first one killed the run (status 141).
            let status = try await Command.runWithClosedOutput(
                JanitorBinary.commandLine(["-v", "--lease-dir", cluster.leases.path, "--metrics-file", metrics]),
                environment: host.environment)
            #expect(status == 0)
            for lease in leases {
                #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)), "\(lease) left behind")
            }
            let text = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(text.contains("virt_sanlock_cleanup_deleted 40.0"))
            #expect(text.contains("virt_sanlock_cleanup_last_run_success 1.0"))
        }
    }

    @Test("A run killed between invalidating and unlinking: the next run of the same host removes the lease at once")
    func killedBetweenInvalidateAndUnlink() async throws {
        try #require(Command.exists("strace"), "strace is needed")
        try await withCluster(hosts: [1, 2]) { cluster in
            let mine = String(repeating: "1", count: 32)
            let theirs = String(repeating: "2", count: 32)
            try await cluster.host(1).createLease(mine, in: cluster.leases)
            try await cluster.host(1).createLease(theirs, in: cluster.leases)
            try await Command.run(["touch", "-d", "2 hours ago", cluster.leases.path(of: mine), cluster.leases.path(of: theirs)])
            // SIGKILL at the janitor's first unlinkat in the lease directory
            // (-P: relative to its descriptor): the leader is already
            // invalidated (written with O_DIRECT|O_SYNC), the file is still
            // there. Host 1 takes "111…" (first in name order); then host 2
            // keeps "111…" (invalidated a moment ago by host 1) and takes "222…".
            for (host, lease) in [(1, mine), (2, theirs)] {
                let killed = try await Command.run(
                    ["strace", "-f", "-qq", "-o", "/dev/null", "-P", cluster.leases.path,
                     "-e", "trace=unlinkat", "-e", "inject=unlinkat:signal=KILL:when=1"]
                        + JanitorBinary.commandLine(["--min-age", "1h", "--jobs", "1", "--lease-dir", cluster.leases.path, "--format", "json"]),
                    environment: cluster.host(host).environment, check: false)
                #expect(killed.status == 128 + SIGKILL, "\(killed.stderr)")
                let leader = try leaderOnDisk(cluster.leases.path(of: lease))
                #expect(leader.isCleared && leader.ownerID == UInt64(host) && leader.isHeld)
            }
            // Host 1, default minimum age (1 h): its own leftover goes now;
            // host 2's is named for what it is, with the remedy.
            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--min-age", "1h", "-n"], daemon: cluster.host(1))
            #expect(try dry.lease(mine).action == "would-delete")
            #expect(try dry.lease(mine).reason == "cleared-by-this-host")
            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--min-age", "1h"], daemon: cluster.host(1))
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(mine).action == "deleted")
            #expect(try run.lease(mine).reason == "cleared-by-this-host")
            #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: mine)))
            let kept = try run.lease(theirs)
            #expect(kept.action == "kept")
            #expect(kept.reason == "cleared-too-recent")
            #expect(kept.ownerHostId == 2)
            #expect(kept.detail?.text?.contains("host 2's next run of virt-sanlock-cleanup removes it") == true, "\(String(describing: kept.detail))")
            // Host 2's next run removes its own.
            let second = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--min-age", "1h"], daemon: cluster.host(2))
            #expect(try second.lease(theirs).action == "deleted")
            #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: theirs)))
        }
    }

    @Test("A lease file with a huge num_hosts stops no run, dry or cleaning, with or without a lockspace file")
    func hugeNumHosts() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let hostile = String(repeating: "e", count: 32)
            let free = String(repeating: "f", count: 32)
            try await host.createLease(hostile, in: cluster.leases)
            try await host.createLease(free, in: cluster.leases)
            try patchLeader(cluster.leases.path(of: hostile)) { leader in
                LeaseBytes.write(UInt64.max, at: 16, in: &leader)  // num_hosts
            }
            for arguments in [["-n"], []] {
                let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path] + arguments, daemon: host)
                // Before the fix: status 132 (a trap) for both.
                #expect(run.status == 0, "\(arguments): \(run.result.stderr)")
                #expect(try run.lease(hostile).reason == "corrupt-out-of-range")
                #expect(try run.lease(hostile).action == "kept")
            }
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: hostile)))
            #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
            // Without a lockspace file the classifier probes every host id up
            // to num_hosts: that array must not be sized from the file either.
            try FileManager.default.moveItem(atPath: cluster.leases.lockspacePath, toPath: cluster.scratch.path + "/lockspace.saved")
            let noLockspace = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: nil)
            #expect(noLockspace.status == 0, "\(noLockspace.result.stderr)")
            #expect(try noLockspace.lease(hostile).reason == "corrupt-out-of-range")
            try FileManager.default.moveItem(atPath: cluster.scratch.path + "/lockspace.saved", toPath: cluster.leases.lockspacePath)
        }
    }

    @Test("A lease file with another name outside the directory is never written or removed")
    func hardLinkedLease() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let lease = String(repeating: "a", count: 32)
            try await host.createLease(lease, in: cluster.leases)
            let outside = cluster.scratch.path + "/outside-" + lease
            #expect(link(cluster.leases.path(of: lease), outside) == 0)
            let before = try Data(contentsOf: URL(fileURLWithPath: outside))
            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(lease).action == "kept")
            #expect(try run.lease(lease).reason == "hard-linked")
            #expect(try Data(contentsOf: URL(fileURLWithPath: outside)) == before)
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
        }
    }

    @Test("SIGTERM during deletions: the lease in hand is finished, the rest kept as interrupted, nothing left invalidated")
    func sigtermDuringDeletions() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let leases = Self.names(150)
            for lease in leases { try await host.createLease(lease, in: cluster.leases) }
            let metrics = cluster.scratch.path + "/metrics.prom"
            let run = try BackgroundJanitor.start(
                JanitorBinary.commandLine(["--jobs", "1", "--lease-dir", cluster.leases.path, "--format", "json", "--metrics-file", metrics]),
                environment: host.environment, in: cluster.scratch.path)
            // Once the first lease is gone, deletions are under way. The run
            // is frozen there (SIGSTOP) and signalled while frozen, so that
            // the signal lands mid-run however slowly this test is scheduled
            // on a loaded machine: no race between the poll and the run.
            try await waitUntil("a first deletion") {
                !FileManager.default.fileExists(atPath: cluster.leases.path(of: leases[0]))
            }
            kill(run.process.processIdentifier, SIGSTOP)
            let left = leases.filter { FileManager.default.fileExists(atPath: cluster.leases.path(of: $0)) }
            try #require(!left.isEmpty && run.process.isRunning, "the run ended before it could be signalled")
            kill(run.process.processIdentifier, SIGTERM)
            kill(run.process.processIdentifier, SIGCONT)
            try await waitUntil("the janitor to exit after SIGTERM") { !run.process.isRunning }
            #expect(run.process.terminationReason == .exit && run.process.terminationStatus == 143)
            let document = try JSONValue(parsing: String(contentsOfFile: run.stdout, encoding: .utf8))
            let leasesReported = document.leases?.elements ?? []
            let deleted = Set(leasesReported.filter { $0.action == "deleted" }.compactMap { $0.name?.text })
            let interrupted = leasesReported.filter { $0.reason == "interrupted" }
            #expect(!deleted.isEmpty && !interrupted.isEmpty, "deleted \(deleted.count), interrupted \(interrupted.count)")
            #expect(deleted.count + interrupted.count == leases.count)
            for lease in leases {
                let present = FileManager.default.fileExists(atPath: cluster.leases.path(of: lease))
                #expect(present != deleted.contains(lease), "\(lease)")
                if present { #expect(try leaderOnDisk(cluster.leases.path(of: lease)).isPaxosLeader, "\(lease) left invalidated") }
            }
            #expect(try String(contentsOfFile: metrics, encoding: .utf8).contains("virt_sanlock_cleanup_last_run_exit_status 143.0"))
        }
    }

    @Test("SIGTERM while the sanlock daemon does not answer ends the run, touching nothing")
    func sigtermWhileBlocked() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let lease = String(repeating: "b", count: 32)
            try await host.createLease(lease, in: cluster.leases)
            let before = try Data(contentsOf: URL(fileURLWithPath: cluster.leases.path(of: lease)))
            let daemon = try host.daemonPID()
            kill(daemon, SIGSTOP)
            defer { kill(daemon, SIGCONT) }
            let run = try BackgroundJanitor.start(
                JanitorBinary.commandLine(["--lease-dir", cluster.leases.path, "--format", "json"]),
                environment: host.environment, in: cluster.scratch.path)
            try await Task.sleep(for: .seconds(1))
            #expect(run.process.isRunning, "the run did not block on the stopped daemon")
            kill(run.process.processIdentifier, SIGTERM)
            // Before the fix it never ended (the signal was only recorded).
            // The wait's bound is a hang guard, not a speed goal: what shows
            // that the signal ended the run is its exit status 143 and the
            // error `interrupted`, which no other way out gives.
            try await waitUntil("the janitor to exit after SIGTERM") { !run.process.isRunning }
            #expect(run.process.terminationReason == .exit && run.process.terminationStatus == 143)
            let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.stdout))) as? [String: Any]
            #expect((document?["error"] as? [String: Any])?["code"] as? String == "interrupted", "\(String(describing: document))")
            #expect(try Data(contentsOf: URL(fileURLWithPath: cluster.leases.path(of: lease))) == before)
        }
    }
}

/// A janitor started in the background, its stdout and stderr in files.
struct BackgroundJanitor {
    let process: Process
    let stdout: String
    let stderr: String

    static func start(_ arguments: [String], environment: [String: String], in directory: String) throws -> BackgroundJanitor {
        let stdout = directory + "/janitor-\(UUID().uuidString).out"
        let stderr = stdout + ".err"
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        try process.run()
        return BackgroundJanitor(process: process, stdout: stdout, stderr: stderr)
    }
}

extension TestSanlockDaemon {
    /// The daemon's own pid (from its pid file).
    func daemonPID() throws -> pid_t {
        let text = try String(contentsOfFile: runDirectory + "/sanlock.pid", encoding: .utf8)
        return try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}

extension Command {
    /// Runs a command whose stdout and stderr are a pipe whose reading end
    /// is already closed, as for `cmd 2>&1 | head` once head has exited.
    /// Returns the exit status, or 128 + N when signal N killed it.
    static func runWithClosedOutput(_ arguments: [String], environment: [String: String]) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try resolve(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in
                let status = process.terminationStatus
                continuation.resume(returning: process.terminationReason == .uncaughtSignal ? 128 + status : status)
            }
            do {
                try process.run()
                try pipe.fileHandleForWriting.close()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
    }
}

/// Little-endian field writes into a leader sector, with sanlock's checksum.
enum LeaseBytes {
    static func write<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
        }
    }

    static func resealChecksum(_ bytes: inout [UInt8]) {
        let checksum = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<168])) }
        write(checksum, at: 168, in: &bytes)
    }
}

/// Rewrites a lease's leader sector in place (with a valid checksum), as a
/// host's root could.
func patchLeader(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    var sector = Array(try handle.read(upToCount: 512) ?? Data())
    change(&sector)
    LeaseBytes.resealChecksum(&sector)
    try handle.seek(toOffset: 0)
    try handle.write(contentsOf: sector)
}

func leaderOnDisk(_ path: String) throws -> LeaderRecord {
    let data = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(512)
    return try #require(data.withUnsafeBytes { LeaderRecord(sector: $0) })
}
