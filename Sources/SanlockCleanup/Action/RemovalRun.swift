import Logging
import Sanlock
import Synchronization

/// Carries out the `delete` verdicts, `jobs` leases at a time, each on a
/// worker's own registered sanlock connection.
struct RemovalRun: Sendable {
    let remover: LeaseRemover
    let jobs: Int
    let control: RunControl
    let logger: Logger

    /// One outcome per candidate, in order.
    func remove(_ candidates: [LeaseEntry], progress: (@Sendable (Int, Int) -> Void)?) -> [RemovalOutcome] {
        // Once sanlock says the lockspace is gone, stop: every further acquire
        // would fail the same way.
        let lockspaceLost = Atomic<Bool>(false)
        let done = Atomic<Int>(0)
        let (remover, control, logger) = (self.remover, self.control, self.logger)
        let total = candidates.count
        return parallelMap(candidates, workers: jobs, setUp: { WorkerConnection() }) { entry, connection in
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
                case .connected(let registered): outcome = remover.remove(entry, using: registered, control: control)
                case .failed(let error): outcome = .failed(.connectionFailed(error))
                }
            } else {
                outcome = remover.removeUnacquirable(entry)
            }
            if case .failed(.lockspaceNotJoined) = outcome { lockspaceLost.store(true, ordering: .relaxed) }
            logger.debug("\(entry.name.escaped): \(outcome.summary)", metadata: outcome.metadata)
            let count = done.add(1, ordering: .relaxed).newValue
            progress?(count, total)
            return outcome
        }
    }
}

extension RemovalOutcome {
    /// "deleted", or "kept"/"failed" and the reason's sentence.
    var summary: String {
        switch self {
        case .deleted: "deleted"
        case .kept(let reason): "kept: \(reason.sentence)"
        case .failed(let failure): "failed: \(failure.sentence)"
        }
    }

    var metadata: Logger.Metadata {
        switch self {
        case .deleted: ["outcome": "deleted"]
        case .kept(let reason): ["outcome": "kept", "reason": "\(reason.code)"]
        case .failed(let failure): ["outcome": "failed", "reason": "\(failure.code)"]
        }
    }
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
