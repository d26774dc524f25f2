/// The delta leases of a lockspace file, decoded from disk: one leader record
/// per host id (host N in sector N - 1). A slot whose owner generation is
/// non-zero belongs to a host that has joined the lockspace at least once.
public struct LockspaceImage: Sendable, Hashable {
    public struct Slot: Sendable, Hashable {
        public let hostID: UInt64
        /// The name the host joined with (`sanlock daemon -e NAME`).
        public let hostName: String
        public let generation: UInt64
        /// The host's own monotonic time of its last renewal (0 = left).
        public let timestamp: UInt64
        public let ioTimeout: UInt16
    }

    public let lockspaceName: String
    public let sectorSize: Int
    /// Slots of hosts that joined at least once, by host id.
    public let joinedHosts: [Slot]

    /// The name each host joined with (sanlock's `-e` host name), for the
    /// hosts that gave one.
    public var hostNames: [UInt64: String] {
        var names: [UInt64: String] = [:]
        for slot in joinedHosts where !slot.hostName.isEmpty { names[slot.hostID] = slot.hostName }
        return names
    }

    /// Decodes as many slots as `bytes` holds. Returns nil when the first
    /// sector is not a valid delta lease (not a lockspace, or corrupt).
    public init?(bytes: UnsafeRawBufferPointer) {
        guard let first = LeaderRecord(sector: bytes), first.isDeltaLease, first.checksumIsValid else { return nil }
        let sectorSize = Int(first.sectorSize)
        guard sectorSize == 512 || sectorSize == 4096 else { return nil }
        var slots: [Slot] = []
        var offset = 0
        var hostID: UInt64 = 1
        while offset + LeaderRecord.encodedSize <= bytes.count {
            let sector = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(offset + sectorSize, bytes.count)])
            if let record = LeaderRecord(sector: sector), record.isDeltaLease, record.checksumIsValid,
               record.ownerGeneration > 0 {
                slots.append(Slot(
                    hostID: hostID, hostName: record.resourceName, generation: record.ownerGeneration,
                    timestamp: record.timestamp, ioTimeout: record.ioTimeout))
            }
            offset += sectorSize
            hostID += 1
        }
        self.lockspaceName = first.lockspaceName
        self.sectorSize = sectorSize
        self.joinedHosts = slots
    }
}

/// Where a resource lease keeps each host's paxos dblock and mode block.
///
/// Every number here may come from a hostile or damaged file: the functions
/// are total (nil instead of an overflow trap) and callers bound host ids
/// and host counts by `maximumHosts` first.
public enum PaxosLeaseLayout {
    /// sanlock's largest lockspace and resource lease: 2000 hosts
    /// (`DEFAULT_MAX_HOSTS`; 512-byte sectors with 1 MiB alignment, or
    /// 4096-byte sectors with 8 MiB). No valid leader has more, and no valid
    /// host id is higher.
    public static let maximumHosts: UInt64 = 2000

    /// Byte offset of host `hostID`'s dblock sector: sector 0 is the leader,
    /// sector 1 the request record, then one sector per host id from 1.
    /// nil when it does not fit in an `Int`.
    public static func dblockOffset(hostID: UInt64, sectorSize: Int) -> Int? {
        guard let sector = Int(exactly: hostID)?.addingReportingOverflow(1), !sector.overflow else { return nil }
        let (offset, overflow) = sector.partialValue.multipliedReportingOverflow(by: sectorSize)
        return overflow ? nil : offset
    }

    /// Bytes a lease needs for the leader, the request record and `numHosts`
    /// dblocks; nil when that does not fit in an `Int64`.
    public static func minimumSize(numHosts: UInt64, sectorSize: Int) -> Int64? {
        guard let hosts = Int64(exactly: numHosts) else { return nil }
        let (sectors, o1) = hosts.addingReportingOverflow(2)
        let (bytes, o2) = sectors.multipliedReportingOverflow(by: Int64(sectorSize))
        return o1 || o2 ? nil : bytes
    }
}
