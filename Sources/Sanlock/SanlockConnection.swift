#if canImport(Glibc)
import Glibc
#endif
import CSanlock

/// A registered connection to the sanlock daemon. Leases acquired on it
/// belong to this process; the daemon releases them if the connection closes
/// (the process dies), so a crashed janitor never leaves a lease held.
///
/// Calls on one connection must be serialised (sanlock_resource.h); use one
/// connection per thread to work in parallel.
public struct SanlockConnection: ~Copyable {
    private let socket: Int32

    public init() throws(SanlockError) {
        let rv = sanlock_register()
        guard rv >= 0 else { throw SanlockError(.register, code: rv) }
        socket = rv
    }

    deinit { close(socket) }

    /// Acquires the lease exclusively. With `ownerNoWait` (the default) a
    /// lease whose owner host stopped renewing fails at once with
    /// SANLK_ACQUIRE_OWNED_RETRY instead of blocking until the host is
    /// declared dead (8 × io_timeout + 60 s).
    public func acquire(_ resource: SanlockResource, ownerNoWait: Bool = true) throws(SanlockError) {
        let flags = ownerNoWait ? UInt32(SANLK_ACQUIRE_OWNER_NOWAIT) : 0
        let socket = self.socket
        try resource.withCResource(for: .acquire) { (res) throws(SanlockError) in
            var list: UnsafeMutablePointer<sanlk_resource>? = res
            let rv = sanlock_acquire(socket, -1, flags, 1, &list, nil)
            guard rv >= 0 else { throw SanlockError(.acquire, code: rv) }
        }
    }

    /// Releases the lease. After this process unlinked the file the daemon
    /// cannot reopen it and answers -ENOENT; callers expect that.
    public func release(_ resource: SanlockResource) throws(SanlockError) {
        let socket = self.socket
        try resource.withCResource(for: .release) { (res) throws(SanlockError) in
            var list: UnsafeMutablePointer<sanlk_resource>? = res
            let rv = sanlock_release(socket, -1, 0, 1, &list)
            guard rv >= 0 else { throw SanlockError(.release, code: rv) }
        }
    }
}
