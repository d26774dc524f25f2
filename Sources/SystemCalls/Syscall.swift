#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SystemPackage

/// The calls that take a path rather than a descriptor, and those about
/// the process itself: its id, its user, other processes, signals, time.
public enum Syscall {
    /// `stat`, or `lstat` when `followSymlinks` is false.
    public static func status(ofPath path: some Sequence<UInt8>, followSymlinks: Bool = true) throws(SystemCallError) -> Stat {
        var status = Glibc.stat()
        let result = withCString(path) { path in
            followSymlinks
                ? valueOrErrno("stat") { stat(path, &status) }
                : valueOrErrno("lstat") { lstat(path, &status) }
        }
        return try result.map { _ in Stat(rawValue: status) }.get()
    }

    /// `mkdir`.
    public static func makeDirectory(atPath path: some Sequence<UInt8>, permissions: FilePermissions) throws(SystemCallError) {
        _ = try withCString(path) { path in valueOrErrno("mkdir") { mkdir(path, permissions.rawValue) } }.get()
    }

    /// `rename`: replaces the name `to`, never writing through what it named.
    public static func rename(fromPath old: some Sequence<UInt8>, toPath new: some Sequence<UInt8>) throws(SystemCallError) {
        _ = try withCString(old) { old in
            withCString(new) { new in valueOrErrno("rename") { Glibc.rename(old, new) } }
        }.get()
    }

    /// `unlink`.
    public static func unlink(path: some Sequence<UInt8>) throws(SystemCallError) {
        _ = try withCString(path) { path in valueOrErrno("unlink") { Glibc.unlink(path) } }.get()
    }

    /// `getcwd`, cut at PATH_MAX bytes.
    public static func currentDirectory() throws(SystemCallError) -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        _ = try buffer.withUnsafeMutableBufferPointer { buffer in
            pointerOrErrno("getcwd") { getcwd(buffer.baseAddress, buffer.count) }
        }.get()
        return buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
    }

    /// `getpid`, which cannot fail.
    public static func processID() -> Int32 { getpid() }

    /// `geteuid`, which cannot fail.
    public static func effectiveUserID() -> UserID { UserID(rawValue: geteuid()) }

    /// `kill(pid, 0)`: whether a signal could be sent, sending none. The
    /// caller decides what ESRCH and EPERM mean.
    public static func probeProcess(_ pid: Int32) throws(SystemCallError) {
        _ = try valueOrErrno("kill") { kill(pid, 0) }.get()
    }

    /// `signal(number, SIG_IGN)`.
    public static func ignoreSignal(_ number: Int32) {
        _ = signal(number, SIG_IGN)
    }

    /// `clock_gettime(CLOCK_MONOTONIC)`, in seconds.
    public static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// `nanosleep` for `seconds`, through interruptions: the kernel writes
    /// what is left over the request, so each retry sleeps only the rest.
    public static func sleep(seconds: Double) {
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        withUnsafeMutablePointer(to: &time) { time in
            _ = valueOrErrno("nanosleep", retryOnInterrupt: true) { nanosleep(time, time) }
        }
    }

    /// `setrlimit(RLIMIT_NOFILE)`: raises the soft limit on open files to
    /// the hard one (which only root could raise further) and returns the
    /// soft limit in force afterwards.
    public static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)  // RLIM_INFINITY is the largest rlim_t: clamped to Int.max
    }

    /// `getenv`.
    public static func environmentVariable(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// `gmtime_r`: the UTC calendar time of a whole number of seconds since
    /// the epoch; nil when glibc cannot represent it.
    public static func utcCalendarTime(secondsSinceEpoch seconds: Int64) -> CalendarTime? {
        guard var time = time_t(exactly: seconds) else { return nil }
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return nil }
        return CalendarTime(
            year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday),
            hour: Int(parts.tm_hour), minute: Int(parts.tm_min), second: Int(parts.tm_sec))
    }

    /// `exit`: atexit handlers run, stdio is flushed.
    public static func exit(_ status: Int32) -> Never { Glibc.exit(status) }

    /// `_exit`: ends the process at once, from any thread, running nothing.
    public static func exitImmediately(_ status: Int32) -> Never { _exit(status) }
}

/// A broken-down UTC time, as `gmtime_r` gives it (month and day from 1).
public struct CalendarTime: Sendable, Hashable {
    public let year, month, day, hour, minute, second: Int
}
