#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SystemPackage

/// A system call that failed: which one, and the errno it left. The layer's
/// only error; callers above it wrap it in their own (`FileSystemError`,
/// `XMLError`, ...) and keep it as the cause.
public struct SystemCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The C function as the layer called it (`openat`, `pread`, ...).
    public let systemCall: String
    public let errno: Errno

    public init(_ systemCall: String, errno: Errno) {
        self.systemCall = systemCall
        self.errno = errno
    }

    public var description: String { "\(systemCall): \(errno)" }
}

/// The funnel every call of this layer goes through: it makes the call,
/// reads errno right after a failure (before anything else can change it),
/// and retries on EINTR only when asked.
///
/// Retrying is the caller's choice, call by call, because it is part of the
/// janitor's behaviour: the loops that move bytes (read, write, pread,
/// pwrite) and sleeps retry, as they always have; every other call reports
/// EINTR like any error. The janitor installs no signal handler (SIGPIPE is
/// ignored, the others are blocked and taken by `sigwait`), so EINTR is
/// rare in practice, and fault injection tests both paths.
///
/// `failure` says how the call reports an error: the errno value, or nil
/// when the result is a success. In debug builds a test can fail any call
/// here without making it (`InjectedFaults`).
func systemCall<Value>(
    _ name: StaticString, retryOnInterrupt: Bool = false,
    failure: (Value) -> Int32?, _ call: () -> Value
) -> Result<Value, SystemCallError> {
    while true {
        #if DEBUG
        if let code = InjectedFaults.current?.errnoToInject(for: "\(name)") {
            if retryOnInterrupt, code == EINTR { continue }
            return .failure(SystemCallError("\(name)", errno: Errno(rawValue: code)))
        }
        #endif
        let value = call()
        guard let code = failure(value) else { return .success(value) }
        if retryOnInterrupt, code == EINTR { continue }
        return .failure(SystemCallError("\(name)", errno: Errno(rawValue: code)))
    }
}

/// Calls that return -1 and set errno.
func valueOrErrno<Value: FixedWidthInteger>(
    _ name: StaticString, retryOnInterrupt: Bool = false, _ call: () -> Value
) -> Result<Value, SystemCallError> {
    systemCall(name, retryOnInterrupt: retryOnInterrupt, failure: { $0 == -1 ? Glibc.errno : nil }, call)
}

/// Calls that return NULL and set errno. With `nullAtEnd` (readdir), NULL
/// with errno left at 0 is the end, not a failure.
func pointerOrErrno<Pointer>(
    _ name: StaticString, nullAtEnd: Bool = false, _ call: () -> Pointer?
) -> Result<Pointer?, SystemCallError> {
    systemCall(name, failure: { $0 == nil && (!nullAtEnd || Glibc.errno != 0) ? Glibc.errno : nil }) {
        if nullAtEnd { Glibc.errno = 0 }
        return call()
    }
}

/// pthread calls and sigwait, which return the error number itself.
func zeroOrErrorNumber(_ name: StaticString, _ call: () -> Int32) -> Result<Void, SystemCallError> {
    systemCall(name, failure: { $0 == 0 ? nil : $0 }, call).map { _ in () }
}

/// The one conversion of a path or a name (bytes, as Linux has them: not
/// necessarily UTF-8) to the NUL-terminated string a system call takes. A
/// NUL inside ends the string there, as it would for the kernel.
func withCString<Value>(_ bytes: some Sequence<UInt8>, _ body: (UnsafePointer<CChar>) -> Value) -> Value {
    var terminated = Array(bytes)
    terminated.append(0)
    return terminated.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
    }
}
