// The on-disk decoder: LeaderRecord, ModeBlock and LockspaceImage over
// arbitrary bytes (a lease's or a lockspace file's first sectors).
import FuzzSupport
import Sanlock

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLeader(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    input.withUnsafeBytes(decodeEverything)
    // The same bytes with valid checksums, for 512- and 4096-byte sectors:
    // LockspaceImage reads nothing past an invalid first checksum.
    for sectorSize in [512, 4096] where input.count >= LeaderChecksum.coveredLength + 4 {
        var fixed = input
        LeaderChecksum.fixAll(&fixed, sectorSize: sectorSize)
        fixed.withUnsafeBytes(decodeEverything)
    }
    return 0
}

private func decodeEverything(_ bytes: UnsafeRawBufferPointer) {
    if let leader = LeaderRecord(sector: bytes) {
        invariant(bytes.count >= LeaderRecord.encodedSize, "decoded a leader from \(bytes.count) bytes")
        invariant(leader.lockspaceName.utf8.count <= 48 * 3 && leader.resourceName.utf8.count <= 48 * 3,
                  "a 48-byte name decoded to more text than U+FFFD for every byte")
        checkInvalidation(of: bytes, leader: leader)
    } else {
        invariant(bytes.count < LeaderRecord.encodedSize, "no leader from \(bytes.count) bytes")
    }
    // Every sector may be a dblock with a mode block at byte 128.
    for offset in stride(from: 0, to: bytes.count, by: 512) {
        _ = ModeBlock(dblockSector: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
    }
    if let image = LockspaceImage(bytes: bytes) {
        invariant(image.sectorSize == 512 || image.sectorSize == 4096, "sector size \(image.sectorSize)")
        let slots = UInt64((bytes.count + image.sectorSize - 1) / image.sectorSize)
        var previous: UInt64 = 0
        for slot in image.joinedHosts {
            invariant(slot.hostID > previous && slot.hostID <= slots, "host id \(slot.hostID) out of order or past \(slots) sectors")
            invariant(slot.generation > 0, "a slot that never joined is listed")
            previous = slot.hostID
        }
    }
}

/// `invalidating` must give a record that reads back as cleared, with a
/// valid checksum and every other field unchanged.
private func checkInvalidation(of bytes: UnsafeRawBufferPointer, leader: LeaderRecord) {
    guard let cleared = LeaderRecord.invalidating(sector: Array(bytes)) else {
        invariant(false, "invalidating refused \(bytes.count) bytes")
        return
    }
    invariant(cleared.count == bytes.count, "invalidating changed the length")
    guard let record = cleared.withUnsafeBytes({ LeaderRecord(sector: $0) }) else {
        invariant(false, "the invalidated sector does not decode")
        return
    }
    invariant(record.isCleared && record.checksumIsValid, "the invalidated sector is not a valid cleared leader")
    invariant(record.lver == leader.lver && record.ownerID == leader.ownerID
              && record.resourceName == leader.resourceName && record.numHosts == leader.numHosts,
              "invalidating changed more than the magic and checksum")
}
