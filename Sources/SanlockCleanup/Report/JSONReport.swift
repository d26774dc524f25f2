import Foundation
import Sanlock

/// The report for machines: one JSON document. Documented in
/// doc/json-schema.md; bump `schemaVersion` on any incompatible change.
public enum JSONReport {
    public static let schemaVersion = 1

    public static func render(_ report: RunReport) -> String {
        encode(Document(report))
    }

    /// The document printed when the run stopped before deciding anything.
    public static func render(fatal error: JanitorError, mode: RunConfiguration.Mode, leaseDirectory: String) -> String {
        encode(FatalDocument(
            schemaVersion: schemaVersion, mode: mode.rawValue, leaseDirectory: leaseDirectory,
            error: .init(code: error.code, message: error.description),
            leases: [], summary: nil))
    }

    private static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    struct Document: Encodable {
        var schemaVersion = JSONReport.schemaVersion
        var mode: String
        var leaseDirectory: String
        var hostId: UInt64?
        var sanlockDaemon: String
        var startedAt: String
        var durationSeconds: Double
        var retiredHosts: [UInt64]
        var leases: [Lease]
        var summary: SummaryObject
        var warnings: [String]
        var interruptedBySignal: Int32?

        init(_ report: RunReport) {
            interruptedBySignal = report.interruptedBy
            retiredHosts = report.retiredHosts
            mode = report.mode.rawValue
            leaseDirectory = report.leaseDirectory
            hostId = report.thisHostID
            switch report.daemon {
            case .reachable: sanlockDaemon = "reachable"
            case .unreachable(let error): sanlockDaemon = "unreachable: \(error)"
            }
            startedAt = ISO8601DateFormatter().string(from: report.startedAt)
            durationSeconds = (report.duration * 1000).rounded() / 1000
            leases = report.leases.map(Lease.init)
            summary = SummaryObject(report.summary, outOfScope: report.outOfScope)
            warnings = report.warnings
        }
    }

    struct Lease: Encodable {
        var name: String
        var path: String
        var kind: String
        var action: String
        var reason: String
        var detail: String
        var ownerHostId: UInt64?
        var held: Bool?
        var sharedHolders: [UInt64]?
        var lver: UInt64?
        var stateSource: String?
        var sizeBytes: Int64?
        var modifiedAt: String?
        var errorCode: Int32?
        var guest: String?
        var guestState: String?
        var disk: String?
        var diskRole: String?
        var unknownDisk: Bool?

        init(_ lease: LeaseReport) {
            name = lease.entry.name.string ?? lease.entry.name.escaped
            path = lease.entry.path
            kind = lease.entry.kind.code
            action = lease.action.rawValue
            reason = lease.reason.code
            detail = lease.reason.sentence
            ownerHostId = lease.ownerHostID
            if let state = lease.entry.leaseState {
                held = state.held
                sharedHolders = state.sharedHolders.map(\.hostID)
                lver = state.lver
                stateSource = state.source.rawValue
            }
            sizeBytes = lease.entry.status?.size
            modifiedAt = lease.entry.status.map {
                ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: $0.modified))
            }
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
    public var code: String {
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
