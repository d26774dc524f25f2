import Sanlock
import Synchronization

/// Carries out the `delete` verdicts, `jobs` leases at a time, each on a
/// worker's own registered sanlock connection.
struct RemovalRun: Sendable {
    let remover: LeaseRemover
    let jobs: Int
    let control: RunControl
    /// Told of each outcome as it happens (the caller logs it).
    let onOutcome: @Sendable (LeaseEntry, RemovalOutcome) -> Void

    /// One outcome per candidate, in order. A candidate's file is the one
    /// the scan held open (nil: opened again).
    func remove(_ candidates: [(LeaseEntry, LeaseFile?)], progress: (@Sendable (Int, Int) -> Void)?) -> [RemovalOutcome] {
        // Once sanlock says the lockspace is gone, stop: every further acquire
        // would fail the same way. Once the daemon did not answer, every
        // later call fails at once (DaemonDeadline): the rest are reported
        // with that error, untouched.
        let lockspaceLost = Atomic<Bool>(false)
        let done = Atomic<Int>(0)
        let (remover, control, onOutcome) = (self.remover, self.control, self.onOutcome)
        let total = candidates.count
        let work = candidates.map { Candidate(entry: $0.0, file: $0.1) }
        return parallelMap(work, workers: jobs, setUp: { WorkerConnection() }) { candidate, connection in
            let entry = candidate.entry
            let outcome: RemovalOutcome
            if let signal = control.signalNumber {
                outcome = .kept(.interrupted(signal: signal))
            } else if lockspaceLost.load(ordering: .relaxed) {
                outcome = .failed(.lockspaceNotJoined(SanlockError(.acquire, code: .noSpace)))
            } else if case .autoLease = entry.kind {
                // A connection a failed call left out of step is never used
                // again (see SanlockConnection); a failed registration is
                // retried.
                if !connection.isUsable { connection = WorkerConnection() }
                switch connection {
                case .connected(let registered):
                    outcome = remover.remove(entry, file: candidate.file, using: registered, control: control)
                case .failed(let error) where error.code == .noAnswer:
                    outcome = .failed(.daemonNotAnswering(error))
                case .failed(let error):
                    outcome = .failed(.connectionFailed(error))
                }
            } else {
                outcome = remover.removeUnacquirable(entry, file: candidate.file)
            }
            if case .failed(.lockspaceNotJoined) = outcome { lockspaceLost.store(true, ordering: .relaxed) }
            onOutcome(entry, outcome)
            let count = done.add(1, ordering: .relaxed).newValue
            progress?(count, total)
            return outcome
        }
    }
}

/// A lease to remove, with the file the scan held open for it.
private struct Candidate: Sendable {
    let entry: LeaseEntry
    let file: LeaseFile?
}

/// A worker's registered sanlock connection, or why it has none.
enum WorkerConnection: ~Copyable {
    case connected(SanlockConnection)
    case failed(SanlockError)

    init() {
        do {
            self = .connected(try SanlockConnection())
        } catch {
            self = .failed(error)
        }
    }

    var isUsable: Bool {
        switch self {
        case .connected(let connection): connection.isInStep
        case .failed: false
        }
    }
}
