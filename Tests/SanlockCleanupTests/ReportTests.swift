import Foundation
import Sanlock
@testable import SanlockCleanup
import Testing

@Suite("Reports: text and JSON")
struct ReportTests {
    static func entry(_ name: String, _ kind: EntryKind, size: Int64 = 1 << 20) -> LeaseEntry {
        LeaseEntry(name: EntryName(name), path: "/leases/" + name,
                   status: FileStatus(identity: FileIdentity(device: 1, inode: 1), type: .regular, size: size, modified: 1_700_000_000),
                   kind: kind)
    }

    static let free = LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false)
    static let released = LeaseState(ownerID: 3, ownerGeneration: 1, lver: 2, held: false)
    static let held = LeaseState(ownerID: 2, ownerGeneration: 1, lver: 5, held: true)

    static func report(mode: RunConfiguration.Mode) -> RunReport {
        let rows: [(LeaseEntry, Verdict, RemovalOutcome?)] = [
            (entry("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .autoLease(free)), .delete(.neverAcquired), .deleted),
            (entry("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", .autoLease(released)), .delete(.released(lastOwner: 3)),
             .kept(.heldByLiveHost(3, .live))),
            (entry("cccccccccccccccccccccccccccccccc", .autoLease(held)), .keep(.heldByLiveHost(2, .live)), nil),
            (entry("dddddddddddddddddddddddddddddddd", .autoLease(free)), .delete(.neverAcquired),
             .failed(.unlinkFailed(FileSystemError(.unlink, path: "/leases/d", errno: .notPermitted), leaseRestored: true))),
            (entry("bad\nname", .foreignFile, size: 3), .keep(.foreignFile), nil),
        ]
        return RunReport(
            mode: mode, leaseDirectory: "/leases", thisHostID: 1, daemon: .reachable(version: 1),
            leases: rows.map { LeaseReport(entry: $0.0, verdict: $0.1, outcome: mode == .clean ? $0.2 : nil, mode: mode) },
            warnings: ["a warning"], startedAt: Date(timeIntervalSince1970: 1_700_000_000), duration: 1.25)
    }

    @Test func actionsFollowVerdictsAndOutcomes() {
        let clean = Self.report(mode: .clean)
        #expect(clean.leases.map(\.action) == [.deleted, .kept, .kept, .failed, .kept])
        #expect(clean.leases[1].reason == .heldByLiveHost(3, .live))
        #expect(clean.summary.deleted == 1 && clean.summary.kept == 3 && clean.summary.failed == 1)
        #expect(clean.summary.bytesReclaimed == 1 << 20)
        #expect(clean.exitStatus == .deletionsFailed)

        let dry = Self.report(mode: .dryRun)
        #expect(dry.leases.map(\.action) == [.wouldDelete, .wouldDelete, .kept, .wouldDelete, .kept])
        #expect(dry.summary.bytesReclaimable == 3 << 20)
        #expect(dry.summary.bytesReclaimed == 0)
        #expect(dry.exitStatus == .success)
    }

    @Test func textHasOneLinePerEntryAndASummary() {
        let text = TextReport.render(Self.report(mode: .clean))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 1 + 5 + 1)
        #expect(lines[0] == "/leases (host 1, cleaning)")
        #expect(lines[1].hasPrefix("deleted       aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  free, never acquired"))
        #expect(lines[2].contains("held by live host 3"))
        #expect(lines[5].hasPrefix("kept          bad\\nname                         not a libvirt"))
        #expect(lines[6] == "summary: 5 entries: 1 deleted (1.0 MiB reclaimed), 3 kept, 1 failed in 1.3 s")
    }

    @Test(arguments: [(Int64(0), "0 B"), (1023, "1023 B"), (1 << 20, "1.0 MiB"), (1536, "1.5 KiB"), (5 << 30, "5.0 GiB")])
    func byteCounts(bytes: Int64, text: String) {
        #expect(TextReport.byteCount(bytes) == text)
    }

    @Test func jsonCarriesTheDocumentedFields() throws {
        let json = JSONReport.render(Self.report(mode: .clean))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(document["schema_version"] as? Int == 1)
        #expect(document["mode"] as? String == "clean")
        #expect(document["host_id"] as? Int == 1)
        #expect(document["warnings"] as? [String] == ["a warning"])
        let leases = try #require(document["leases"] as? [[String: Any]])
        #expect(leases.count == 5)
        #expect(leases[0]["name"] as? String == "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        #expect(leases[0]["action"] as? String == "deleted")
        #expect(leases[0]["reason"] as? String == "never-acquired")
        #expect(leases[0]["kind"] as? String == "auto-lease")
        #expect(leases[1]["owner_host_id"] as? Int == 3)
        #expect(leases[2]["held"] as? Bool == true)
        #expect(leases[2]["lver"] as? Int == 5)
        #expect(leases[3]["action"] as? String == "failed")
        #expect(leases[3]["error_code"] as? Int == 1)
        #expect(leases[4]["name"] as? String == "bad\nname")
        #expect(leases[4]["owner_host_id"] == nil)
        let summary = try #require(document["summary"] as? [String: Any])
        #expect(summary["deleted"] as? Int == 1)
        #expect(summary["failed"] as? Int == 1)
        #expect(summary["bytes_reclaimed"] as? Int == 1 << 20)
        #expect((summary["reasons"] as? [String: Int])?["never-acquired"] == 1)
    }

    @Test func fatalJSONNamesTheError() throws {
        let json = JSONReport.render(fatal: .lockspaceNotJoined(lockspace: "__LIBVIRT__DISKS__", joined: []), mode: .clean, leaseDirectory: "/l")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let error = try #require(document["error"] as? [String: Any])
        #expect(error["code"] as? String == "lockspace-not-joined")
        #expect((error["message"] as? String)?.contains("has not joined") == true)
        #expect((document["leases"] as? [Any])?.isEmpty == true)
    }
}
