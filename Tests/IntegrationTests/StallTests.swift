import Foundation
import Testing

/// A sanlock daemon stuck on its storage accepts connections and never
/// answers (SIGSTOP reproduces it). Every mode must end by itself within its
/// deadline (`--daemon-timeout`), say so, write its JSON error and metrics,
/// and touch no lease; a second run must not queue behind the first.
@Suite("A daemon that does not answer: every mode ends by itself", .enabled(if: DaemonTestEnvironment.shouldRun))
struct StallTests {
    @Test("A stopped daemon: cleaning and --audit exit 1 (daemon-not-answering), a dry run reports from disk; nothing touched")
    func stoppedDaemon() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let lease = String(repeating: "a", count: 32)
            try await host.createLease(lease, in: cluster.leases)
            let before = try Data(contentsOf: URL(fileURLWithPath: cluster.leases.path(of: lease)))
            let metrics = cluster.scratch.path + "/clean.prom", auditMetrics = cluster.scratch.path + "/audit.prom"
            let daemon = try host.daemonPID()
            kill(daemon, SIGSTOP)
            defer { kill(daemon, SIGCONT) }

            let clean = try await JanitorBinary.run(
                ["--lease-dir", cluster.leases.path, "--daemon-timeout", "2s", "--metrics-file", metrics], daemon: host)
            #expect(clean.status == 1, "\(clean.result.stderr)")
            #expect(clean.document?.error?.code == "daemon-not-answering")
            #expect(clean.result.stderr.contains("the sanlock daemon does not answer"), "\(clean.result.stderr)")
            #expect(try String(contentsOfFile: metrics, encoding: .utf8).contains("virt_sanlock_cleanup_last_run_exit_status 1.0"))

            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n", "--daemon-timeout", "2s"], daemon: host)
            #expect(dry.status == 0, "\(dry.result.stderr)")
            #expect(try dry.lease(lease).action == "would-delete")
            #expect(dry.document?.warnings?.strings?.contains { $0.contains("does not answer") } == true)

            let audit = try await JanitorBinary.run(
                ["--lease-dir", cluster.leases.path, "--audit", "--daemon-timeout", "2s", "--metrics-file", auditMetrics],
                daemon: host)
            #expect(audit.status == 1, "\(audit.result.stderr)")
            #expect(audit.document?.error?.code == "daemon-not-answering")
            #expect(try String(contentsOfFile: auditMetrics, encoding: .utf8)
                .contains("virt_sanlock_cleanup_audit_last_run_exit_status 1.0"))

            #expect(try Data(contentsOf: URL(fileURLWithPath: cluster.leases.path(of: lease))) == before)
        }
    }

    @Test("A daemon that stops answering during the deletions: the run ends within the deadline, nothing left invalidated")
    func stallDuringDeletions() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let leases = (0..<120).map { String(format: "%032x", 0xd000 + $0) }
            for lease in leases { try await host.createLease(lease, in: cluster.leases) }
            let daemon = try host.daemonPID()
            defer { kill(daemon, SIGCONT) }
            let run = try BackgroundJanitor.start(
                JanitorBinary.commandLine(["--jobs", "2", "--lease-dir", cluster.leases.path, "--format", "json", "--daemon-timeout", "2s"]),
                environment: host.environment, in: cluster.scratch.path)
            try await waitUntil("a first deletion") {
                leases.contains { !FileManager.default.fileExists(atPath: cluster.leases.path(of: $0)) }
            }
            kill(daemon, SIGSTOP)
            try await waitUntil("the run to end by itself") { !run.process.isRunning }
            #expect(run.process.terminationStatus == 2, "\((try? String(contentsOfFile: run.stderr, encoding: .utf8)) ?? "")")
            let document = try JSONValue(parsing: String(contentsOfFile: run.stdout, encoding: .utf8))
            let reported = (document.leases?.elements ?? []).filter { leases.contains($0.name?.text ?? "") }
            let deleted = Set(reported.filter { $0.action == "deleted" }.compactMap { $0.name?.text })
            let unanswered = reported.filter { $0.reason == "daemon-not-answering" }
            #expect(!deleted.isEmpty && !unanswered.isEmpty, "deleted \(deleted.count), not answered \(unanswered.count)")
            #expect(deleted.count + unanswered.count == leases.count)
            kill(daemon, SIGCONT)
            for lease in leases where !deleted.contains(lease) {
                #expect(try leaderOnDisk(cluster.leases.path(of: lease)).isPaxosLeader, "\(lease) left invalidated")
            }
        }
    }

    /// The run lock is taken before the daemon is asked anything: no clock
    /// is needed, since the first run waits for the stopped daemon until the
    /// test lets it go on, so the second could only have exited while the
    /// first was waiting.
    @Test("While a run waits for a stopped daemon, a second exits 3 naming it; the first finishes once the daemon goes on")
    func secondRunDoesNotQueue() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let lease = String(repeating: "b", count: 32)
            try await host.createLease(lease, in: cluster.leases)
            let daemon = try host.daemonPID()
            kill(daemon, SIGSTOP)
            var resumed = false
            defer { if !resumed { kill(daemon, SIGCONT) } }
            let first = try BackgroundJanitor.start(
                JanitorBinary.commandLine(["--lease-dir", cluster.leases.path, "--format", "json", "--daemon-timeout", "10m"]),
                environment: host.environment, in: cluster.scratch.path)
            let pid = first.process.processIdentifier
            try await waitUntil("the first run to hold its run lock") {
                let locks = (try? FileManager.default.contentsOfDirectory(atPath: "/run/virt-sanlock-cleanup")) ?? []
                return locks.contains { name in
                    (try? String(contentsOfFile: "/run/virt-sanlock-cleanup/" + name, encoding: .utf8)) == "pid \(pid)\n"
                }
            }
            let second = try await JanitorBinary.run(["--lease-dir", cluster.leases.path], daemon: host)
            #expect(second.status == 3)
            #expect(second.result.stderr.contains("(pid \(pid))"), "\(second.result.stderr)")
            #expect(first.process.isRunning)

            kill(daemon, SIGCONT)
            resumed = true
            try await waitUntil("the first run to finish") { !first.process.isRunning }
            #expect(first.process.terminationStatus == 0, "\((try? String(contentsOfFile: first.stderr, encoding: .utf8)) ?? "")")
            #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
        }
    }

    @Test("A daemon that stalls for less than the deadline only delays the run")
    func shortStall() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let leases = (1...3).map { String(format: "%032x", 0xc00 + $0) }
            for lease in leases { try await host.createLease(lease, in: cluster.leases) }
            let daemon = try host.daemonPID()
            kill(daemon, SIGSTOP)
            let run = try BackgroundJanitor.start(
                JanitorBinary.commandLine(["--lease-dir", cluster.leases.path, "--format", "json", "--daemon-timeout", "10m"]),
                environment: host.environment, in: cluster.scratch.path)
            try await Task.sleep(for: .seconds(1))
            kill(daemon, SIGCONT)
            try await waitUntil("the run to finish") { !run.process.isRunning }
            #expect(run.process.terminationStatus == 0, "\((try? String(contentsOfFile: run.stderr, encoding: .utf8)) ?? "")")
            for lease in leases { #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: lease))) }
        }
    }

    @Test("A socket that takes connections and never answers, or answers garbage: every mode ends, nothing is touched",
          arguments: FakeDaemon.Behaviour.allCases)
    func fakeDaemon(_ behaviour: FakeDaemon.Behaviour) async throws {
        let scratch = try ScratchDirectory(prefix: "vsc-fake")
        defer { scratch.remove() }
        let leases = TestLeaseDirectory(path: scratch.path + "/leases")
        try FileManager.default.createDirectory(atPath: leases.path, withIntermediateDirectories: true)
        // A lease as libvirt's zero-filled start: old enough to be removed
        // by a run that believed it could.
        let lease = String(repeating: "c", count: 32)
        try leases.createZeroFile(lease)
        try await Command.run(["touch", "-d", "2 hours ago", leases.path(of: lease)])
        let fake = try await FakeDaemon.start(in: scratch.path + "/run", behaviour: behaviour)
        defer { kill(fake.process.processIdentifier, SIGKILL) }

        for mode in [["--min-age", "1h"], ["-n", "--min-age", "1h"], ["--audit"]] {
            let run = try await JanitorBinary.run(
                ["--lease-dir", leases.path, "--daemon-timeout", "2s"] + mode,
                daemon: nil, runDirectory: fake.runDirectory)
            let code = run.document?.error?.code?.text
            if mode.contains("-n") {
                #expect(run.status == 0, "\(behaviour) \(mode): \(run.result.stderr)")
            } else {
                #expect(run.status == 1, "\(behaviour) \(mode): \(run.result.stderr)")
                // A reply that makes no sense reads as a refusal (-1, the
                // code libsanlock_client gives for a short reply, is EPERM).
                let expected: Set<String> = behaviour == .silent
                    ? ["daemon-not-answering"] : ["daemon-unreachable", "permission-denied"]
                #expect(code.map(expected.contains) == true, "\(behaviour) \(mode): \(String(describing: code))")
            }
            #expect(FileManager.default.fileExists(atPath: leases.path(of: lease)), "\(behaviour) \(mode)")
        }
    }
}

/// A stand-in for a broken sanlock daemon: a Unix socket at the daemon's
/// address that takes every connection and then never answers (`silent`),
/// or answers 64 bytes and hangs up: 0xff (every field -1: `garbage`), or
/// 0x02000000 words (every field 2: `plausible`, which passes for a version
/// and fails later).
struct FakeDaemon {
    enum Behaviour: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case silent, garbage, plausible
        var testDescription: String { rawValue }
    }

    let runDirectory: String
    let process: Process

    static func start(in runDirectory: String, behaviour: Behaviour) async throws -> FakeDaemon {
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        let socket = runDirectory + "/sanlock.sock"
        let process = try Command.start(["python3", "-c", """
            import socket, sys
            path, behaviour = sys.argv[1], sys.argv[2]
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path)
            server.listen(128)
            open(path + ".ready", "w").close()
            held = []
            while True:
                connection, _ = server.accept()
                if behaviour == "silent":
                    held.append(connection)
                else:
                    connection.recv(65536)
                    connection.sendall(b"\\xff" * 64 if behaviour == "garbage" else b"\\x02\\x00\\x00\\x00" * 16)
                    connection.close()
            """, socket, behaviour.rawValue])
        try await waitUntil("the fake daemon's socket") { FileManager.default.fileExists(atPath: socket + ".ready") }
        return FakeDaemon(runDirectory: runDirectory, process: process)
    }
}
