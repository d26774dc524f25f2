#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import CLinux

/// A set of signals, to block (`pthread_sigmask`) and to wait for
/// (`sigwait`) on a thread of its own rather than in signal context.
public struct SignalSet: @unchecked Sendable {
    private var set = sigset_t()

    public init(_ signals: [Int32]) {
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
    }

    /// Blocks the signals in the calling thread, and so in every thread made after it.
    public func block() {
        var set = set
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    public func unblock() {
        var set = set
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// `sigwait`: the first of the (blocked) signals to arrive, asked again
    /// until it says one.
    public func wait() -> Int32 {
        var set = set
        var number: Int32 = 0
        while case .failure = zeroOrErrorNumber("sigwait", { sigwait(&set, &number) }) {}
        return number
    }
}

/// A joinable pthread. pthreads rather than Foundation's `Thread` or
/// Dispatch: when a thread cannot be made, this says so (nil) instead of
/// never running the work or aborting the process.
public struct JoinableThread: Sendable {
    private let thread: pthread_t

    /// The closure a new thread runs, passed through pthread_create's pointer.
    private final class Start {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `run` on a new thread with a stack of `stackSize` bytes; nil
    /// when none can be made.
    public static func start(stackSize: Int, _ run: @escaping @Sendable () -> Void) -> JoinableThread? {
        var attributes = pthread_attr_t()
        guard pthread_attr_init(&attributes) == 0 else { return nil }
        defer { pthread_attr_destroy(&attributes) }
        _ = pthread_attr_setstacksize(&attributes, stackSize)
        let start = Unmanaged.passRetained(Start(run))
        var thread = pthread_t()
        let created = zeroOrErrorNumber("pthread_create") {
            pthread_create(&thread, &attributes, { pointer in
                Unmanaged<Start>.fromOpaque(pointer!).takeRetainedValue().run()
                return nil
            }, start.toOpaque())
        }
        guard case .success = created else {
            start.release()
            return nil
        }
        return JoinableThread(thread: thread)
    }

    /// `pthread_join`: waits for the thread to end.
    public func join() {
        pthread_join(thread, nil)
    }
}

extension JoinableThread {
    /// Starts `run` on a detached thread (nobody joins it: its resources go
    /// when it ends, or with the process); false when none can be made.
    public static func startDetached(stackSize: Int, _ run: @escaping @Sendable () -> Void) -> Bool {
        guard let thread = start(stackSize: stackSize, run) else { return false }
        thread.detach()
        return true
    }

    private func detach() {
        pthread_detach(thread)
    }
}

/// A one-time signal from one thread to another, with a bounded wait: a
/// POSIX semaphore, waited on against the monotonic clock (`sem_clockwait`),
/// so that a change of the wall clock neither shortens nor stretches the
/// wait.
public final class Completion: @unchecked Sendable {
    private let semaphore: UnsafeMutablePointer<sem_t>

    public init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// Called once, by the thread that finished.
    public func signal() {
        sem_post(semaphore)
    }

    /// True when `signal()` was called within `seconds`; waits through
    /// interruptions, for what is left of the time only.
    public func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let whole = seconds.rounded(.down)
        var deadline = timespec(tv_sec: now.tv_sec + Int(whole), tv_nsec: now.tv_nsec + Int((seconds - whole) * 1e9))
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        let result = valueOrErrno("sem_clockwait", retryOnInterrupt: true) {
            clinux_sem_wait_monotonic(semaphore, &deadline)
        }
        if case .success = result { return true }
        return false
    }
}
