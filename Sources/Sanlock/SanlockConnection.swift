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
///
/// Every call waits for the daemon at most `DaemonDeadline.seconds`. A call
/// that got no answer in time leaves its request on the socket and a thread
/// blocked on it: the connection is then out of step for good, and its
/// socket is never closed by this process (the blocked thread may still
/// read or write that descriptor number, which a close would let the
/// process reuse for another file). The daemon releases whatever the
/// connection held when the process exits.
public struct SanlockConnection: ~Copyable {
    private let socket: Int32
    private let state = State()

    private final class State: @unchecked Sendable {
        var inStep = true
        /// A call on the socket did not answer in time (see above).
        var abandoned = false
    }

    public init() throws(SanlockError) {
        let rv = try DaemonDeadline.call(.register) { sanlock_register() }
        guard rv >= 0 else { throw SanlockError(.register, code: rv) }
        socket = rv
    }

    deinit {
        if !state.abandoned { FileDescriptor(rawValue: socket).closeIgnoringErrors() }
    }

    /// False once a call failed in a way that may have left part of a
    /// request or an answer on the socket. Every later call then fails with
    /// -ENOTCONN without touching the socket.
    public var isInStep: Bool { state.inStep }

    /// Acquires the lease exclusively. With `ownerNoWait` (the default) a
    /// lease whose owner host stopped renewing fails at once with
    /// SANLK_ACQUIRE_OWNED_RETRY instead of blocking until the host is
    /// declared dead (8 × io_timeout + 60 s).
    public func acquire(_ resource: SanlockResource, ownerNoWait: Bool = true) throws(SanlockError) {
        let flags = ownerNoWait ? UInt32(SANLK_ACQUIRE_OWNER_NOWAIT) : 0
        let socket = self.socket
        try call(.acquire, on: resource) { (res) in
            var list: UnsafeMutablePointer<sanlk_resource>? = res
            return sanlock_acquire(socket, -1, flags, 1, &list, nil)
        }
    }

    /// Releases the lease. After this process unlinked the file the daemon
    /// cannot reopen it and answers -ENOENT; callers expect that.
    public func release(_ resource: SanlockResource) throws(SanlockError) {
        let socket = self.socket
        try call(.release, on: resource) { (res) in
            var list: UnsafeMutablePointer<sanlk_resource>? = res
            return sanlock_release(socket, -1, 0, 1, &list)
        }
    }

    /// One request and its answer on the socket, within the deadline; the
    /// C resource lives on the call's own thread, which may outlive a
    /// deadline.
    private func call(
        _ operation: SanlockOperation, on resource: SanlockResource,
        _ request: @escaping @Sendable (UnsafeMutablePointer<sanlk_resource>) -> Int32
    ) throws(SanlockError) {
        let state = self.state
        guard state.inStep else { throw SanlockError(operation, code: -ENOTCONN) }
        let answer: Result<Int32, SanlockError>
        do {
            answer = try DaemonDeadline.call(operation) { () -> Result<Int32, SanlockError> in
                Result { () throws(SanlockError) in
                    try resource.withCResource(for: operation) { (res) throws(SanlockError) in request(res) }
                }
            }
        } catch {
            state.inStep = false
            state.abandoned = true
            throw error
        }
        // A resource that could not be prepared never reached the socket.
        let rv = try answer.get()
        guard rv >= 0 else {
            state.inStep = Self.isDaemonAnswer(rv)
            throw SanlockError(operation, code: rv)
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
