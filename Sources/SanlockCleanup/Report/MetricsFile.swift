import SystemCalls
import SystemPackage

/// Metrics for node_exporter's textfile collector: what one run found and
/// did, written atomically so the collector never reads half a file.
public enum MetricsFile {
    static let namespace = "virt_sanlock_cleanup"
    static let prefix = namespace + "_"

    /// The exposition text for a run that completed (`report`) or stopped
    /// (`fatal`), which ended with the process exit code `exitCode` (128 + N
    /// after signal N). `lastSuccess` is carried over from the previous file
    /// when this run did not succeed.
    public static func render(report: RunReport?, exitCode: Int32, now: Double, duration: Double,
                              lastSuccess: Double?) -> String {
        var gauge = Gauges()
        let succeeded = exitCode == ExitStatus.success.rawValue
        gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).", now)
        gauge("last_run_success", "1 if the last run completed without failures, else 0.", succeeded ? 1 : 0)
        gauge("last_run_exit_status", "Exit status of the last run.", Double(exitCode))
        if let success = succeeded ? now : lastSuccess {
            gauge("last_success_timestamp_seconds", "When a run last completed without failures (Unix time).", success)
        }
        gauge("run_duration_seconds", "Wall time of the last run.", duration)
        guard let report else { return gauge.text }

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
        return gauge.text
    }

    /// Gauges in Prometheus's text exposition format (0.0.4), as node_exporter
    /// reads it: `gauge(name, help, value, labels)`, the unit already in the
    /// name (…_seconds, …_bytes); each metric's `# HELP` and `# TYPE` lines
    /// once, before its samples, the metrics in the order first set. The
    /// lines swift-prometheus's registry wrote (values as Swift prints a
    /// Double, "1.0"), without its 0.17 MB of code, swift-metrics' and
    /// swift-atomics' (a registry shared by threads, which one file written
    /// once does not need), and in a fixed order instead of a dictionary's.
    struct Gauges {
        private var metrics: [(name: String, help: String, samples: [String])] = []

        mutating func callAsFunction(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            let name = prefix + name
            var sample = name
            if !labels.isEmpty {
                sample += "{" + labels.map { "\($0)=\"\(Self.escaped($1, quote: true))\"" }.joined(separator: ",") + "}"
            }
            sample += " \(value)"
            if let index = metrics.firstIndex(where: { $0.name == name }) {
                metrics[index].samples.append(sample)
            } else {
                metrics.append((name, help, [sample]))
            }
        }

        var text: String {
            metrics.map { metric in
                "# HELP \(metric.name) \(Self.escaped(metric.help, quote: false))\n# TYPE \(metric.name) gauge\n"
                    + metric.samples.map { $0 + "\n" }.joined()
            }.joined()
        }

        /// The format's escapes: backslash and line feed, and in label values
        /// the double quote.
        static func escaped(_ text: String, quote: Bool) -> String {
            var result = ""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\\": result += "\\\\"
                case "\n": result += "\\n"
                case "\"" where quote: result += "\\\""
                default: result.unicodeScalars.append(scalar)
                }
            }
            return result
        }
    }

    /// The exposition text of an audit (`report` nil when it could not
    /// run): its own series, so that an audit and a cleaning run may share
    /// nothing but the prefix (write them to different files).
    public static func renderAudit(report: AuditReport?, exitCode: Int32, now: Double) -> String {
        var gauge = Gauges()
        gauge("audit_last_run_timestamp_seconds", "When the last audit ended (Unix time).", now)
        gauge("audit_last_run_exit_status", "Exit status of the last audit: 0 all protected, 4 unprotected disks, 1 could not audit.",
              Double(exitCode))
        guard let report else { return gauge.text }
        for (protection, count) in report.countsByProtection {
            gauge("audit_disks", "Disks of running and paused guests by lease protection.", Double(count),
                  [("protection", protection.rawValue)])
        }
        gauge("audit_unaccounted_leases", "Leases this host holds that no active guest accounts for.",
              Double(report.unaccountedLeases.count))
        return gauge.text
    }

    /// The `last_success_timestamp_seconds` value of an existing file. The
    /// file sits in a directory other programs write: it is opened without
    /// following a symlink or blocking on a FIFO, read only when it is a
    /// regular file, at most 1 MiB of it, and a value that is not a plausible
    /// time is ignored.
    public static func lastSuccess(in path: String) -> Double? {
        guard let bytes = try? BoundedFile.readPrefix(path: path.utf8, limit: 1 << 20) else { return nil }
        let name = prefix + "last_success_timestamp_seconds "
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name) {
            guard let value = Double(line.dropFirst(name.count).trimmingCharacters(" ")),
                  value.isFinite, value > 0, value < 253_402_300_800 else { return nil }
            return value
        }
        return nil
    }

    /// Writes `text` to a new temporary file beside `path`, flushes it to disk
    /// and renames it over `path`. The temporary file is created exclusively
    /// (`O_EXCL`: never opened through a symlink, a FIFO or another file's
    /// hard link, never truncating anything); the rename replaces the name
    /// `path`, never writing through what it pointed at.
    public static func write(_ text: String, to path: String) throws(FileSystemError) {
        // The directory part keeps its slash ("/m.prom" → "/"), "" without one.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        // node_exporter reads only *.prom files: the temporary name is not one.
        let temporary = directory + ".\(base).\(Syscall.processID()).tmp"
        let options: FileDescriptor.OpenOptions = [.create, .exclusiveCreate, .noFollow, .nonBlocking,
                                                   .noControllingTerminal, .closeOnExec]
        func create() throws(SystemCallError) -> FileDescriptor {
            try .open(path: temporary.utf8, .writeOnly, options: options, permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
        let fd: FileDescriptor
        do throws(SystemCallError) {
            do throws(SystemCallError) {
                fd = try create()
            } catch where error.errno == .fileExists {
                // Left by a killed run that had our pid: removing a name never
                // touches what it names.
                try? Syscall.unlink(path: temporary.utf8)
                fd = try create()
            }
        } catch {
            throw FileSystemError(.write, path: temporary, cause: error)
        }
        var failure: SystemCallError?
        do throws(SystemCallError) {
            try fd.writeFully(text.utf8)
            try fd.synchronize()
        } catch {
            failure = error
        }
        do throws(SystemCallError) {
            try fd.closeReportingErrors()
        } catch where error.errno != .interrupted {
            failure = failure ?? error
        } catch {}
        if failure == nil {
            do throws(SystemCallError) {
                try Syscall.rename(fromPath: temporary.utf8, toPath: path.utf8)
            } catch {
                failure = error
            }
        }
        if let failure {
            try? Syscall.unlink(path: temporary.utf8)
            throw FileSystemError(.write, path: path, cause: failure)
        }
        removeStaleTemporaries(in: directory.isEmpty ? "." : directory, base: base)
    }

    /// Removes temporary files of earlier runs that were killed between
    /// writing and renaming (`.BASE.PID.tmp` whose process is gone).
    static func removeStaleTemporaries(in directory: String, base: String) {
        guard let stream = try? DirectoryStream(path: directory.utf8) else { return }
        let prefix = ".\(base)."
        while let bytes = try? stream.nextName() {
            let name = String(decoding: bytes, as: UTF8.self)
            guard name.hasPrefix(prefix), name.hasSuffix(".tmp") else { continue }
            let middle = name.dropFirst(prefix.count).dropLast(4)
            guard let pid = Int32(middle), pid > 0, pid != Syscall.processID(), !ProcessLiveness.isAlive(pid) else { continue }
            try? stream.descriptor.unlink(entry: bytes)
        }
    }
}

extension Substring {
    func trimmingCharacters(_ character: Character) -> String {
        String(self).trimming(character)
    }
}
