import Synchronization
import SystemCalls
import SystemPackage

/// stdout for the report, written with write(2) in 64 KiB pieces (a large
/// report is not built in memory first).
///
/// A reader that goes away (`| head`, a closed pipe) must not stop a run: the
/// process ignores SIGPIPE, a write then fails with EPIPE, and from then on
/// the rest of the report is dropped. The deletions, the metrics file and
/// the exit status are not affected; `failure` tells what happened.
public final class StandardOutput: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var failure: Int32?
    }

    private let descriptor: FileDescriptor
    private let state = Mutex(State())

    public init(descriptor: Int32 = 1) {
        self.descriptor = FileDescriptor(rawValue: descriptor)
    }

    public func write(_ text: String) {
        state.withLock { state in
            guard state.failure == nil else { return }
            state.buffer.append(contentsOf: text.utf8)
            if state.buffer.count >= 1 << 16 { flush(&state) }
        }
    }

    public func flush() {
        state.withLock { flush(&$0) }
    }

    /// The errno of the first failed write (EPIPE when the reader left).
    public var failure: Int32? { state.withLock { $0.failure } }

    private func flush(_ state: inout State) {
        defer { state.buffer.removeAll(keepingCapacity: true) }
        guard state.failure == nil else { return }
        do throws(SystemCallError) {
            try descriptor.writeFully(state.buffer)
        } catch {
            state.failure = error.errno.rawValue
        }
    }
}
