#if canImport(Glibc)
import Glibc
#endif
import CSanlock
import SystemCalls

/// Calls that ask the sanlock daemon something without holding leases. The
/// daemon is found through `SANLOCK_RUN_DIR` (default `/run/sanlock`), which
/// libsanlock_client reads on every call.
public enum SanlockClient {
    /// Asks the daemon for its version: the cheapest "is anybody there" call.
    public static func daemonVersion() throws(SanlockError) -> UInt32 {
        var version: UInt32 = 0
        var proto: UInt32 = 0
        let rv = sanlock_version(0, &version, &proto)
        guard rv >= 0 else { throw SanlockError(.version, code: rv) }
        return version
    }

    /// The lockspaces this host has joined.
    public static func lockspaces() throws(SanlockError) -> [JoinedLockspace] {
        var array: UnsafeMutablePointer<sanlk_lockspace>?
        var count: Int32 = 0
        let rv = sanlock_get_lockspaces(&array, &count, 0)
        defer { vsc_sanlock_free(array) }
        // -ENOSPC is never returned with a NULL count; a daemon without
        // lockspaces answers 0 with count 0.
        guard rv >= 0 else { throw SanlockError(.getLockspaces, code: rv) }
        guard let array, count > 0 else { return [] }
        return (0..<Int(count)).map { index in
            var lockspace = array[index]
            return JoinedLockspace(
                name: fixedString(&lockspace.name),
                hostID: lockspace.host_id,
                // Bounded by the field, not by a NUL the daemon may omit.
                path: fixedString(&lockspace.host_id_disk.path),
                offset: lockspace.host_id_disk.offset
            )
        }
    }

    /// Every host the lockspace's delta leases show, with sanlock's verdict on
    /// its liveness. Right after a join the daemon answers -EAGAIN for about a
    /// second; this retries for up to `patience` seconds.
    ///
    /// Without `hostID`, hosts whose delta lease has no timestamp (never
    /// joined, or left cleanly: FREE) are not listed; with it, that one host
    /// is returned whatever its state.
    public static func hosts(in lockspace: String, hostID: UInt64 = 0, patience: Double = 3) throws(SanlockError) -> [SanlockHost] {
        var waited = 0.0
        while true {
            var array: UnsafeMutablePointer<sanlk_host>?
            var count: Int32 = 0
            let rv = sanlock_get_hosts(lockspace, hostID, &array, &count, 0)
            defer { vsc_sanlock_free(array) }
            if SanlockCode(rawValue: rv) == .resourceTemporarilyUnavailable, waited < patience {
                Syscall.sleep(seconds: 0.1)
                waited += 0.1
                continue
            }
            guard rv >= 0 else { throw SanlockError(.getHosts, code: rv) }
            guard let array, count > 0 else { return [] }
            return (0..<Int(count)).map { index in
                let host = array[index]
                return SanlockHost(
                    hostID: host.host_id, generation: host.generation, timestamp: host.timestamp,
                    ioTimeout: host.io_timeout, state: HostState(flags: host.flags))
            }
        }
    }

    /// The lease's current holders as the daemon reads them from disk (the
    /// leader plus every host's mode block: 1 MiB of I/O per lease).
    public static func readOwners(of resource: SanlockResource) throws(SanlockError) -> ResourceOwners {
        try resource.withCResource(for: .readResourceOwners) { (res) throws(SanlockError) in
            var array: UnsafeMutablePointer<sanlk_host>?
            var count: Int32 = 0
            let rv = sanlock_read_resource_owners(res, 0, &array, &count)
            defer { vsc_sanlock_free(array) }
            guard rv >= 0 else { throw SanlockError(.readResourceOwners, code: rv) }
            let owners = (0..<(array == nil ? 0 : Int(max(0, count)))).map { index in
                let host = array![index]
                return ResourceOwner(hostID: host.host_id, generation: host.generation, timestamp: host.timestamp)
            }
            return ResourceOwners(
                owners: owners,
                shared: res.pointee.flags & UInt32(SANLK_RES_SHARED) != 0,
                lver: res.pointee.lver)
        }
    }

    /// Reads and verifies the leader through the daemon; returns its lver.
    public static func readResource(_ resource: SanlockResource) throws(SanlockError) -> UInt64 {
        try resource.withCResource(for: .readResource) { (res) throws(SanlockError) in
            let rv = sanlock_read_resource(res, 0)
            guard rv >= 0 else { throw SanlockError(.readResource, code: rv) }
            return res.pointee.lver
        }
    }

    /// Re-initialises the lease area with sanlock's "cleared" magic
    /// (`SANLK_WRITE_CLEAR`): every later acquire of this inode fails with
    /// SANLK_LEADER_MAGIC. sanlock allows it while the lease is held. The
    /// janitor does not use it: it also zeroes every host's paxos dblock,
    /// which lets a concurrent ballot commit on the cleared lease (see
    /// `LeaderRecord.invalidating`).
    public static func invalidate(_ resource: SanlockResource) throws(SanlockError) {
        try resource.withCResource(for: .writeResource) { (res) throws(SanlockError) in
            let rv = sanlock_write_resource(res, 0, 0, UInt32(SANLK_WRITE_CLEAR))
            guard rv >= 0 else { throw SanlockError(.writeResource, code: rv) }
        }
    }
}

/// Reads one of sanlock's fixed-size, NUL-padded (not always terminated)
/// name fields.
func fixedString<T>(_ field: inout T) -> String {
    withUnsafeBytes(of: &field) { bytes in
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
