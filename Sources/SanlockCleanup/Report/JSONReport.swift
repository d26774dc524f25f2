// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Sanlock
import SystemCalls

/// The report for machines: one JSON document, schema in
/// man/virt-sanlock-cleanup-report.schema.json; bump `schemaVersion` on any
/// incompatible change.
///
/// Written as it is encoded, one lease object per line: a directory of
/// 10,000 leases must not need the whole document in memory twice.
public enum JSONReport {
    static let schemaVersion = 1

    public static func render(_ report: RunReport) -> String {
        var text = ""
        write(report) { text += $0 }
        return text
    }

    /// Streams the document to `sink` in pieces.
    public static func write(_ report: RunReport, to sink: (String) -> Void) {
        let encoder = compactEncoder()
        var header = encode(Header(report), with: encoder)
        header.removeLast()  // the closing brace: the arrays follow
        sink(header + ",\"leases\":[\n")
        for (index, lease) in report.leases.enumerated() {
            sink(encode(Lease(lease), with: encoder) + (index == report.leases.count - 1 ? "\n" : ",\n"))
        }
        let summary = SummaryObject(report.summary, outOfScope: report.outOfScope)
        sink("],\"summary\":" + encode(summary, with: encoder)
             + ",\"warnings\":" + encode(report.warnings.map(\.description), with: encoder) + "}\n")
    }

    private static func compactEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    private static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder) -> String {
        String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// The document printed when the run stopped before deciding anything.
    public static func render(fatal error: JanitorError, mode: RunConfiguration.Mode, leaseDirectory: String) -> String {
        encodePretty(FatalDocument(
            schemaVersion: schemaVersion, mode: mode.rawValue, leaseDirectory: leaseDirectory,
            error: .init(code: error.code, message: error.description),
            leases: [], summary: nil))
    }

    /// RFC 3339 in UTC, without Foundation's formatter (costly per call, and
    /// a report has one timestamp per lease). nil for a time RFC 3339 cannot
    /// write: years before 0000 or after 9999 (a file system stores any
    /// 64-bit modification time).
    static func timestamp(_ secondsSinceEpoch: Double) -> String? {
        // -62167219200 is 0000-01-01T00:00:00Z, 253402300800 is 10000-01-01.
        let floored = secondsSinceEpoch.rounded(.down)
        guard floored >= -62_167_219_200, floored < 253_402_300_800,
              let time = Syscall.utcCalendarTime(secondsSinceEpoch: Int64(floored)) else {
            return nil
        }
        func digits(_ value: Int, _ count: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, count - text.count)) + text
        }
        return "\(digits(time.year, 4))-\(digits(time.month, 2))-\(digits(time.day, 2))T"
            + "\(digits(time.hour, 2)):\(digits(time.minute, 2)):\(digits(time.second, 2))Z"
    }

    static func timestamp(_ date: Date) -> String? { timestamp(date.timeIntervalSince1970) }

    /// A whole document, indented (the fatal and the audit documents).
    static func encodePretty<T: Encodable>(_ value: T) -> String {
        let encoder = compactEncoder()
        encoder.outputFormatting.insert(.prettyPrinted)
        return encode(value, with: encoder) + "\n"
    }

    /// The document's scalar fields, written before the arrays.
    struct Header: Encodable {
        var schemaVersion = JSONReport.schemaVersion
        var mode: String
        var leaseDirectory: String
        var hostId: UInt64?
        var sanlockDaemon: String
        var startedAt: String?
        var durationSeconds: Double
        var retiredHosts: [UInt64]
        var interruptedBySignal: Int32?

        init(_ report: RunReport) {
            mode = report.mode.rawValue
            leaseDirectory = report.leaseDirectory
            hostId = report.thisHostID
            switch report.daemon {
            case .reachable: sanlockDaemon = "reachable"
            case .unreachable(let error): sanlockDaemon = "unreachable: \(error)"
            }
            startedAt = JSONReport.timestamp(report.startedAt)
            durationSeconds = (report.duration * 1000).rounded() / 1000
            retiredHosts = report.retiredHosts
            interruptedBySignal = report.interruptedBy
        }
    }

    struct Lease: Encodable {
        /// The name when it is UTF-8; otherwise its escaped rendering, and
        /// `nameHex` holds the exact bytes, so that two names never read the
        /// same (byte 0xFF and the text `\xff`).
        var name: String
        var nameHex: String?
        var path: String
        var kind: String
        var action: String
        var reason: String
        var detail: String
        var ownerHostId: UInt64?
        var ownerHostName: String?
        var ownerHostState: String?
        var held: Bool?
        var sharedHolders: [UInt64]?
        var lver: UInt64?
        var stateSource: String?
        var sizeBytes: Int64?
        var modifiedAt: Timestamp?
        var errorCode: Int32?
        var guest: String?
        var guestState: String?
        var disk: String?
        var diskRole: String?
        var unknownDisk: Bool?

        init(_ lease: LeaseReport) {
            name = lease.entry.name.string ?? lease.entry.name.escaped
            if lease.entry.name.string == nil {
                nameHex = lease.entry.name.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            }
            path = lease.entry.path
            kind = lease.entry.kind.code
            action = lease.action.rawValue
            reason = lease.reason.code
            detail = lease.reason.sentence
            ownerHostId = lease.ownerHostID
            ownerHostName = lease.ownerHostName
            ownerHostState = lease.ownerHostState?.rawValue
            if let state = lease.entry.leaseState {
                held = state.held
                sharedHolders = state.sharedHolders.map(\.hostID)
                lver = state.lver
                stateSource = "disk"
            }
            sizeBytes = lease.entry.status?.size
            modifiedAt = lease.entry.status.map { Timestamp(JSONReport.timestamp($0.modified)) }
            errorCode = lease.reason.errorCode
            if let use = lease.guestUse {
                guest = use.guest
                guestState = use.fromStatus ? use.state.rawValue : "shutoff"
                disk = use.diskPath
                diskRole = use.role.rawValue
            }
            if lease.entry.kind.isLeaseFile { unknownDisk = lease.unknownDisk }
        }
    }

    /// An optional field written as `null` when absent, where synthesized
    /// encoding would leave the key out.
    @propertyWrapper
    struct NullWhenAbsent<Value: Encodable>: Encodable {
        var wrappedValue: Value?
        init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
        }
    }

    /// A time as RFC 3339, or `null` when RFC 3339 cannot write it.
    struct Timestamp: Encodable {
        var text: String?
        init(_ text: String?) { self.text = text }
        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            if let text { try container.encode(text) } else { try container.encodeNil() }
        }
    }

    struct SummaryObject: Encodable {
        var entries: Int
        var deleted: Int
        var wouldDelete: Int
        var kept: Int
        var failed: Int
        var bytesReclaimed: Int64
        var bytesReclaimable: Int64
        var reasons: [String: Int]
        var outOfScope: Int

        init(_ summary: Summary, outOfScope: Int) {
            self.outOfScope = outOfScope
            entries = summary.entries
            deleted = summary.deleted
            wouldDelete = summary.wouldDelete
            kept = summary.kept
            failed = summary.failed
            bytesReclaimed = summary.bytesReclaimed
            bytesReclaimable = summary.bytesReclaimable
            reasons = summary.byReason
        }
    }

    struct FatalDocument: Encodable {
        struct ErrorObject: Encodable {
            var code: String
            var message: String
        }

        var schemaVersion: Int
        var mode: String
        var leaseDirectory: String
        var error: ErrorObject
        var leases: [Lease]
        var summary: SummaryObject?
    }
}

extension EntryKind {
    /// Stable identifier for JSON.
    var code: String {
        switch self {
        case .lockspace: "lockspace"
        case .autoLease: "auto-lease"
        case .uninitialisedLease: "uninitialised"
        case .clearedLease: "cleared"
        case .corruptLease: "corrupt"
        case .foreignFile: "foreign"
        case .directory: "directory"
        case .symlink: "symlink"
        case .special: "special"
        case .unreadable: "unreadable"
        case .vanished: "vanished"
        }
    }
}
