import Synchronization

/// A request to stop, from a signal (SIGTERM from `systemctl stop` or a
/// shutdown, SIGINT from a terminal). Workers finish the lease in hand —
/// stopping between invalidating and unlinking a lease would leave one that
/// libvirt cannot use — and start no other.
public final class Interruption: Sendable {
    private let signal = Atomic<Int32>(0)

    public init() {}

    /// Records the first signal; later ones change nothing.
    public func request(signal number: Int32) {
        _ = signal.compareExchange(expected: 0, desired: number, ordering: .relaxed)
    }

    /// The signal that asked to stop, if any.
    public var signalNumber: Int32? {
        let value = signal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }
}
