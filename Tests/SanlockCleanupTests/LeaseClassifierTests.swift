@testable import Sanlock
@testable import SanlockCleanup
import TestFixtures
import Testing

@Suite("Classifying lease-directory entries")
struct LeaseClassifierTests {
    let classifier = LeaseClassifier(probeHostIDs: [1, 2, 3])
    let name = String(repeating: "a", count: 31) + "1"
    let megabyte: Int64 = 1 << 20

    func classify(_ bytes: [UInt8], name: String? = nil, size: Int64? = nil, using classifier: LeaseClassifier? = nil) -> LeaseClassifier.Result {
        (classifier ?? self.classifier).classify(name: EntryName(name ?? self.name), size: size ?? megabyte, prefix: bytes)
    }

    @Test func realNeverAcquiredLease() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.neverAcquired)
        #expect(classify(bytes) == .kind(.autoLease(LeaseState(ownerID: 0, ownerGeneration: 0, lver: 0, held: false))))
    }

    @Test func realReleasedLease() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.released)
        #expect(classify(bytes, name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2")
            == .kind(.autoLease(LeaseState(ownerID: 1, ownerGeneration: 1, lver: 1, held: false))))
    }

    @Test func realSharedLease() {
        var bytes = LeaseFixtures.lease(leader: LeaseFixtures.sharedLeader)
        bytes.replaceSubrange(1024..<1536, with: LeaseFixtures.sector(LeaseFixtures.sharedHost1DBlock))
        let expected = LeaseState(ownerID: 1, ownerGeneration: 1, lver: 1, held: false,
                                  sharedHolders: [ResourceOwner(hostID: 1, generation: 1, timestamp: 0)])
        #expect(classify(bytes, name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3") == .kind(.autoLease(expected)))
    }

    @Test("A host id given twice to probe is read once (found by fuzzing: the holder was listed twice)")
    func duplicateProbeHostIDs() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name), shared: [1: 4])
        let classifier = LeaseClassifier(probeHostIDs: [1, 1, 2, 1])
        #expect(classifier.probeHostIDs == [1, 2])
        guard case .kind(.autoLease(let state)) = classify(bytes, using: classifier) else { Issue.record("not a lease"); return }
        #expect(state.sharedHolders == [ResourceOwner(hostID: 1, generation: 4, timestamp: 0)])
    }

    @Test func sharedHoldersOfUnprobedHostsAreNotSeen() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name), shared: [2: 5, 5: 1])
        guard case .kind(.autoLease(let state)) = classify(bytes) else { Issue.record("not a lease"); return }
        #expect(state.sharedHolders == [ResourceOwner(hostID: 2, generation: 5, timestamp: 0)])
        #expect(state.isFree == false)
    }

    @Test func theExclusiveOwnerIsNotAlsoASharedHolder() {
        let bytes = LeaseFixtures.lease(
            leader: LeaseFixtures.leader(name: name, owner: 2, generation: 1, lver: 3, timestamp: 99), shared: [2: 1, 3: 1])
        guard case .kind(.autoLease(let state)) = classify(bytes) else { Issue.record("not a lease"); return }
        #expect(state.held && state.ownerID == 2)
        #expect(state.sharedHolders.map(\.hostID) == [3])
    }

    @Test func probingAHighHostIDAsksForMoreBytes() {
        let far = LeaseClassifier(probeHostIDs: [1, 1500])
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name))
        #expect(classify(bytes, using: far) == .needsBytes(1502 * 512))
        let whole = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name), shared: [1500: 7], sectors: 1502)
        guard case .kind(.autoLease(let state)) = classify(whole, using: far) else { Issue.record("not a lease"); return }
        #expect(state.sharedHolders.map(\.hostID) == [1500])
    }

    @Test func withoutAProbeListEveryHostUpToNumHostsIsRead() {
        let all = LeaseClassifier(probeHostIDs: nil)
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, numHosts: 10))
        #expect(classify(bytes, using: all) == .needsBytes(12 * 512))
    }

    @Test("Zero-filled or empty files are uninitialised leases", arguments: [0, 512, 4096])
    func uninitialised(size: Int) {
        #expect(classify([UInt8](repeating: 0, count: size), size: Int64(size)) == .kind(.uninitialisedLease))
    }

    @Test func zeroMagicWithDataIsNotALease() {
        var bytes = [UInt8](repeating: 0, count: 4096)
        bytes[700] = 1
        #expect(classify(bytes) == .kind(.corruptLease(.notALease(magic: 0))))
    }

    @Test func clearedLease() {
        // As SANLK_WRITE_CLEAR leaves it: no owner.
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, magic: LeaderRecord.clearedMagic))
        #expect(classify(bytes) == .kind(.clearedLease(ClearedLease(invalidatedBy: nil))))
    }

    @Test("A lease this tool invalidated still names the host that held it")
    func clearedLeaseNamesItsJanitor() throws {
        let held = LeaseFixtures.leader(name: name, owner: 3, generation: 7, lver: 4, timestamp: 99)
        let cleared = try #require(LeaderRecord.invalidating(sector: held))
        #expect(classify(LeaseFixtures.lease(leader: cleared)) == .kind(.clearedLease(ClearedLease(invalidatedBy: 3))))
        // Only a leader that was held, with a valid checksum, this file's
        // names and a possible host id tells who invalidated it.
        let released = try #require(LeaderRecord.invalidating(sector: LeaseFixtures.leader(name: name, owner: 3, lver: 4)))
        var corrupt = cleared
        corrupt[40] ^= 1
        let otherName = try #require(LeaderRecord.invalidating(
            sector: LeaseFixtures.leader(name: String(repeating: "b", count: 32), owner: 3, lver: 4, timestamp: 9)))
        let hugeOwner = try #require(LeaderRecord.invalidating(
            sector: LeaseFixtures.leader(name: name, owner: 2001, lver: 4, timestamp: 9)))
        for leader in [released, corrupt, otherName, hugeOwner] {
            #expect(classify(LeaseFixtures.lease(leader: leader)) == .kind(.clearedLease(ClearedLease(invalidatedBy: nil))))
        }
    }

    @Test("Fields that size reads and arrays are checked before use")
    func hostileNumbers() {
        let hostile: [(UInt64, UInt64, Corruption)] = [
            (UInt64.max, 0, .outOfRange(field: "num_hosts", value: UInt64.max)),
            (1 << 62, 0, .outOfRange(field: "num_hosts", value: 1 << 62)),
            (2001, 0, .outOfRange(field: "num_hosts", value: 2001)),
            (0, 0, .outOfRange(field: "num_hosts", value: 0)),
            (2000, UInt64.max, .outOfRange(field: "owner_id", value: UInt64.max)),
            (2000, 2001, .outOfRange(field: "owner_id", value: 2001)),
        ]
        let everyHost = LeaseClassifier(probeHostIDs: nil)
        for (numHosts, owner, corruption) in hostile {
            let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, numHosts: numHosts, owner: owner))
            #expect(classify(bytes) == .kind(.corruptLease(corruption)), "num_hosts \(numHosts), owner \(owner)")
            // Without a lockspace file every host id up to num_hosts is probed.
            #expect(classify(bytes, using: everyHost) == .kind(.corruptLease(corruption)))
        }
        // The largest valid lease asks for at most host 2000's dblock.
        let largest = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, sectorSize: 4096, numHosts: 2000))
        #expect(classify(largest, size: 8 << 20, using: everyHost) == .needsBytes(2001 * 4096 + 4096))
    }

    @Test func badChecksum() {
        var bytes = LeaseFixtures.lease(leader: LeaseFixtures.released)
        bytes[48] = 7  // lver
        guard case .kind(.corruptLease(.badChecksum)) = classify(bytes, name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2") else {
            Issue.record("checksum not checked")
            return
        }
    }

    @Test func leaseOfAnotherLockspace() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, lockspace: "OTHER"))
        #expect(classify(bytes) == .kind(.corruptLease(.wrongLockspace("OTHER"))))
    }

    @Test func leaderNamingAnotherResource() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: String(repeating: "b", count: 32)))
        #expect(classify(bytes) == .kind(.corruptLease(.wrongResourceName(String(repeating: "b", count: 32)))))
    }

    @Test func unsupportedVersion() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, version: 0x0005_0001))
        #expect(classify(bytes) == .kind(.corruptLease(.unsupportedVersion(0x0005_0001))))
    }

    @Test func oddSectorSize() {
        for size: UInt32 in [0, 1024, 0xFFFF_FFFF] {
            let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name, sectorSize: size))
            #expect(classify(bytes) == .kind(.corruptLease(.outOfRange(field: "sector_size", value: UInt64(size)))))
        }
    }

    @Test func truncatedLease() {
        let bytes = LeaseFixtures.lease(leader: LeaseFixtures.leader(name: name))
        #expect(classify(bytes, size: 8192) == .kind(.corruptLease(.truncated(size: 8192, needed: 1_025_024))))
        #expect(classify(Array(bytes.prefix(100)), size: 100) == .kind(.corruptLease(.truncated(size: 100, needed: 256))))
    }

    @Test func junkMagic() {
        let bytes = [UInt8](repeating: 0x5A, count: 4096)
        #expect(classify(bytes) == .kind(.corruptLease(.notALease(magic: 0x5A5A_5A5A))))
    }

    @Test func namesDecideBeforeAnyRead() {
        #expect(LeaseClassifier.kindWithoutReading(name: EntryName("__LIBVIRT__DISKS__")) == .lockspace)
        #expect(LeaseClassifier.kindWithoutReading(name: EntryName(String(repeating: "A", count: 32))) == .foreignFile)
        #expect(LeaseClassifier.kindWithoutReading(name: EntryName(String(repeating: "a", count: 33))) == .foreignFile)
        #expect(LeaseClassifier.kindWithoutReading(name: EntryName("x:" + String(repeating: "a", count: 30))) == .foreignFile)
        #expect(LeaseClassifier.kindWithoutReading(name: EntryName(name)) == nil)
    }

    @Test func nonRegularEntries() {
        func status(_ type: FileStatus.FileType) -> FileStatus {
            FileStatus(identity: FileIdentity(device: 1, inode: 2), type: type, size: 0, modified: 0)
        }
        #expect(LeaseClassifier.kind(ofNonRegular: status(.directory), symlinkTarget: nil) == .directory)
        #expect(LeaseClassifier.kind(ofNonRegular: status(.symlink), symlinkTarget: "/x") == .symlink(target: "/x"))
        #expect(LeaseClassifier.kind(ofNonRegular: status(.fifo), symlinkTarget: nil) == .special(.fifo))
        #expect(LeaseClassifier.kind(ofNonRegular: status(.blockDevice), symlinkTarget: nil) == .special(.blockDevice))
        #expect(LeaseClassifier.kind(ofNonRegular: status(.regular), symlinkTarget: nil) == nil)
    }
}

@Suite("Entry names")
struct EntryNameTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("new\nline", "new\\nline"),
        ("tab\there", "tab\\there"),
        ("back\\slash", "back\\\\slash"),
        ("bell\u{07}", "bell\\u{7}"),
        ("a:b c*", "a:b c*"),
        ("é", "é"),
    ])
    func escaping(raw: String, escaped: String) {
        #expect(EntryName(raw).escaped == escaped)
    }

    @Test("Control and format characters are escaped, in names and in messages")
    func controlCharacters() {
        #expect(EntryName("\u{1B}[2J").escaped == "\\u{1b}[2J")
        #expect(EntryName("a\u{9B}b").escaped == "a\\u{9b}b")
        #expect(EntryName("evil\u{202E}txt").escaped == "evil\\u{202e}txt")
        #expect(EntryName("zero\u{200B}width").escaped == "zero\\u{200b}width")
        #expect(EntryName("line\u{2028}para\u{2029}").escaped == "line\\u{2028}para\\u{2029}")
        #expect("guest\u{1B}]0;x\u{07}\\n".escapingControlCharacters() == "guest\\u{1b}]0;x\\u{7}\\n")
        #expect("line\nbreak".escapingControlCharacters() == "line\\nbreak")
    }

    @Test func invalidUTF8IsHexEscaped() {
        let name = EntryName(bytes: [0x61, 0xFF, 0x0A, 0x5C])
        #expect(name.string == nil)
        #expect(name.escaped == "a\\xff\\x0a\\x5c")
    }

    @Test func autoLeaseNames() {
        #expect(EntryName("bfa0240911bc17753e0b473688822159").isAutoLeaseName)
        #expect(!EntryName("BFA0240911BC17753E0B473688822159").isAutoLeaseName)
        #expect(!EntryName("bfa0240911bc17753e0b47368882215").isAutoLeaseName)
        #expect(!EntryName("bfa0240911bc17753e0b47368882215g").isAutoLeaseName)
        #expect(!EntryName("__LIBVIRT__DISKS__").isAutoLeaseName)
    }

    @Test func orderIsByBytes() {
        #expect([EntryName("b"), EntryName("B"), EntryName("a")].sorted() == [EntryName("B"), EntryName("a"), EntryName("b")])
    }
}
