#if canImport(Glibc)
import Glibc
#endif
import CSanlock
import SystemCalls
import SystemPackage

/// A registered connection to the sanlock daemon. Leases acquired on it
/// belong to this process; the daemon releases them if the connection closes
/// (the process dies), so a crashed janitor never leaves a lease held.
///
/// Calls on one connection must be serialised (sanlock_resource.h); use one
/// connection per thread to work in parallel.
///
/// libsanlock_client writes a request and reads its answer on the same
/// socket. When a write or a read fails half-way (EIO, ECONNRESET, a short
/// read), part of the request or of its answer stays behind: the next
/// request on the connection then waits for ever, or reads the previous
/// answer as its own ("acquired" when it was not). So after any failure
/// whose code could have come from the socket rather than from the daemon,
/// the connection is out of step and must not be used again: close it
/// (dropping it does) and register a new one.
public struct SanlockConnection: ~Copyable {
    private let socket: Int32
    private let state = State()

    private final class State {
        var inStep = true
    }

    public init() throws(SanlockError) {
        let rv = sanlock_register()
        guard rv >= 0 else { throw SanlockError(.register, code: rv) }
        socket = rv
    }

    deinit { FileDescriptor(rawValue: socket).closeIgnoringErrors() }

    /// False once a call failed in a way that may have left part of a
    /// request or an answer on the socket. Every later call then fails with
    /// -ENOTCONN without touching the socket.
    public var isInStep: Bool { state.inStep }

    /// Acquires the lease exclusively. With `ownerNoWait` (the default) a
    /// lease whose owner host stopped renewing fails at once with
    /// SANLK_ACQUIRE_OWNED_RETRY instead of blocking until the host is
    /// declared dead (8 × io_timeout + 60 s).
    public func acquire(_ resource: SanlockResource, ownerNoWait: Bool = true) throws(SanlockError) {
        guard state.inStep else { throw SanlockError(.acquire, code: -ENOTCONN) }
        let flags = ownerNoWait ? UInt32(SANLK_ACQUIRE_OWNER_NOWAIT) : 0
        let socket = self.socket
        let state = self.state
        try resource.withCResource(for: .acquire) { (res) throws(SanlockError) in
            var list: UnsafeMutablePointer<sanlk_resource>? = res
            let rv = sanlock_acquire(socket, -1, flags, 1, &list, nil)
            guard rv >= 0 else {
                state.inStep = Self.isDaemonAnswer(rv)
                throw SanlockError(.acquire, code: rv)
            }
        }
    }

    /// Releases the lease. After this process unlinked the file the daemon
    /// cannot reopen it and answers -ENOENT; callers expect that.
    public func release(_ resource: SanlockResource) throws(SanlockError) {
        guard state.inStep else { throw SanlockError(.release, code: -ENOTCONN) }
        let socket = self.socket
        let state = self.state
        try resource.withCResource(for: .release) { (res) throws(SanlockError) in
            var list: UnsafeMutablePointer<sanlk_resource>? = res
            let rv = sanlock_release(socket, -1, 0, 1, &list)
            guard rv >= 0 else {
                state.inStep = Self.isDaemonAnswer(rv)
                throw SanlockError(.release, code: rv)
            }
        }
    }

    /// Codes only the daemon sends: sanlock's own (-200 and below) and the
    /// errno values it answers with for a lease in use, gone or not a lease,
    /// or a lockspace not joined, which a blocking, connected Unix stream
    /// socket never fails with (EAGAIN would need a non-blocking socket or a
    /// timeout; libsanlock_client sets neither). Anything else (-1 for a
    /// short write, -EIO, -ECONNRESET, -EPIPE, ...) may come from the socket.
    static func isDaemonAnswer(_ code: Int32) -> Bool {
        code <= -200 || daemonErrnoAnswers.contains(-code)
    }

    private static let daemonErrnoAnswers: Set<Int32> = [EEXIST, EBUSY, EAGAIN, ENOENT, ENOSPC, EISDIR, EMSGSIZE, EINVAL]
}
