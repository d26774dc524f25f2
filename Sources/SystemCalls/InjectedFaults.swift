#if DEBUG
import Synchronization
import SystemPackage

/// A test hook, compiled into debug builds only: makes chosen calls of this
/// layer fail in-process, without making them, as `strace -e inject=` does
/// from outside (docs/testing.md, "Fault injection"). It sits in the funnel
/// (`systemCall`), so every call of the layer can be failed, and a failure
/// takes the same path as a real one (EINTR is retried where the caller
/// asked for it).
///
/// The plan is bound to the current task (`during`), not to the process:
/// Swift Testing runs tests in parallel in one process, and a fault meant for
/// one must not reach another. Threads the code under test starts itself do
/// not inherit it.
public final class InjectedFaults: Sendable {
    /// Fail the `occurrence`th call named `systemCall` (1: the first; `nil`:
    /// every one) with `errno`.
    public struct Fault: Sendable {
        public var systemCall: String
        public var errno: Errno
        public var occurrence: Int?

        public init(_ systemCall: String, _ errno: Errno, occurrence: Int? = 1) {
            self.systemCall = systemCall
            self.errno = errno
            self.occurrence = occurrence
        }
    }

    private struct State {
        var calls: [String: Int] = [:]
        var injected: [String] = []
    }

    private let faults: [Fault]
    private let state = Mutex(State())

    @TaskLocal static var current: InjectedFaults?

    public init(_ faults: [Fault]) {
        self.faults = faults
    }

    /// Runs `body` with these faults injected into the calls it makes on
    /// this task.
    public func during<Value, Failure: Error>(_ body: () throws(Failure) -> Value) throws(Failure) -> Value {
        let result: Result<Value, Failure> = Self.$current.withValue(self) {
            do throws(Failure) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The calls that were failed, in order: a test says that its fault was
    /// reached, or it proves nothing.
    public var injected: [String] { state.withLock { $0.injected } }

    /// The errno to fail this call with, or nil to make it. Counts the call.
    func errnoToInject(for systemCall: String) -> Int32? {
        state.withLock { state in
            state.calls[systemCall, default: 0] += 1
            let number = state.calls[systemCall]!
            guard let fault = faults.first(where: {
                $0.systemCall == systemCall && ($0.occurrence == nil || $0.occurrence == number)
            }) else { return nil }
            state.injected.append(systemCall)
            return fault.errno.rawValue
        }
    }
}
#endif
