#if canImport(Glibc)
import Glibc
#endif
import CSanlock
import SystemCalls

/// Calls that ask the sanlock daemon something without holding leases. The
/// daemon is found through `SANLOCK_RUN_DIR` (default `/run/sanlock`), which
/// libsanlock_client reads on every call. Each call waits for the answer at
/// most `DaemonDeadline.seconds`, then fails with `SanlockCode.noAnswer`.
public enum SanlockClient {
    /// Asks the daemon for its version: the cheapest "is anybody there" call.
    public static func daemonVersion() throws(SanlockError) -> UInt32 {
        let (rv, version) = try DaemonDeadline.call(.version) { () -> (Int32, UInt32) in
            var version: UInt32 = 0
            var proto: UInt32 = 0
            return (sanlock_version(0, &version, &proto), version)
        }
        guard rv >= 0 else { throw SanlockError(.version, code: rv) }
        return version
    }

    /// The lockspaces this host has joined or is joining or leaving
    /// (`JoinedLockspace.phase`).
    public static func lockspaces() throws(SanlockError) -> [JoinedLockspace] {
        let (rv, lockspaces) = try DaemonDeadline.call(.getLockspaces) { () -> (Int32, [JoinedLockspace]) in
            var array: UnsafeMutablePointer<sanlk_lockspace>?
            var count: Int32 = 0
            let rv = sanlock_get_lockspaces(&array, &count, 0)
            defer { vsc_sanlock_free(array) }
            // -ENOSPC is never returned with a NULL count; a daemon without
            // lockspaces answers 0 with count 0.
            guard rv >= 0, let array, count > 0 else { return (rv, []) }
            return (rv, (0..<Int(count)).map { index in
                var lockspace = array[index]
                return JoinedLockspace(
                    name: fixedString(&lockspace.name),
                    hostID: lockspace.host_id,
                    // Bounded by the field, not by a NUL the daemon may omit.
                    path: fixedString(&lockspace.host_id_disk.path),
                    offset: lockspace.host_id_disk.offset,
                    phase: JoinedLockspace.Phase(flags: lockspace.flags)
                )
            })
        }
        guard rv >= 0 else { throw SanlockError(.getLockspaces, code: rv) }
        return lockspaces
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
            let (rv, hosts) = try DaemonDeadline.call(.getHosts) { () -> (Int32, [SanlockHost]) in
                var array: UnsafeMutablePointer<sanlk_host>?
                var count: Int32 = 0
                let rv = sanlock_get_hosts(lockspace, hostID, &array, &count, 0)
                defer { vsc_sanlock_free(array) }
                guard rv >= 0, let array, count > 0 else { return (rv, []) }
                return (rv, (0..<Int(count)).map { index in
                    let host = array[index]
                    return SanlockHost(
                        hostID: host.host_id, generation: host.generation, timestamp: host.timestamp,
                        ioTimeout: host.io_timeout, state: HostState(flags: host.flags))
                })
            }
            if SanlockCode(rawValue: rv) == .resourceTemporarilyUnavailable, waited < patience {
                Syscall.sleep(seconds: 0.1)
                waited += 0.1
                continue
            }
            guard rv >= 0 else { throw SanlockError(.getHosts, code: rv) }
            return hosts
        }
    }

    /// The lease's current holders as the daemon reads them from disk (the
    /// leader plus every host's mode block: 1 MiB of I/O per lease).
    public static func readOwners(of resource: SanlockResource) throws(SanlockError) -> ResourceOwners {
        let answer = try DaemonDeadline.call(.readResourceOwners) { () -> Result<ResourceOwners, SanlockError> in
            Result { () throws(SanlockError) in
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
        }
        return try answer.get()
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
