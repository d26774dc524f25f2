import Synchronization
import SystemCalls

/// A one-line progress bar on a terminal's stderr, shown only once a run has
/// taken a couple of seconds (short runs stay clean).
public final class ProgressBar: Sendable {
    static let delay = 2.0
    private let label: String
    private let startedAt: Double
    private let shown = Mutex<Bool>(false)
    /// Set while a bar occupies the terminal's last line, so that log lines
    /// clear it first.
    static let lineDirty = Atomic<Bool>(false)

    public init(label: String) {
        self.label = label
        startedAt = ProgressBar.now()
    }

    public func update(done: Int, total: Int) {
        guard total > 0, ProgressBar.now() - startedAt >= ProgressBar.delay else { return }
        let width = 30
        let filled = min(width, done * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        shown.withLock { shown in
            writeStandardError("\r\(label) [\(bar)] \(done)/\(total)")
            shown = true
            ProgressBar.lineDirty.store(true, ordering: .relaxed)
        }
    }

    public func finish() {
        shown.withLock { shown in
            if shown { ProgressBar.clearLine() }
        }
    }

    static func clearLine() {
        if lineDirty.exchange(false, ordering: .relaxed) { writeStandardError("\r\u{1B}[K") }
    }

    private static func now() -> Double {
        Syscall.monotonicSeconds()
    }
}
