// The decoder of the sanlock daemon's status reply (DaemonStatus.decode)
// over arbitrary bytes: every length in a record comes from the daemon.
import FuzzSupport
import Sanlock

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDaemonStatus(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let status = try? input.withUnsafeBytes({ try DaemonStatus.decode(records: $0) }) else { return 0 }
    // A record is at least the 80-byte state header: no more records than that allows.
    invariant(status.clients.count + status.tokens.count <= count / 80, "\(status.clients.count) clients and \(status.tokens.count) tokens from \(count) bytes")
    for token in status.tokens {
        invariant(token.name.utf8.count <= 48 * 3 && token.lockspace.utf8.count <= 48 * 3, "a 48-byte name decoded to more than U+FFFD per byte")
        invariant(token.path.utf8.count <= 1024 * 3, "a 1024-byte path decoded to more than U+FFFD per byte")
    }
    for token in status.tokens where token.isHeld {
        invariant(status.holders(of: token.name, in: token.lockspace).contains(token), "a held token is not among its lease's holders")
    }
    return 0
}
