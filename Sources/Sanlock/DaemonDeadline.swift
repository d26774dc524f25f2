import Synchronization
import SystemCalls

/// The longest any call waits for the sanlock daemon's answer.
///
/// A daemon stuck on its storage (or stopped) accepts connections and never
/// answers, and libsanlock_client sets no timeout on its sockets: a call
/// would wait for ever, and with it a cron job, a timer's unit, and every
/// later run queued behind them. So each call runs on a thread of its own
/// and its caller waits at most `seconds`. A call that has not answered by
/// then fails with `SanlockCode.noAnswer`, and so does every later call of
/// the process, at once; its thread is left blocked (the process ends soon
/// after), and whatever it holds — a registered connection, a lease the
/// daemon may still grant — is the daemon's to release when the process
/// exits and the connection closes.
///
/// A deadline is always safe to hit: nothing is invalidated or unlinked
/// before an acquire has answered on the caller's thread.
public enum DaemonDeadline {
    /// 60 s by default: the daemon answers queries at once (from memory), and
    /// an acquire within a few of its io_timeouts (10 s by default) even on
    /// slow shared storage.
    public static let defaultSeconds = 60.0

    private static let milliseconds = Atomic<Int>(Int(defaultSeconds * 1000))

    /// Set once any call went unanswered: from then on every call fails at
    /// once with `noAnswer`, so that a run whose daemon stopped answering
    /// ends within one deadline, not one per call it still had to make.
    private static let lapsed = Atomic<Bool>(false)

    /// Whether a call of this process went unanswered.
    public static var hasLapsed: Bool { lapsed.load(ordering: .relaxed) }

    /// Set once, at start (`--daemon-timeout`).
    public static var seconds: Double {
        get { Double(milliseconds.load(ordering: .relaxed)) / 1000 }
        set { milliseconds.store(max(1, Int(newValue * 1000)), ordering: .relaxed) }
    }

    /// The answer holder: written by the call's thread, read by the caller
    /// once the completion said it is there.
    private final class Answer<Value: Sendable>: Sendable {
        let value = Mutex<Value?>(nil)
        let completion = Completion()
    }

    /// Runs `call` (one whole exchange with the daemon, which owns every
    /// buffer it uses) on a detached thread and waits for it at most
    /// `seconds`. When no thread can be made, `call` runs here, unbounded:
    /// the run then behaves as it did before deadlines existed, rather than
    /// not at all.
    static func call<Value: Sendable>(
        _ operation: SanlockOperation, _ call: @escaping @Sendable () -> Value
    ) throws(SanlockError) -> Value {
        if hasLapsed { throw SanlockError(operation, code: .noAnswer) }
        let answer = Answer<Value>()
        let started = JoinableThread.startDetached(stackSize: 256 << 10) {
            let value = call()
            answer.value.withLock { $0 = value }
            answer.completion.signal()
        }
        guard started else { return call() }
        guard answer.completion.wait(seconds: seconds) else {
            lapsed.store(true, ordering: .relaxed)
            throw SanlockError(operation, code: .noAnswer)
        }
        return answer.value.withLock { $0! }
    }
}
