import Sanlock

/// Says what a lease-directory entry is from its name, its `fstatat` result
/// and the first bytes of the file: pure, so every rule is unit-tested
/// without a disk or a daemon.
struct LeaseClassifier: Sendable {
    /// The lockspace libvirt's auto disk leases live in; also the name of its
    /// file in the lease directory.
    static let lockspaceName = "__LIBVIRT__DISKS__"
    /// Enough for the leader, the request record and the dblocks of hosts
    /// 1...6 with 512-byte sectors: one read serves most clusters.
    static let initialReadLength = 4096

    /// Host ids whose mode blocks may mark a shared holder: those that ever
    /// joined the lockspace. nil: every host id up to the lease's num_hosts
    /// (reads the whole lease; used when the lockspace file is unreadable).
    let probeHostIDs: [UInt64]?

    /// Duplicates are dropped: each host's mode block is read once, and a
    /// shared holder listed once (found by fuzzing).
    public init(probeHostIDs: [UInt64]?) {
        self.probeHostIDs = probeHostIDs.map { Set($0).sorted() }
    }

    enum Result: Sendable, Hashable {
        case kind(EntryKind)
        /// Call again with at least this many bytes from the file's start.
        case needsBytes(Int)
    }

    /// What a non-regular entry is; nil for regular files.
    public static func kind(ofNonRegular status: FileStatus, symlinkTarget: @autoclosure () -> String?) -> EntryKind? {
        switch status.type {
        case .regular: nil
        case .directory: .directory
        case .symlink: .symlink(target: symlinkTarget())
        default: .special(status.type)
        }
    }

    /// Regular files that are not auto-lease candidates need no read at all.
    static func kindWithoutReading(name: EntryName) -> EntryKind? {
        if name.string == lockspaceName { return .lockspace }
        if !name.isAutoLeaseName { return .foreignFile }
        return nil
    }

    /// Classifies a regular file with an auto-lease name from its first bytes.
    func classify(name: EntryName, size: Int64, prefix: [UInt8]) -> Result {
        prefix.withUnsafeBytes { bytes in classify(name: name, size: size, bytes: bytes) }
    }

    /// Every field that sizes a read, an array or an offset is checked
    /// against sanlock's own limits before any arithmetic: the directory is
    /// shared, and a file any host's root writes must not stop the run.
    func classify(name: EntryName, size: Int64, bytes: UnsafeRawBufferPointer) -> Result {
        if size == 0 || bytes.allSatisfy({ $0 == 0 }) {
            return .kind(.uninitialisedLease)
        }
        guard let leader = LeaderRecord(sector: bytes) else {
            return .kind(.corruptLease(.truncated(size: size, needed: Int64(LeaderRecord.encodedSize))))
        }
        if leader.isCleared { return .kind(.clearedLease(ClearedLease(leader, name: name))) }
        guard leader.isPaxosLeader else { return .kind(.corruptLease(.notALease(magic: leader.magic))) }
        guard leader.checksumIsValid else { return .kind(.corruptLease(.badChecksum(stored: leader.checksum))) }
        guard leader.majorVersion == LeaderRecord.paxosVersionMajor else {
            return .kind(.corruptLease(.unsupportedVersion(leader.version)))
        }
        guard leader.lockspaceName == Self.lockspaceName else {
            return .kind(.corruptLease(.wrongLockspace(leader.lockspaceName)))
        }
        guard leader.resourceName == name.string else {
            return .kind(.corruptLease(.wrongResourceName(leader.resourceName)))
        }
        let sectorSize = Int(leader.sectorSize)
        guard sectorSize == 512 || sectorSize == 4096 else {
            return .kind(.corruptLease(.outOfRange(field: "sector_size", value: UInt64(leader.sectorSize))))
        }
        // sanlock never writes num_hosts 0 (init turns 0 into max_hosts) nor
        // more than 2000, and no host id above 2000 can own a lease.
        guard (1...PaxosLeaseLayout.maximumHosts).contains(leader.numHosts) else {
            return .kind(.corruptLease(.outOfRange(field: "num_hosts", value: leader.numHosts)))
        }
        guard leader.ownerID <= PaxosLeaseLayout.maximumHosts else {
            return .kind(.corruptLease(.outOfRange(field: "owner_id", value: leader.ownerID)))
        }
        // Bounded above: at most 2002 sectors of 4096 bytes.
        let needed = PaxosLeaseLayout.minimumSize(numHosts: leader.numHosts, sectorSize: sectorSize)!
        guard size >= needed else { return .kind(.corruptLease(.truncated(size: size, needed: needed))) }

        let candidates = (probeHostIDs ?? Array(1...leader.numHosts)).filter { $0 >= 1 && $0 <= leader.numHosts }
        if let highest = candidates.last {
            let end = PaxosLeaseLayout.dblockOffset(hostID: highest, sectorSize: sectorSize)! + sectorSize
            if bytes.count < end { return .needsBytes(end) }
        }
        var shared: [ResourceOwner] = []
        for hostID in candidates {
            let offset = PaxosLeaseLayout.dblockOffset(hostID: hostID, sectorSize: sectorSize)!
            let sector = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + sectorSize)])
            guard let mode = ModeBlock(dblockSector: sector), mode.isShared else { continue }
            // While a shared acquire briefly holds the leader, its owner also
            // has the flag set; sanlock counts that host once, as owner.
            if leader.isHeld, hostID == leader.ownerID { continue }
            shared.append(ResourceOwner(hostID: hostID, generation: mode.generation, timestamp: 0))
        }
        return .kind(.autoLease(LeaseState(
            ownerID: leader.ownerID, ownerGeneration: leader.ownerGeneration, lver: leader.lver,
            held: leader.isHeld, sharedHolders: shared)))
    }
}
