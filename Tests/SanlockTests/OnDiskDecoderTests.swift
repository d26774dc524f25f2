import Glibc
@testable import Sanlock
import TestFixtures
import Testing

@Suite("On-disk leader decoder (sectors written by sanlock)")
struct OnDiskDecoderTests {
    func leader(_ bytes: [UInt8]) throws -> LeaderRecord {
        try #require(bytes.withUnsafeBytes { LeaderRecord(sector: $0) })
    }

    @Test func neverAcquiredLease() throws {
        let record = try leader(LeaseFixtures.neverAcquired)
        #expect(record.isPaxosLeader)
        #expect(record.checksumIsValid)
        #expect(record.majorVersion == LeaderRecord.paxosVersionMajor)
        #expect(record.sectorSize == 512)
        #expect(record.numHosts == 2000 && record.maxHosts == 2000)
        #expect(record.ownerID == 0 && record.lver == 0 && !record.isHeld)
        #expect(record.lockspaceName == "__LIBVIRT__DISKS__")
        #expect(record.resourceName == "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1")
        #expect(record.checksum == 0x9311_7D62)
    }

    @Test func releasedLeaseKeepsItsLastOwner() throws {
        let record = try leader(LeaseFixtures.released)
        #expect(record.checksumIsValid)
        #expect(!record.isHeld)
        #expect(record.ownerID == 1 && record.ownerGeneration == 1 && record.lver == 1)
        #expect(record.writeID == 1 && record.writeTimestamp == 0x31B)
    }

    @Test func heldLease() throws {
        let record = try leader(LeaseFixtures.held)
        #expect(record.checksumIsValid)
        #expect(record.isHeld && record.timestamp == 0x2DD)
        #expect(record.ownerID == 1 && record.lver == 1)
    }

    @Test func sharedHolderIsInTheModeBlock() throws {
        let record = try leader(LeaseFixtures.sharedLeader)
        #expect(!record.isHeld && record.checksumIsValid)
        let mode = try #require(LeaseFixtures.sector(LeaseFixtures.sharedHost1DBlock).withUnsafeBytes { ModeBlock(dblockSector: $0) })
        #expect(mode.isShared && mode.generation == 1)
        let empty = try #require(LeaseFixtures.sector([]).withUnsafeBytes { ModeBlock(dblockSector: $0) })
        #expect(!empty.isShared)
    }

    @Test("Any flipped bit in the checksummed bytes is detected", arguments: [0, 31, 60, 104, 135, 152, 167])
    func flippedBitBreaksChecksum(offset: Int) throws {
        var bytes = LeaseFixtures.released
        bytes[offset] ^= 0x04
        #expect(try !leader(bytes).checksumIsValid)
    }

    @Test func bytesAfterTheChecksummedRangeDoNotMatter() throws {
        var bytes = LeaseFixtures.released
        bytes[200] ^= 0xFF
        #expect(try leader(bytes).checksumIsValid)
    }

    @Test func crc32cIsSanlocksVariant() {
        // Seed ~1, no final inversion: the standard CRC-32C check value of
        // "123456789" (0xE3069283) does not apply; this is sanlock's.
        let standardCheck = Array("123456789".utf8).withUnsafeBytes { ~CRC32C.checksum($0, seed: 0xFFFF_FFFF) }
        #expect(standardCheck == 0xE306_9283)
    }

    @Test func shortInputIsNotDecoded() {
        #expect([UInt8](repeating: 0, count: 255).withUnsafeBytes { LeaderRecord(sector: $0) } == nil)
    }

    @Test func lockspaceSlotsOfJoinedHosts() throws {
        let bytes = LeaseFixtures.sector(LeaseFixtures.lockspaceHost1) + LeaseFixtures.sector(LeaseFixtures.lockspaceHost2)
            + [UInt8](repeating: 0, count: 512 * 3)
        let image = try #require(bytes.withUnsafeBytes { LockspaceImage(bytes: $0) })
        #expect(image.lockspaceName == "__LIBVIRT__DISKS__")
        #expect(image.sectorSize == 512)
        #expect(image.joinedHosts.map(\.hostID) == [1, 2])
        #expect(image.joinedHosts.map(\.hostName) == ["host1", "host2"])
        #expect(image.joinedHosts[0].ioTimeout == 1)
        #expect(image.joinedHosts[0].generation == 1)
    }

    @Test func leaseIsNotALockspace() {
        #expect(LeaseFixtures.sector(LeaseFixtures.released).withUnsafeBytes { LockspaceImage(bytes: $0) } == nil)
    }

    @Test func dblockLayout() {
        #expect(PaxosLeaseLayout.dblockOffset(hostID: 1, sectorSize: 512) == 1024)
        #expect(PaxosLeaseLayout.dblockOffset(hostID: 2000, sectorSize: 512) == 2001 * 512)
        #expect(PaxosLeaseLayout.minimumSize(numHosts: 2000, sectorSize: 512) == 1_025_024)
        #expect(PaxosLeaseLayout.minimumSize(numHosts: 2000, sectorSize: 512)! <= 1 << 20)
        // Hostile values: no trap, no answer.
        #expect(PaxosLeaseLayout.dblockOffset(hostID: UInt64.max, sectorSize: 512) == nil)
        #expect(PaxosLeaseLayout.dblockOffset(hostID: UInt64(Int.max), sectorSize: 512) == nil)
        #expect(PaxosLeaseLayout.minimumSize(numHosts: UInt64.max, sectorSize: 4096) == nil)
        #expect(PaxosLeaseLayout.minimumSize(numHosts: UInt64(Int64.max) - 1, sectorSize: 4096) == nil)
    }
}

@Suite("sanlock connections")
struct SanlockConnectionTests {
    @Test("Only the daemon's own answers leave a connection usable; a failure the socket may have caused does not")
    func outOfStepCodes() {
        for code: Int32 in [-243, -247, -223, -EEXIST, -EBUSY, -EAGAIN, -ENOENT, -ENOSPC] {
            #expect(SanlockConnection.isDaemonAnswer(code), "\(code)")
        }
        // -1: a short write (send_data); the rest: send or recv failing.
        for code: Int32 in [-1, -EIO, -ECONNRESET, -EPIPE, -EINTR, -EACCES, -ENOTCONN, -EBADF] {
            #expect(!SanlockConnection.isDaemonAnswer(code), "\(code)")
        }
    }
}

@Suite("sanlock result codes")
struct SanlockCodeTests {
    @Test("Codes have sanlock's names, errno values their symbols, and match errors by pattern")
    func namesAndPatterns() {
        #expect(SanlockCode.acquireIDLive.name == "SANLK_ACQUIRE_IDLIVE")
        #expect(SanlockCode(rawValue: -243).name == "SANLK_ACQUIRE_IDLIVE")
        #expect(SanlockCode.fileExists.name == "EEXIST" && SanlockCode.fileExists.rawValue == -EEXIST)
        #expect(SanlockCode.noSpace.errno == .noSpace)
        #expect(SanlockCode.leaderMagic.errno == nil)
        #expect(SanlockCode(rawValue: -9999).name == "code -9999")
        #expect(SanlockCode(rawValue: 7).message == "unexpected result 7")
        let error = SanlockError(.acquire, code: -EEXIST)
        let matched: String = switch error {
        case SanlockCode.acquireIDLive: "idlive"
        case SanlockCode.fileExists: "exists"
        default: "other"
        }
        #expect(matched == "exists")
        #expect(error.description == "sanlock_acquire failed: File exists (EEXIST, -17)")
    }
}
