import Logging

/// The report for people: one line per entry with its verdict and reason,
/// then a summary.
public enum TextReport {
    /// The report as log lines for the journal: one per action, at the
    /// priority it deserves (deleted: notice, failed: error, kept: info).
    public static func journalLines(_ report: RunReport) -> [(level: Logger.Level, text: String, metadata: Logger.Metadata)] {
        var lines: [(level: Logger.Level, text: String, metadata: Logger.Metadata)] = report.leases.map { lease in
            let level: Logger.Level = switch lease.action {
            case .deleted: .notice
            case .failed: .error
            case .kept, .wouldDelete: .info
            }
            var metadata: Logger.Metadata = ["action": "\(lease.action.rawValue)", "reason": "\(lease.reason.code)"]
            if let host = lease.ownerHostID { metadata["host_id"] = "\(host)" }
            return (level, "\(lease.action.rawValue) \(lease.entry.name.escaped): \(lease.reason.sentence)\(annotation(lease))"
                .escapingControlCharacters(), metadata)
        }
        lines.append((report.summary.failed > 0 ? .warning : .notice, summaryLine(report), [:]))
        return lines
    }

    public static func render(_ report: RunReport) -> String {
        var lines: [String] = []
        let host = report.thisHostID.map { "host \($0)" } ?? "host id unknown"
        let mode = report.mode == .dryRun ? "dry run, nothing changed" : "cleaning"
        lines.append("\(report.leaseDirectory.escapingControlCharacters()) (\(host), \(mode))")
        let width = LeaseReport.Action.allCases.map(\.rawValue.count).max() ?? 0
        for lease in report.leases {
            let action = lease.action.rawValue.padded(to: width)
            // Auto lease names are 32 characters: align the reasons on them.
            let padded = lease.entry.name.escaped.padded(to: 32)
            // Every part is escaped where it is made; escaping the line again
            // guarantees that no string from a file reaches the terminal raw.
            lines.append("\(action)  \(padded)  \(lease.reason.sentence)\(annotation(lease))".escapingControlCharacters())
        }
        lines.append(summaryLine(report))
        return lines.joined(separator: "\n") + "\n"
    }

    /// What the reason leaves out: the guest disk behind the lease, and who
    /// the host it names is.
    static func annotation(_ lease: LeaseReport) -> String {
        disk(lease) + host(lease)
    }

    /// Names the guest disk behind a lease, unless the reason already does.
    static func disk(_ lease: LeaseReport) -> String {
        switch lease.reason {
        case .rule(.usedByGuest), .rule(.staleGuestStatus), .rule(.unmappedVolumeGuests): return ""
        default: break
        }
        if let use = lease.guestUse { return "; " + describe(use) }
        return lease.unknownDisk ? "; unknown disk" : ""
    }

    /// Who the host the line names is: "; host 2 is node-b, live". The name
    /// comes from the lockspace file, which any host writes: escaped.
    static func host(_ lease: LeaseReport) -> String {
        guard let id = lease.ownerHostID, lease.ownerHostName != nil || lease.ownerHostState != nil else { return "" }
        let facts = [lease.ownerHostName.map { EntryName($0).escaped }, lease.ownerHostState.map(\.rawValue)]
            .compactMap { $0 }.joined(separator: ", ")
        return "; host \(id) is \(facts)"
    }

    static func describe(_ use: GuestIndex.Use) -> String {
        let state = use.fromStatus ? use.state.rawValue : "stopped"
        let what = switch use.role {
        case .disk: "disk"
        case .mirror: "block job target"
        case .backingImage: "backing image"
        }
        return "\(what) \(EntryName(use.diskPath).escaped) of \(state) guest \(EntryName(use.guest).escaped)"
    }

    public static func summaryLine(_ report: RunReport) -> String {
        let summary = report.summary
        var parts: [String] = []
        if report.mode == .dryRun {
            parts.append("\(summary.wouldDelete) would be deleted (\(byteCount(summary.bytesReclaimable)))")
        } else {
            parts.append("\(summary.deleted) deleted (\(byteCount(summary.bytesReclaimed)) reclaimed)")
        }
        parts.append("\(summary.kept) kept")
        parts.append("\(summary.failed) failed")
        var entries = summary.entries == 1 ? "1 entry" : "\(summary.entries) entries"
        if !report.retiredHosts.isEmpty {
            let hosts = report.retiredHosts.map(String.init).joined(separator: ", ")
            entries = "\(entries) of retired host\(report.retiredHosts.count > 1 ? "s" : "") \(hosts)"
                + " (\(report.outOfScope) other entries not listed)"
        }
        return "summary: \(entries): " + parts.joined(separator: ", ")
            + " in \(String(format1: report.duration)) s"
    }

    /// Binary units, one decimal: leases are 1 MiB each.
    static func byteCount(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(String(format1: value)) \(units[unit])"
    }
}

extension String {
    /// Spaces appended up to `width` UTF-16 code units, the length Foundation's
    /// `padding(toLength:withPad:startingAt:)` measured when this report used
    /// it (a non-ASCII name is aligned as before). Unlike it, never truncates:
    /// a name longer than that is printed whole.
    func padded(to width: Int) -> String {
        let length = utf16.count
        return length < width ? self + String(repeating: " ", count: width - length) : self
    }

    /// A number with one decimal, without Foundation's locale-dependent
    /// formatting.
    init(format1 value: Double) {
        guard let tenths = Int(exactly: (value * 10).rounded()) else {
            self = "\(value)"
            return
        }
        self = "\(tenths < 0 && tenths > -10 ? "-" : "")\(tenths / 10).\(abs(tenths % 10))"
    }
}
