import CMD5

/// libvirt's auto disk lease naming (`virLockManagerSanlockAddDisk` in
/// `src/locking/lock_driver_sanlock.c`, fed by `virDomainLockManagerAddImage`
/// in `src/locking/domain_lock.c`).
enum DiskLeaseName {
    /// The lowercase hex MD5 of the path's UTF-8 bytes, exactly as written:
    /// no realpath, no normalisation (Unicode NFC and NFD spellings of a name
    /// are different leases, although Swift calls the strings equal).
    static func forSourcePath(_ path: String) -> String {
        var context = MD5_CTX()
        var digest = [UInt8](repeating: 0, count: Int(MD5_DIGEST_LENGTH))
        MD5Init(&context)
        let bytes = Array(path.utf8)
        MD5Update(&context, bytes, bytes.count)
        MD5Final(&digest, &context)
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(32)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// The lease libvirt creates for this disk, or `nil` when it creates
    /// none: only the top image of a writable (shareable included) disk whose
    /// storage is a local file, block device or directory with a non-empty
    /// path. Backing images, read-only disks (every cdrom), network, nvme,
    /// vhostuser/vhostvdpa and untranslated volume disks get none.
    static func leaseName(for disk: GuestDisk) -> String? {
        guard let type = disk.lockedStorageType, let path = disk.sourcePath else { return nil }
        return leaseName(storageType: type, path: path, readonly: disk.readonly)
    }

    static func leaseName(storageType: String, path: String, readonly: Bool) -> String? {
        guard !readonly, !path.isEmpty, leasedStorageTypes.contains(storageType) else { return nil }
        return forSourcePath(path)
    }

    /// `VIR_STORAGE_TYPE_FILE`, `_BLOCK` and `_DIR`: the only actual types
    /// `virDomainLockManagerAddImage` hands to the lock manager.
    static let leasedStorageTypes: Set<String> = ["file", "block", "dir"]
}
