#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemCalls

/// SIGTERM, SIGINT and SIGHUP, taken by a thread of their own with
/// `sigwait`, not in signal context: the thread records the request in the
/// run's `RunControl`, and the workers finish the lease in hand and start no
/// other.
///
/// A run blocked in a call (a sanlock daemon that stopped answering, a dead
/// NFS server) would never look: `grace` seconds after the signal the watch
/// ends the process itself, as soon as no lease is between its invalidation
/// and its unlink, after `onForcedExit` said why. A run that is already
/// writing its report gets `reportingGrace` more seconds.
///
/// No Dispatch: its signal sources need an epoll instance, and libdispatch
/// aborts the process when it cannot make one.
public final class SignalWatch: Sendable {
    static let handled = [SIGTERM, SIGINT, SIGHUP]

    private let control: RunControl
    private let gate: OutputGate
    private let grace: Double
    private let reportingGrace: Double
    private let onForcedExit: @Sendable (Int32) -> Void

    public init(control: RunControl, gate: OutputGate, grace: Double = 2, reportingGrace: Double = 10,
                onForcedExit: @escaping @Sendable (Int32) -> Void) {
        self.control = control
        self.gate = gate
        self.grace = grace
        self.reportingGrace = reportingGrace
        self.onForcedExit = onForcedExit
    }

    /// Blocks the handled signals in the calling thread, and so in every
    /// thread made after it. Call it first thing in `main`: a signal that
    /// arrives before the watch runs then waits for it instead of ending the
    /// process with its default action.
    public static func blockHandledSignals() {
        handledSet().block()
    }

    /// Starts the thread that waits for the signals. When no thread can be
    /// made, the signals are unblocked again: they then end the process at
    /// once, as if the janitor did not handle them (returns false).
    @discardableResult
    public func start() -> Bool {
        let started = startThread { [self] in
            received(Self.handledSet().wait())
        }
        guard started != nil else {
            Self.handledSet().unblock()
            return false
        }
        return true
    }

    private static func handledSet() -> SignalSet {
        SignalSet(handled)
    }

    /// Later signals stay blocked and pending: the first one decides.
    private func received(_ signal: Int32) {
        control.request(signal: signal)
        sleep(seconds: grace)
        // Nothing half-done may be left: wait for the lease in hand.
        while !control.closeIfIdle() { sleep(seconds: 0.02) }
        if gate.claim() {
            onForcedExit(signal)
        } else {
            // The run is writing its report: let it finish unless stdout
            // itself is stuck.
            sleep(seconds: reportingGrace)
        }
        Syscall.exitImmediately(128 + signal)
    }

    private func sleep(seconds: Double) {
        Syscall.sleep(seconds: seconds)
    }
}

/// Who writes the final output (report, JSON document, metrics): the run,
/// or the watch ending a blocked run. Only one of them, once.
public final class OutputGate: Sendable {
    private let claimed = Atomic<Bool>(false)

    public init() {}

    /// True for the first caller only.
    public func claim() -> Bool { !claimed.exchange(true, ordering: .acquiringAndReleasing) }
}
