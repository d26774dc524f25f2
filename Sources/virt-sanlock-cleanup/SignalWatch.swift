import Dispatch
import Foundation
import SanlockCleanup
import Synchronization

/// SIGTERM, SIGINT and SIGHUP, handled on a queue rather than in signal
/// context: the handler records the request in the run's `RunControl`, and
/// the workers finish the lease in hand and start no other.
///
/// A run blocked in a call (a sanlock daemon that stopped answering, a dead
/// NFS server) would never look: `grace` seconds after the signal the
/// watchdog ends the process itself, as soon as no lease is between its
/// invalidation and its unlink, after `onForcedExit` said why. A run that
/// is already writing its report gets `reportingGrace` more seconds.
final class SignalWatch: Sendable {
    static let handled = [SIGTERM, SIGINT, SIGHUP]

    private let control: RunControl
    private let gate: OutputGate
    private let armed = Atomic<Bool>(false)
    private let grace: Double
    private let reportingGrace: Double
    private let onForcedExit: @Sendable (Int32) -> Void
    /// Set once by `start`, before any signal can arrive.
    nonisolated(unsafe) private var sources: [any DispatchSourceSignal] = []

    init(control: RunControl, gate: OutputGate, grace: Double = 2, reportingGrace: Double = 10,
         onForcedExit: @escaping @Sendable (Int32) -> Void) {
        self.control = control
        self.gate = gate
        self.grace = grace
        self.reportingGrace = reportingGrace
        self.onForcedExit = onForcedExit
    }

    /// Called once, from the main thread.
    func start() {
        sources = Self.handled.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in received(number) }
            source.resume()
            return source
        }
    }

    /// Called once, from the main thread, after `start`.
    func stop() {
        sources.forEach { $0.cancel() }
    }

    private func received(_ number: Int32) {
        control.request(signal: number)
        guard !armed.exchange(true, ordering: .relaxed) else { return }
        let signal = control.signalNumber ?? number
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in
            // Nothing half-done may be left: wait for the lease in hand.
            while !control.closeIfIdle() { usleep(20_000) }
            if gate.claim() {
                onForcedExit(signal)
            } else {
                // The run is writing its report: let it finish unless stdout
                // itself is stuck.
                Thread.sleep(forTimeInterval: reportingGrace)
            }
            _exit(128 + signal)
        }
    }
}

/// Who writes the final output (report, JSON document, metrics): the run,
/// or the watchdog ending a blocked run. Only one of them, once.
final class OutputGate: Sendable {
    private let claimed = Atomic<Bool>(false)

    /// True for the first caller only.
    func claim() -> Bool { !claimed.exchange(true, ordering: .acquiringAndReleasing) }
}
