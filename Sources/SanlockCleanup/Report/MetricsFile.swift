#if canImport(Glibc)
import Glibc
#endif
import Prometheus
import SystemPackage

/// Metrics for node_exporter's textfile collector: what one run found and
/// did, written atomically so the collector never reads half a file.
public enum MetricsFile {
    static let namespace = "virt_sanlock_cleanup"
    static let prefix = namespace + "_"

    /// The exposition text for a run that completed (`report`) or stopped
    /// (`fatal`). `lastSuccess` is carried over from the previous file when
    /// this run did not succeed.
    public static func render(report: RunReport?, exitStatus: ExitStatus, now: Double, duration: Double,
                              lastSuccess: Double?) -> String {
        let registry = PrometheusCollectorRegistry()
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            // The unit is part of `name` already (…_seconds, …_bytes).
            let descriptor = MetricNameDescriptor(namespace: namespace, metricName: name, unitName: "", helpText: help)
            registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
        }
        let succeeded = exitStatus == .success
        gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).", now)
        gauge("last_run_success", "1 if the last run completed without failures, else 0.", succeeded ? 1 : 0)
        gauge("last_run_exit_status", "Exit status of the last run.", Double(exitStatus.rawValue))
        if let success = succeeded ? now : lastSuccess {
            gauge("last_success_timestamp_seconds", "When a run last completed without failures (Unix time).", success)
        }
        gauge("run_duration_seconds", "Wall time of the last run.", duration)
        guard let report else { return registry.emitToString() }

        let summary = report.summary
        gauge("dry_run", "1 if the last run was a dry run.", report.mode == .dryRun ? 1 : 0)
        gauge("deleted", "Leases deleted by the last run.", Double(summary.deleted))
        gauge("failed", "Deletions that failed in the last run.", Double(summary.failed))
        gauge("reclaimed_bytes", "Bytes freed by the last run.", Double(summary.bytesReclaimed))
        gauge("reclaimable_bytes", "Bytes a dry run would free.", Double(summary.bytesReclaimable))

        var byKind: [String: Int] = [:]
        var byState: [String: Int] = [:]
        var byVerdict: [[String]: Int] = [:]
        for lease in report.leases {
            byKind[lease.entry.kind.code, default: 0] += 1
            if let state = lease.entry.leaseState {
                let name = state.held ? "held" : state.sharedHolders.isEmpty ? "free" : "shared"
                byState[name, default: 0] += 1
            }
            byVerdict[[lease.action.rawValue, lease.reason.code], default: 0] += 1
        }
        for (kind, count) in byKind.sorted(by: { $0.key < $1.key }) {
            gauge("entries", "Entries of the lease directory by kind.", Double(count), [("kind", kind)])
        }
        for state in ["free", "held", "shared"] {
            gauge("leases", "Auto leases by state, as read from disk or sanlock.", Double(byState[state] ?? 0), [("state", state)])
        }
        for (key, count) in byVerdict.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            gauge("verdicts", "Entries by action and reason.", Double(count), [("action", key[0]), ("reason", key[1])])
        }
        return registry.emitToString()
    }

    /// The `last_success_timestamp_seconds` value of an existing file.
    public static func lastSuccess(in path: String) -> Double? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        let name = prefix + "last_success_timestamp_seconds "
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            if text.hasPrefix(name) {
                return Double(String(text.dropFirst(name.count)).trimming("\n").trimming(" "))
            }
        }
        return nil
    }

    /// Writes `text` to a temporary file beside `path`, flushes it to disk and
    /// renames it over `path`.
    public static func write(_ text: String, to path: String) throws(FileSystemError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        // node_exporter reads only *.prom files: the temporary name is not one.
        let temporary = (directory.isEmpty ? "" : directory + "/") + ".\(base).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw FileSystemError(.write, path: temporary, errno: Errno(rawValue: errno)) }
        var bytes = Array(text.utf8)
        var offset = 0
        var failure: Errno?
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                failure = Errno(rawValue: errno)
                break
            }
            offset += count
        }
        bytes.removeAll()
        if failure == nil, fsync(fd) != 0 { failure = Errno(rawValue: errno) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = Errno(rawValue: errno) }
        if let failure {
            unlink(temporary)
            throw FileSystemError(.write, path: path, errno: failure)
        }
    }
}
