// The reports: a RunReport built from the input (entry names as raw bytes,
// any modification time a file can have, guest names and disk paths, host
// ids, lease versions), rendered as text, journal lines, JSON and metrics,
// with the properties every rendering must keep checked on the output.
import Foundation
import FuzzSupport
import Sanlock
// RunReport has no public initialiser (the Janitor makes it); debug builds
// are testable, so the fuzz build can make one from the input.
@testable import SanlockCleanup
import SystemPackage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRender(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var input = FuzzReader(start, count)
    let (report, names) = makeReport(&input)

    checkPrintable(TextReport.render(report), newlines: true, what: "text report")
    for line in TextReport.journalLines(report) {
        checkPrintable(line.text, newlines: false, what: "journal line")
    }
    checkJSON(JSONReport.render(report), names: names)
    let metrics = MetricsFile.render(
        report: report, exitCode: report.exitCode, now: Double(bitPattern: input.integer()),
        duration: report.duration, lastSuccess: input.bool() ? Double(bitPattern: input.integer()) : nil)
    checkPrintable(metrics, newlines: true, what: "metrics file")
    return 0
}

// MARK: - Building the report

/// Everything a report line is made of but the entry's name, so that a later
/// entry can repeat it under another name (see the JSON name check).
private struct Facts {
    var status: FileStatus?
    var kind: EntryKind
    var verdict: Verdict
    var outcome: RemovalOutcome?
    var guestUse: GuestIndex.Use?
    var unknownDisk: Bool
}

private func makeReport(_ input: inout FuzzReader) -> (RunReport, [EntryName]) {
    let flags = input.byte()
    let mode: RunConfiguration.Mode = flags & 1 == 0 ? .clean : .dryRun
    let thisHostID: UInt64? = flags & 2 != 0 ? input.integer() : nil
    let daemon: SanlockView.Availability =
        flags & 4 == 0 ? .reachable(version: input.integer()) : .unreachable(sanlockError(&input))
    let interruptedBy: Int32? = flags & 8 != 0 ? Int32(input.byte() % 65) : nil
    // The directory comes from the configuration or --lease-dir: any path.
    let leaseDirectory = flags & 16 != 0 ? input.string(maxLength: 40) : "/var/lib/libvirt/sanlock"
    let retiredHosts: [UInt64] = (0..<Int((flags >> 5) & 3)).map { _ in input.integer() }

    var names: [EntryName] = []
    var leases: [LeaseReport] = []
    var previous: Facts?
    for _ in 0..<Int(input.byte() % 9) {
        // readdir never returns NUL or '/' in a name; anything else goes.
        let name = EntryName(bytes: input.lengthPrefixed(maxLength: 40).filter { $0 != 0 && $0 != UInt8(ascii: "/") })
        let facts = if let previous, input.bool() { previous } else { makeFacts(&input) }
        previous = facts
        names.append(name)
        // LeaseDirectory.path(of:), which needs an open directory.
        let path = (leaseDirectory.hasSuffix("/") ? leaseDirectory : leaseDirectory + "/") + (name.string ?? name.escaped)
        var line = LeaseReport(
            entry: LeaseEntry(name: name, path: path, status: facts.status, kind: facts.kind),
            verdict: facts.verdict, outcome: facts.outcome, mode: mode,
            guestUse: facts.guestUse, unknownDisk: facts.unknownDisk)
        // The owner's name comes from any host's delta lease: anything goes.
        if line.ownerHostID != nil, input.bool() {
            line.ownerHostName = input.string(maxLength: 48)
            line.ownerHostState = hostState(input.byte())
        }
        leases.append(line)
    }
    var report = RunReport(
        mode: mode, interruptedBy: interruptedBy, leaseDirectory: leaseDirectory, thisHostID: thisHostID,
        daemon: daemon, leases: leases,
        warnings: (0..<Int(input.byte() % 3)).map { _ in .lockspaceFileInvalid(path: input.string(maxLength: 40)) },
        // A clock reading and a run's wall time: ordinary values.
        startedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(input.integer(UInt32.self))),
        duration: Double(input.integer(UInt32.self)) / 1000)
    report.outOfScope = Int(input.integer(UInt16.self))
    report.retiredHosts = retiredHosts
    return (report, names)
}

private func makeFacts(_ input: inout FuzzReader) -> Facts {
    let status: FileStatus? = input.bool() ? nil : FileStatus(
        identity: FileIdentity(device: 1, inode: input.integer()),
        type: fileType(input.byte()),
        // st_size: a sparse file can be as large as Int64.max.
        size: Int64(bitPattern: input.integer(UInt64.self) & UInt64(Int64.max)),
        // LeaseDirectory's st_mtim conversion, for any tv_sec and tv_nsec.
        modified: Double(Int64(bitPattern: input.integer())) + Double(input.integer(UInt32.self) % 1_000_000_000) / 1e9,
        linkCount: UInt64(input.byte() % 3) + 1)
    let kind = entryKind(&input)
    let verdict = Verdict(disposition: input.bool() ? .delete : .keep, reason: reason(&input, status: status))
    let outcome: RemovalOutcome? = switch input.byte() % 4 {
    case 0: nil
    case 1: .deleted
    case 2: .kept(reason(&input, status: status))
    default: removalFailure(reason(&input, status: status))
    }
    return Facts(status: status, kind: kind, verdict: verdict, outcome: outcome,
                 guestUse: input.bool() ? guestUse(&input) : nil, unknownDisk: input.bool())
}

private func fileType(_ byte: UInt8) -> FileStatus.FileType {
    let types: [FileStatus.FileType] = [.regular, .directory, .symlink, .blockDevice, .characterDevice, .fifo, .socket, .unknown]
    return types[Int(byte) % types.count]
}

private func entryKind(_ input: inout FuzzReader) -> EntryKind {
    switch input.byte() % 11 {
    case 0: .lockspace
    case 1: .autoLease(leaseState(&input))
    case 2: .uninitialisedLease
    case 3: .clearedLease(ClearedLease(invalidatedBy: optionalHost(&input)))
    case 4: .corruptLease(corruption(&input))
    case 5: .foreignFile
    case 6: .directory
    case 7: .symlink(target: input.bool() ? input.string(maxLength: 40) : nil)
    case 8: .special(fileType(input.byte()))
    case 9: .unreadable(fileSystemError(&input))
    default: .vanished
    }
}

private func leaseState(_ input: inout FuzzReader) -> LeaseState {
    LeaseState(
        ownerID: input.integer(), ownerGeneration: input.integer(), lver: input.integer(), held: input.bool(),
        sharedHolders: (0..<Int(input.byte() % 4)).map { _ in
            ResourceOwner(hostID: input.integer(), generation: input.integer(), timestamp: 0)
        })
}

private func corruption(_ input: inout FuzzReader) -> Corruption {
    switch input.byte() % 7 {
    case 0: .badChecksum(stored: input.integer())
    case 1: .truncated(size: Int64(bitPattern: input.integer()), needed: Int64(bitPattern: input.integer()))
    // Names come from the leader's 48-byte fields, decoded leniently.
    case 2: .wrongLockspace(input.string(maxLength: 48))
    case 3: .wrongResourceName(input.string(maxLength: 48))
    case 4: .unsupportedVersion(input.integer())
    case 5: .outOfRange(field: ["sector_size", "num_hosts", "owner_id"][Int(input.byte() % 3)], value: input.integer())
    default: .notALease(magic: input.integer())
    }
}

private func fileSystemError(_ input: inout FuzzReader) -> FileSystemError {
    let operations: [FileSystemError.Operation] = [.openDirectory, .readDirectory, .stat, .open, .read, .write, .unlink]
    let operation = operations[Int(input.byte()) % operations.count]
    let path = input.string(maxLength: 40)
    let conditions: [FileSystemError.Code] = [.replaced, .pathMoved, .hardLinked(links: input.integer()), .shortSector,
                                              .untrustedDirectory, .untrustedLockFile]
    let selector = Int(input.byte())
    if selector < conditions.count * 16 {
        return FileSystemError(operation, path: path, condition: conditions[selector % conditions.count])
    }
    return FileSystemError(operation, path: path, errno: Errno(rawValue: Int32(input.byte())))
}

private func optionalHost(_ input: inout FuzzReader) -> UInt64? {
    input.bool() ? input.integer() : nil
}

private func pathState(_ input: inout FuzzReader) -> PathState {
    switch input.byte() % 5 {
    case 0: .intact
    case 1: .invalidated
    case 2: .replaced
    case 3: .gone
    // LeaseRemover describes what it found with Reason(describing:).
    default: .unknown(Reason.describing(entryKind(&input)))
    }
}

private func sanlockError(_ input: inout FuzzReader) -> SanlockError {
    let operations: [SanlockOperation] = [
        .connect, .version, .register, .acquire, .release, .readResource, .readResourceOwners,
        .writeResource, .getLockspaces, .getHosts, .prepareResource,
    ]
    return SanlockError(operations[Int(input.byte()) % operations.count], code: Int32(bitPattern: input.integer()))
}

private func hostState(_ byte: UInt8) -> HostState {
    HostState.allCases[Int(byte) % HostState.allCases.count]
}

private func guestUse(_ input: inout FuzzReader) -> GuestIndex.Use {
    let roles: [GuestIndex.Use.Role] = [.disk, .mirror, .backingImage]
    return GuestIndex.Use(
        guest: input.string(maxLength: 40), state: GuestState.allCases[Int(input.byte()) % GuestState.allCases.count],
        fromStatus: input.bool(), stale: input.bool(), pid: input.bool() ? Int32(bitPattern: input.integer()) : nil,
        diskPath: input.string(maxLength: 60), role: roles[Int(input.byte()) % roles.count],
        file: input.string(maxLength: 40))
}

/// A failed removal, as the remover reports one; another reason as a refusal.
private func removalFailure(_ reason: Reason) -> RemovalOutcome {
    if case .removal(let failure) = reason { return .failed(failure) }
    return .kept(reason)
}

/// Every reason the decision or the remover can give, with values from the
/// input where the tool takes them from disk, sanlock or libvirt.
private func reason(_ input: inout FuzzReader, status: FileStatus?) -> Reason {
    switch input.byte() % 52 {
    case 0: return .entry(.lockspace)
    case 1: return .entry(.directory)
    case 2: return .entry(.symlink(target: input.bool() ? input.string(maxLength: 40) : nil))
    case 3: return .entry(.special(fileType(input.byte())))
    case 4: return .entry(.foreignFile)
    case 5: return .entry(.uninitialisedLease)
    case 6: return .entry(.clearedLease(ClearedLease(invalidatedBy: optionalHost(&input))))
    case 7: return .entry(.corruptLease(corruption(&input)))
    case 8: return .entry(.unreadable(fileSystemError(&input)))
    case 9: return .entry(.vanished)
    case 10: return .rule(.usedByGuest(guestUse(&input)))
    case 11: return .rule(.staleGuestStatus(guestUse(&input)))
    case 12: return .rule(.unmappedVolumeGuests((0..<Int(input.byte() % 3 + 1)).map { _ in input.string(maxLength: 20) }))
    case 13: return .rule(.heldByThisHost)
    case 14: return .rule(.heldByLiveHost(input.integer(), hostState(input.byte())))
    case 15: return .rule(.heldByHostOfUnknownState(input.integer()))
    case 16: return .rule(.ownerHostFailing(input.integer(), ioTimeout: input.integer()))
    case 17: return .rule(.heldShared(hosts: (0..<Int(input.byte() % 3)).map { _ in input.integer() }))
    case 18: return .rule(.hardLinked(links: input.integer()))
    case 19: return .rule(.lastHeldByLiveHost(input.integer(), hostState(input.byte())))
    case 20: return .rule(.lastHeldByFailingHost(input.integer()))
    case 21: return .rule(.lastHeldByHostOfUnknownState(input.integer()))
    case 22, 47:
        // As Decision.verdict makes them: the age is now - mtime (negative
        // for an mtime in the future), below a minimum age --min-age accepts.
        let minimumAge = Double(input.integer(UInt32.self)).truncatingRemainder(dividingBy: DurationText.maximum + 1)
        let now = 1_700_000_000 + Double(input.integer(UInt32.self))
        let modified = status?.modified ?? now
        let age = !(now - modified >= minimumAge) ? now - modified : minimumAge / 2
        return input.bool() ? .rule(.tooRecent(age: age, minimumAge: minimumAge))
            : .rule(.clearedRecently(invalidatedBy: optionalHost(&input), age: age, minimumAge: minimumAge))
    case 23: return .rule(.notRetiredHost)
    case 24: return .rule(.neverAcquired)
    case 25: return .rule(.released(lastOwner: input.integer()))
    case 26: return .rule(.lastHolderGone(input.integer(), hostState(input.byte())))
    case 27: return .rule(.abandonedUninitialised)
    case 28: return .rule(.abandonedCleared(invalidatedBy: optionalHost(&input)))
    case 29: return .rule(.ownerHostDead(input.integer(), hostState(input.byte())))
    case 30: return .rule(.ownerHostRestarted(input.integer(), heldGeneration: input.integer(), currentGeneration: input.integer()))
    case 31: return .rule(.sharedHoldersGone(hosts: (0..<Int(input.byte() % 3 + 1)).map { _ in input.integer() }))
    case 32:
        // As LeaseRemover makes it: the version read after our acquire is
        // not the scanned one plus one.
        let scanned: UInt64 = input.integer()
        let lver: UInt64 = input.integer()
        return .removal(.usedDuringRun(scannedLVer: scanned, lver: lver == scanned &+ 1 ? lver &+ 1 : lver))
    case 33: return .removal(.acquireBusy(sanlockError(&input)))
    case 34: return .removal(.lockspaceNotJoined(sanlockError(&input)))
    case 35: return .removal(.acquireFailed(sanlockError(&input)))
    case 36: return .removal(.invalidateFailed(fileSystemError(&input), now: pathState(&input)))
    case 37: return .removal(.replacedBeforeDeletion(fileSystemError(&input)))
    case 38: return .removal(.unlinkFailed(fileSystemError(&input), now: pathState(&input)))
    case 39: return .removal(.removeFailed(fileSystemError(&input)))
    case 40: return .removal(.connectionFailed(sanlockError(&input)))
    case 41: return .removal(.interrupted(signal: Int32(input.byte() % 65)))
    // The common reasons again, so that mutations land on them more often.
    case 42: return .rule(.neverAcquired)
    case 43: return .rule(.released(lastOwner: input.integer()))
    case 44: return .rule(.usedByGuest(guestUse(&input)))
    case 45: return .rule(.tooRecent(age: 0, minimumAge: 3600))
    case 46: return .rule(.heldByLiveHost(input.integer(), .live))
    case 48: return .rule(.hardLinked(links: input.integer()))
    case 49: return .rule(.leftInvalidatedByThisHost)
    case 50: return .removal(.changedDuringRun)
    default: return .rule(.neverAcquired)
    }
}

// MARK: - Checking the output

/// No terminal or log control characters: a name, guest or path from disk
/// must never forge a line, move the cursor or recolour the report.
private func checkPrintable(_ text: String, newlines: Bool, what: String) {
    for scalar in text.unicodeScalars where isControl(scalar) && !(newlines && scalar == "\n") {
        let line = text.split(separator: "\n", omittingEmptySubsequences: false)
            .first { $0.unicodeScalars.contains(scalar) } ?? ""
        invariant(false, "\(what) has control character U+\(String(scalar.value, radix: 16, uppercase: true)) in \(line.debugDescription)")
    }
}

private func checkJSON(_ json: String, names: [EntryName]) {
    let object = try? JSONSerialization.jsonObject(with: Data(json.utf8))
    guard let document = object as? [String: Any] else {
        invariant(false, "the JSON report does not parse: \(json.debugDescription)")
        return
    }
    checkTimestamp(document["started_at"], what: "started_at")
    let leases = document["leases"] as? [[String: Any]] ?? []
    invariant(leases.count == names.count, "\(leases.count) lease objects for \(names.count) entries")
    for lease in leases { checkTimestamp(lease["modified_at"], what: "modified_at") }

    // Each lease object is one line of its own (see JSONReport.write): two
    // entries whose names differ must not print the same line, or a script
    // cannot tell which file a line is about.
    let lines = json.split(separator: "\n").dropFirst().prefix(names.count).map { line in
        line.hasSuffix(",") ? line.dropLast() : line
    }
    for (i, first) in lines.enumerated() {
        for j in lines.indices where j > i && lines[j] == first && names[i] != names[j] {
            invariant(false, "names \(names[i].bytes) and \(names[j].bytes) give the same JSON lease object \(first)")
        }
    }
}

/// RFC 3339 in UTC as the schema promises: `YYYY-MM-DDTHH:MM:SSZ`, or null.
private func checkTimestamp(_ value: Any?, what: String) {
    guard let value, !(value is NSNull) else { return }
    guard let text = value as? String else {
        invariant(false, "\(what) is not a string: \(value)")
        return
    }
    let characters = Array(text.utf8)
    func number(_ range: Range<Int>) -> Int? {
        guard range.upperBound <= characters.count,
              characters[range].allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(String(decoding: characters[range], as: UTF8.self))
    }
    let separators: [(Int, Character)] = [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "Z")]
    guard characters.count == 20, separators.allSatisfy({ characters[$0.0] == $0.1.asciiValue! }),
          let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
          let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else {
        invariant(false, "\(what) \(text.debugDescription) is not YYYY-MM-DDTHH:MM:SSZ")
        return
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    invariant((1...12).contains(month) && (1...days[month - 1]).contains(day)
              && hour < 24 && minute < 60 && second < 61, "\(what) \(text) is not a valid date and time")
}
