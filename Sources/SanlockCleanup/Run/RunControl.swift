import Synchronization

/// What a run shares with the world outside it: the stage it is in, whether a
/// signal asked it to stop, and whether a lease is between its invalidation
/// and its unlink — the one window in which a sudden exit leaves something
/// half-done (a lease no host can acquire, still at its path).
///
/// A signal (SIGTERM from `systemctl stop` or a shutdown, SIGINT from a
/// terminal) is only recorded here: workers look at it between leases and
/// before each invalidation, and start nothing new. Whoever must end the
/// process while the run is blocked in a call (a hung daemon, a dead NFS
/// server) asks `closeIfIdle()` first, so that it never exits inside that
/// window.
public final class RunControl: Sendable {
    public enum Stage: Int, Sendable, CaseIterable, CustomStringConvertible {
        case starting
        case askingSanlock
        case scanningLeases
        case readingGuests
        case deciding
        case removingLeases
        case reporting

        public var description: String {
            switch self {
            case .starting: "starting"
            case .askingSanlock: "asking the sanlock daemon"
            case .scanningLeases: "scanning the lease directory"
            case .readingGuests: "reading libvirt's guest XML"
            case .deciding: "deciding"
            case .removingLeases: "removing leases"
            case .reporting: "reporting"
            }
        }
    }

    private let signal = Atomic<Int32>(0)
    private let currentStage = Atomic<Int>(Stage.starting.rawValue)
    /// Bit 0: the process is exiting, no window may open; the rest counts
    /// open windows (in steps of 2).
    private let windows = Atomic<Int>(0)
    private let observer: (@Sendable (Stage) -> Void)?

    /// `observer` sees every stage as the run enters it, on the run's thread
    /// (tests use it to act at a precise point of a run).
    public init(observer: (@Sendable (Stage) -> Void)? = nil) {
        self.observer = observer
    }

    /// Records the first signal; later ones change nothing.
    func request(signal number: Int32) {
        _ = signal.compareExchange(expected: 0, desired: number, ordering: .relaxed)
    }

    /// The signal that asked to stop, if any.
    var signalNumber: Int32? {
        let value = signal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    public var stage: Stage { Stage(rawValue: currentStage.load(ordering: .relaxed)) ?? .starting }

    func enter(_ stage: Stage) {
        currentStage.store(stage.rawValue, ordering: .relaxed)
        observer?(stage)
    }

    /// Opens the invalidate-to-unlink window for one lease, unless a signal
    /// asked to stop or the process is about to exit.
    func beginUnfinishableWork() -> Bool {
        var value = windows.load(ordering: .acquiring)
        while true {
            if value & 1 != 0 || signalNumber != nil { return false }
            let (exchanged, original) = windows.compareExchange(
                expected: value, desired: value + 2, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            value = original
        }
    }

    func endUnfinishableWork() {
        windows.subtract(2, ordering: .releasing)
    }

    /// When no window is open, closes the door to new ones for good and
    /// returns true: the process may then exit at once without leaving a
    /// lease half-removed. False while a lease is in its window.
    func closeIfIdle() -> Bool {
        let (exchanged, original) = windows.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing)
        return exchanged || original == 1
    }
}
