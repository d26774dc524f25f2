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
             .failed(.unlinkFailed(FileSystemError(.unlink, path: "/leases/d", errno: .notPermitted), now: .intact))),
            (entry("bad\nname", .foreignFile, size: 3), .keep(.foreignFile), nil),
        ]
        return RunReport(
            mode: mode, leaseDirectory: "/leases", thisHostID: 1, daemon: .reachable(version: 1),
            leases: rows.map { LeaseReport(entry: $0.0, verdict: $0.1, outcome: mode == .clean ? $0.2 : nil, mode: mode) },
            warnings: [.noLockspaceFile(leaseDirectory: "/leases")], startedAt: Date(timeIntervalSince1970: 1_700_000_000), duration: 1.25)
    }

    @Test func actionsFollowVerdictsAndOutcomes() {
        let clean = Self.report(mode: .clean)
        #expect(clean.leases.map(\.action) == [.deleted, .kept, .kept, .failed, .kept])
        #expect(clean.leases[1].reason == .rule(.heldByLiveHost(3, .live)))
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

    /// The columns as Foundation's `padding(toLength:withPad:startingAt:)`
    /// made them (UTF-16 code units) when the text report used it, which
    /// also cut a name at 32 code units: now printed whole.
    @Test(arguments: [
        ("a:b c", "a:b c" + String(repeating: " ", count: 27)),
        ("café", "café" + String(repeating: " ", count: 28)),
        ("e\u{301}x", "e\u{301}x" + String(repeating: " ", count: 29)),
        ("😀", "😀" + String(repeating: " ", count: 30)),
        (String(repeating: "😀", count: 20), String(repeating: "😀", count: 20)),
        (String(repeating: "a", count: 40), String(repeating: "a", count: 40)),
    ])
    func textColumnsAreAlignedAsBefore(name: String, column: String) {
        #expect(name.padded(to: 32) == column)
        if name.count < 32, name.utf16.count <= 32 {
            #expect(name.padded(to: 32) == name.padding(toLength: 32, withPad: " ", startingAt: 0))
        }
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
        #expect(document["warnings"] as? [String] == ["no lockspace file __LIBVIRT__DISKS__ in /leases: no host has joined this lease directory"])
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

    /// One lease line per hostile value, rendered every way.
    static func hostileReport(name: EntryName, modified: Double, size: Int64 = 1 << 20, guest: String = "g") -> RunReport {
        let use = GuestIndex.Use(guest: guest, state: .paused, fromStatus: true, diskPath: "/d\u{1B}]0;x\u{07}", file: "/run/x.xml")
        let entry = LeaseEntry(
            name: name, path: "/leases/" + (name.string ?? name.escaped),
            status: FileStatus(identity: FileIdentity(device: 1, inode: 1), type: .regular, size: size, modified: modified),
            kind: .autoLease(released))
        let leases = [
            LeaseReport(entry: entry, verdict: .keep(.usedByGuest(use)), outcome: nil, mode: .dryRun, guestUse: use),
            LeaseReport(entry: entry, verdict: .delete(.neverAcquired), outcome: nil, mode: .dryRun, guestUse: use),
            LeaseReport(entry: entry, verdict: .delete(.neverAcquired), outcome: nil, mode: .dryRun),
            LeaseReport(entry: entry, verdict: .keep(.tooRecent(age: 1_000_000 - modified, minimumAge: 3600)), outcome: nil, mode: .dryRun),
        ]
        return RunReport(mode: .dryRun, leaseDirectory: "/leases\u{1B}[2J", thisHostID: 1, daemon: .reachable(version: 1),
                         leases: leases, warnings: [], startedAt: Date(timeIntervalSince1970: modified), duration: 0)
    }

    @Test("Strings from files reach no output raw: names, guests, disks, the directory")
    func hostileStringsAreEscapedEverywhere() {
        let report = Self.hostileReport(name: EntryName("n\u{1B}[31m\u{202E}"), modified: 1_700_000_000, guest: "web\u{1B}[2J\nfake line")
        let text = TextReport.render(report)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            #expect(!line.unicodeScalars.contains { String.mustEscape($0) }, "\(line)")
        }
        #expect(text.split(separator: "\n").count == 1 + 4 + 1, "a name or guest forged a line")
        #expect(text.contains("web\\u{1b}[2J\\nfake line"))
        for line in TextReport.journalLines(report) {
            #expect(!line.text.unicodeScalars.contains { String.mustEscape($0) }, "\(line.text)")
        }
    }

    @Test("JSON names are unambiguous: byte 0xFF and the text \\xff differ")
    func jsonNamesKeepTheirBytes() throws {
        func lease(_ name: EntryName) throws -> [String: Any] {
            let json = JSONReport.render(Self.hostileReport(name: name, modified: 1_700_000_000))
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return try #require((document["leases"] as? [[String: Any]])?.first)
        }
        let byte = try lease(EntryName(bytes: [0xFF]))
        let text = try lease(EntryName("\\xff"))
        #expect(byte["name"] as? String == "\\xff" && byte["name_hex"] as? String == "ff")
        #expect(text["name"] as? String == "\\xff" && text["name_hex"] == nil)
    }

    @Test("Every modification time a file system can store gives RFC 3339 or null, never a trap",
          arguments: [Double(Int64.min), -62_167_219_201, -62_167_219_200, -1, 0, 1_700_000_000.5, 253_402_300_799,
                      253_402_300_800, Double(Int64.max), .infinity, -.infinity, .nan])
    func jsonTimes(seconds: Double) throws {
        let json = JSONReport.render(Self.hostileReport(name: EntryName("a"), modified: seconds))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let lease = try #require((document["leases"] as? [[String: Any]])?.first)
        let pattern = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$/
        for value in [lease["modified_at"], document["started_at"]] {
            if let text = value as? String {
                #expect(text.wholeMatch(of: pattern) != nil, "\(text)")
            } else {
                #expect(value is NSNull || value == nil, "\(String(describing: value))")
            }
        }
        #expect(JSONReport.timestamp(-62_167_219_200) == "0000-01-01T00:00:00Z")
        #expect(JSONReport.timestamp(253_402_300_799) == "9999-12-31T23:59:59Z")
        #expect(JSONReport.timestamp(253_402_300_800) == nil)
        // The text report words any of them.
        #expect(TextReport.render(Self.hostileReport(name: EntryName("a"), modified: seconds)).contains("summary:"))
    }

    @Test("Sizes from the directory are summed without overflow")
    func hugeSizesSaturate() {
        let report = Self.hostileReport(name: EntryName("a"), modified: 0, size: .max)
        #expect(report.summary.bytesReclaimable == .max)
        #expect(TextReport.byteCount(.max).hasSuffix("TiB"))
        #expect(MetricsFile.render(report: report, exitCode: 0, now: 1, duration: 0, lastSuccess: nil).contains("reclaimable_bytes"))
    }

    @Test func fatalJSONNamesTheError() throws {
        let json = JSONReport.render(fatal: .lockspaceNotJoined(lockspace: "__LIBVIRT__DISKS__", joined: [], pending: nil), mode: .clean, leaseDirectory: "/l")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let error = try #require(document["error"] as? [String: Any])
        #expect(error["code"] as? String == "lockspace-not-joined")
        #expect((error["message"] as? String)?.contains("has not joined") == true)
        #expect((document["leases"] as? [Any])?.isEmpty == true)
    }
}

@Suite("Owner hosts in reports")
struct OwnerHostReportTests {
    @Test("A line naming a host says who it is; a hostile name is escaped")
    func ownerHostNameAndLiveness() throws {
        let entry = LeaseEntry(
            name: EntryName(String(repeating: "a", count: 32)), path: "/leases/a",
            status: FileStatus(identity: FileIdentity(device: 1, inode: 1), type: .regular, size: 1 << 20, modified: 0),
            kind: .autoLease(LeaseState(ownerID: 2, ownerGeneration: 1, lver: 3, held: true)))
        var line = LeaseReport(entry: entry, verdict: .keep(.heldByLiveHost(2, .live)), outcome: nil, mode: .dryRun)
        line.ownerHostName = "node-b\u{1B}[2J"
        line.ownerHostState = .live
        #expect(TextReport.annotation(line) == "; host 2 is node-b\\u{1b}[2J, live")
        let report = RunReport(mode: .dryRun, leaseDirectory: "/leases", thisHostID: 1, daemon: .reachable(version: 1),
                               leases: [line], warnings: [], startedAt: Date(timeIntervalSince1970: 0), duration: 0)
        let json = JSONReport.render(report)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let lease = try #require((document["leases"] as? [[String: Any]])?.first)
        #expect(lease["owner_host_name"] as? String == "node-b\u{1B}[2J")
        #expect(lease["owner_host_state"] as? String == "live")
        // Nothing known about the host: nothing said.
        line.ownerHostName = nil
        line.ownerHostState = nil
        #expect(TextReport.host(line) == "")
    }
}

