import Foundation
import TestFixtures
import Testing

/// What monitoring and scripts read: metrics through a real Prometheus
/// text-format parser, JSON against its published schema, journal lines.
@Suite("Operations: metrics, JSON schema, journal output", .enabled(if: DaemonTestEnvironment.shouldRun))
struct OperationsTests {
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Runs a Python snippet with `arguments` in sys.argv[1...].
    static func python(_ script: String, _ arguments: [String]) async throws -> CommandResult {
        try await Command.run(["python3", "-c", script] + arguments, check: false)
    }

    @Test("--metrics-file: node_exporter text format, parsed by prometheus_client, matches the run")
    func metricsFile() async throws {
        try await withCluster(hosts: [1, 2]) { cluster in
            let host = cluster.host(1)
            let names = (1...5).map { String(format: "%032x", 0x5e0 + $0) }
            for name in names { try await host.createLease(name, in: cluster.leases) }
            _ = try await host.hold(names[0], in: cluster.leases)
            _ = try await cluster.host(2).hold(names[1], in: cluster.leases, shared: true)
            let metrics = cluster.scratch.path + "/textfile/virt-sanlock-cleanup.prom"
            try FileManager.default.createDirectory(atPath: cluster.scratch.path + "/textfile", withIntermediateDirectories: true)
            let before = Date().timeIntervalSince1970

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--metrics-file", metrics], daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            let parsed = try await Self.python("""
                import json, sys
                from prometheus_client.parser import text_string_to_metric_families
                samples = {}
                for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                    assert family.type == "gauge", family
                    for s in family.samples:
                        samples[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
                print(json.dumps(samples))
                """, [metrics])
            #expect(parsed.succeeded, "\(parsed.stderr)")
            let samples = try JSONDecoder().decode([String: Double].self, from: Data(parsed.stdout.utf8))
            let summary = try #require(run.document?.summary)
            #expect(samples["virt_sanlock_cleanup_deleted{}"] == summary.deleted?.int.map(Double.init))
            #expect(summary.deleted == 3)
            #expect(samples["virt_sanlock_cleanup_failed{}"] == 0)
            #expect(samples["virt_sanlock_cleanup_reclaimed_bytes{}"] == Double(3 << 20))
            #expect(samples["virt_sanlock_cleanup_last_run_success{}"] == 1)
            #expect(samples[#"virt_sanlock_cleanup_leases{"state": "held"}"#] == 1)
            #expect(samples[#"virt_sanlock_cleanup_leases{"state": "shared"}"#] == 1)
            #expect(samples[#"virt_sanlock_cleanup_leases{"state": "free"}"#] == 3)
            #expect(samples[#"virt_sanlock_cleanup_verdicts{"action": "deleted", "reason": "never-acquired"}"#] == 3)
            #expect(samples[#"virt_sanlock_cleanup_verdicts{"action": "kept", "reason": "held-shared"}"#] == 1)
            let success = try #require(samples["virt_sanlock_cleanup_last_success_timestamp_seconds{}"])
            #expect(success >= before && success <= Date().timeIntervalSince1970 + 1)
            #expect(try #require(samples["virt_sanlock_cleanup_run_duration_seconds{}"]) > 0)

            // A failed run keeps the last success and says it failed.
            let failed = try await JanitorBinary.run(["--lease-dir", cluster.scratch.path + "/missing", "--metrics-file", metrics], daemon: host)
            #expect(failed.status == 1)
            let after = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(after.contains("virt_sanlock_cleanup_last_run_success 0.0"))
            #expect(after.contains("virt_sanlock_cleanup_last_success_timestamp_seconds \(String(format: "%.1f", success))")
                    || after.contains("virt_sanlock_cleanup_last_success_timestamp_seconds \(success)"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: cluster.scratch.path + "/textfile")
            #expect(leftovers == ["virt-sanlock-cleanup.prom"], "temporary files left: \(leftovers)")
        }
    }

    @Test("JSON output validates against the published schema, for a run and for a fatal error")
    func jsonSchema() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "a", count: 32)
            let held = String(repeating: "b", count: 32)
            for name in [free, held] { try await host.createLease(name, in: cluster.leases) }
            _ = try await host.hold(held, in: cluster.leases)
            try cluster.leases.createZeroFile(String(repeating: "c", count: 32))
            try cluster.leases.createZeroFile("notes.txt", size: 5)
            try FileManager.default.createSymbolicLink(atPath: cluster.leases.path(of: String(repeating: "d", count: 32)), withDestinationPath: "/etc/hostname")
            let status = cluster.scratch.path + "/status"
            try TestGuest(name: "web1", state: "paused", pid: getpid(), disks: [.init(path: "/images/web1.qcow2")]).writeStatus(in: status)

            // JanitorBinary.run checks every document against the schema as it
            // reads it: a dry run, one keeping recent leases, a cleaning run and
            // a fatal error.
            let runs = [
                try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status, "-n"], daemon: host),
                try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status, "--min-age", "1h"], daemon: host),
                try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status], daemon: host),
                try await JanitorBinary.run(["--lease-dir", cluster.scratch.path + "/missing"], daemon: host),
            ]
            #expect(runs.allSatisfy { $0.document != nil })
            // The validator itself refuses what the schema forbids.
            let invalid = try await ReportSchema.validate([#"{"schema_version": 1, "mode": "sideways"}"#])
            #expect(!invalid.succeeded)
            #expect(runs[3].document?.error?.code == "lease-directory")
        }
    }

    @Test("Under systemd (JOURNAL_STREAM names stderr) each action is one line with its priority")
    func journalLines() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "e", count: 32)
            let held = String(repeating: "f", count: 32)
            for name in [free, held] { try await host.createLease(name, in: cluster.leases) }
            _ = try await host.hold(held, in: cluster.leases)
            // The janitor's stderr will be this file: tell it that is the journal.
            let stderrPath = cluster.scratch.path + "/journal"
            let script = "exec 2>\"$1\"; shift; exec \"$@\""
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            var status = stat()
            #expect(stat(stderrPath, &status) == 0)
            let result = try await Command.run(
                ["sh", "-c", script, "sh", stderrPath, JanitorBinary.binary, "--config", "/nonexistent", "--status-dir", JanitorBinary.noGuests,
                 "--config-dir", "/nonexistent", "--min-age", "0", "--lease-dir", cluster.leases.path],
                environment: host.environment.merging(["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"]) { $1 },
                check: false)
            #expect(result.status == 0)
            #expect(result.stdout.isEmpty, "the report went to the journal, not stdout")
            let lines = try String(contentsOfFile: stderrPath, encoding: .utf8).split(separator: "\n").map(String.init)
            // The sentence for people, then what was decided as key=value for grep.
            #expect(lines.contains("<5>deleted \(free): free, never acquired; unknown disk action=deleted reason=never-acquired"))
            #expect(lines.contains { $0.hasPrefix("<6>kept \(held): held by this host; unknown disk; host 1 is host1, ")
                && $0.hasSuffix(" action=kept host_id=1 reason=held-by-this-host") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("<6>kept __LIBVIRT__DISKS__") })
            #expect(lines.last?.hasPrefix("<5>summary: 3 entries: 1 deleted") == true)
            #expect(lines.allSatisfy { $0.hasPrefix("<") }, "\(lines)")
        }
    }
}
