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
public enum PaxosLeaseLayout {
    /// Byte offset of host `hostID`'s dblock sector: sector 0 is the leader,
    /// sector 1 the request record, then one sector per host id from 1.
    public static func dblockOffset(hostID: UInt64, sectorSize: Int) -> Int {
        (1 + Int(hostID)) * sectorSize
    }

    /// Bytes a lease needs for the leader, the request record and `numHosts`
    /// dblocks.
    public static func minimumSize(numHosts: UInt64, sectorSize: Int) -> Int64 {
        Int64(2 + numHosts) * Int64(sectorSize)
    }
}
