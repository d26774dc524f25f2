/// A sanlock leader record decoded from disk: sector 0 of a resource (paxos)
/// lease, or sector `host_id - 1` of a lockspace (delta lease). Layout from
/// sanlock's `leader.h`, little-endian, checksum over the first 168 bytes.
///
/// Decoding never fails on content: a record with a foreign magic or a bad
/// checksum is still returned so the caller can say what is wrong with it.
public struct LeaderRecord: Sendable, Hashable {
    public static let paxosMagic: UInt32 = 0x0615_2010
    /// Written by `sanlock_write_resource(SANLK_WRITE_CLEAR)`: the lease was
    /// deliberately invalidated and can never be acquired again.
    public static let clearedMagic: UInt32 = 0x1128_2016
    public static let deltaMagic: UInt32 = 0x1221_2010
    public static let paxosVersionMajor: UInt32 = 0x0006_0000
    public static let deltaVersionMajor: UInt32 = 0x0003_0000
    /// `LFL_SHORT_HOLD`: the last acquire was the short exclusive hold of a
    /// shared acquire.
    public static let shortHoldFlag: UInt32 = 0x1
    /// Bytes a record occupies (the rest of the sector is a bitmap).
    public static let encodedSize = 256
    static let checksummedLength = 168
    public static let nameLength = 48

    public let magic: UInt32
    public let version: UInt32
    public let flags: UInt32
    public let sectorSize: UInt32
    public let numHosts: UInt64
    public let maxHosts: UInt64
    /// Host id of the owner; a released lease keeps its last owner here.
    public let ownerID: UInt64
    public let ownerGeneration: UInt64
    /// Lease version: grows by one per acquire, 0 for a lease never acquired.
    public let lver: UInt64
    public let lockspaceName: String
    public let resourceName: String
    /// Owner's timestamp; 0 means the lease is free (`LEASE_FREE`).
    public let timestamp: UInt64
    public let checksum: UInt32
    public let ioTimeout: UInt16
    public let writeID: UInt64
    public let writeGeneration: UInt64
    public let writeTimestamp: UInt64
    /// The checksum recomputed over the record's bytes matches `checksum`.
    public let checksumIsValid: Bool

    /// Decodes the first 256 bytes of `sector`; nil when fewer are given.
    public init?(sector: UnsafeRawBufferPointer) {
        guard sector.count >= Self.encodedSize else { return nil }
        magic = sector.littleEndian(at: 0)
        version = sector.littleEndian(at: 4)
        flags = sector.littleEndian(at: 8)
        sectorSize = sector.littleEndian(at: 12)
        numHosts = sector.littleEndian(at: 16)
        maxHosts = sector.littleEndian(at: 24)
        ownerID = sector.littleEndian(at: 32)
        ownerGeneration = sector.littleEndian(at: 40)
        lver = sector.littleEndian(at: 48)
        lockspaceName = sector.paddedName(at: 56, length: Self.nameLength)
        resourceName = sector.paddedName(at: 104, length: Self.nameLength)
        timestamp = sector.littleEndian(at: 152)
        checksum = sector.littleEndian(at: 168)
        ioTimeout = sector.littleEndian(at: 174)
        writeID = sector.littleEndian(at: 176)
        writeGeneration = sector.littleEndian(at: 184)
        writeTimestamp = sector.littleEndian(at: 192)
        checksumIsValid = CRC32C.checksum(
            UnsafeRawBufferPointer(rebasing: sector[0..<Self.checksummedLength])) == checksum
    }

    /// The same leader sector with sanlock's "cleared" magic and a fresh
    /// checksum: every later read of it by sanlock fails with
    /// SANLK_LEADER_MAGIC, so no host can acquire the lease again. Unlike
    /// `sanlock_write_resource(SANLK_WRITE_CLEAR)`, which re-initialises the
    /// whole lease area, this leaves the paxos dblocks alone, so a host that
    /// is in the middle of a ballot still sees the committed owner there and
    /// cannot commit itself (measured: with the dblocks zeroed it can).
    /// nil when `sector` is shorter than a leader record.
    public static func invalidating(sector: [UInt8]) -> [UInt8]? {
        guard sector.count >= encodedSize else { return nil }
        var bytes = sector
        withUnsafeBytes(of: clearedMagic.littleEndian) { bytes.replaceSubrange(0..<4, with: $0) }
        let checksum = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<checksummedLength])) }
        withUnsafeBytes(of: checksum.littleEndian) { bytes.replaceSubrange(checksummedLength..<(checksummedLength + 4), with: $0) }
        return bytes
    }

    public var isPaxosLeader: Bool { magic == Self.paxosMagic }
    public var isCleared: Bool { magic == Self.clearedMagic }
    public var isDeltaLease: Bool { magic == Self.deltaMagic }
    public var majorVersion: UInt32 { version & 0xFFFF_0000 }

    /// The lease is held exclusively by `ownerID` (also briefly during a
    /// shared acquire).
    public var isHeld: Bool { timestamp != 0 }
}

/// The mode block that follows each host's paxos dblock (at byte 128 of
/// sector `1 + host_id`); its SHARED flag marks a shared holder.
public struct ModeBlock: Sendable, Hashable {
    public static let offsetInSector = 128
    public static let sharedFlag: UInt32 = 0x1

    public let flags: UInt32
    public let generation: UInt64

    public init?(dblockSector: UnsafeRawBufferPointer) {
        guard dblockSector.count >= Self.offsetInSector + 16 else { return nil }
        flags = dblockSector.littleEndian(at: Self.offsetInSector)
        generation = dblockSector.littleEndian(at: Self.offsetInSector + 8)
    }

    public var isShared: Bool { flags & Self.sharedFlag != 0 }
}

extension UnsafeRawBufferPointer {
    func littleEndian<T: FixedWidthInteger>(at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// sanlock names are NUL-padded and not terminated when 48 bytes long.
    func paddedName(at offset: Int, length: Int) -> String {
        let field = self[offset..<(offset + length)]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: self[offset..<end], as: UTF8.self)
    }
}
