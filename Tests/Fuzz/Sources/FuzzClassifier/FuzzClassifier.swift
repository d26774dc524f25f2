// The lease classifier over a whole (hostile) lease file, driven the way
// InventoryScanner.examine drives it: start with 4 KiB, and read more each
// time it answers `.needsBytes(n)`.
//
// Input: a 42-byte header, then the file's content.
//   byte 0     flags: bit 0 make the leader checksum valid; bit 1 name the
//              entry after the leader's resource name (else a fixed 32-hex
//              name); bits 2-3 the file size: 0 the content's length, 1 that
//              rounded up to 1 MiB (libvirt's lease size), 2 bytes 1-8 & Int64.max
//              (a sparse file), 3 the content's length + bytes 1-4
//   bytes 1-8  a size, little-endian
//   byte 9     how many probe host ids follow (modulo 5)
//   bytes 10-41 four host ids, 8 bytes each
// A file longer than its content reads as zeros there (a sparse file).
import FuzzSupport
import Sanlock
@testable import SanlockCleanup

private let headerLength = 42
/// The most a lease can need: the leader, the request record and 2000
/// dblocks (sanlock's largest num_hosts) of 4 KiB sectors. Asking for more
/// means trusting a num_hosts sanlock never writes, and InventoryScanner
/// would allocate and read that much.
private let largestLeaseArea = (2 + 2000) * 4096

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClassifier(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var reader = FuzzReader(start, count)
    let flags = reader.byte()
    let sizeField: UInt64 = reader.integer()
    let probeCount = Int(reader.byte()) % 5
    let probeIDs = (0..<4).map { _ in reader.integer(UInt64.self) }.prefix(probeCount)
    var content = reader.rest()
    if flags & 1 != 0 { LeaderChecksum.fix(&content) }

    let size: Int64 = switch (flags >> 2) & 3 {
    case 0: Int64(content.count)
    case 1: Int64(max(content.count, 1) + (1 << 20) - 1) / (1 << 20) * (1 << 20)
    case 2: Int64(bitPattern: sizeField & UInt64(Int64.max))
    default: Int64(content.count) + Int64(sizeField & 0xFFFF_FFFF)
    }
    let name = flags & 2 != 0 ? resourceName(in: content) : EntryName("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1")
    let file = SparseFile(content: content, size: size)

    // nil: the lockspace file was unreadable (probe every host id).
    classify(file, name: name, with: LeaseClassifier(probeHostIDs: nil))
    classify(file, name: name, with: LeaseClassifier(probeHostIDs: Array(probeIDs)))
    return 0
}

/// The file as `readPrefix` sees it: `content`, then zeros up to `size`.
private struct SparseFile {
    var content: [UInt8]
    var size: Int64

    func prefix(_ length: Int) -> [UInt8] {
        let available = Int(min(Int64(length), max(size, 0)))
        let stored = content.prefix(available)
        return Array(stored) + [UInt8](repeating: 0, count: available - stored.count)
    }
}

/// The 48-byte resource name field of the leader, up to its first NUL.
private func resourceName(in content: [UInt8]) -> EntryName {
    let field = content.dropFirst(104).prefix(48)
    return EntryName(bytes: Array(field.prefix(while: { $0 != 0 })))
}

/// InventoryScanner.examine's loop, with its checks turned into invariants.
private func classify(_ file: SparseFile, name: EntryName, with classifier: LeaseClassifier) {
    var length = LeaseClassifier.initialReadLength
    while true {
        let prefix = file.prefix(length)
        switch classifier.classify(name: name, size: file.size, prefix: prefix) {
        case .kind(let kind):
            check(kind, probeIDs: classifier.probeHostIDs)
            return
        case .needsBytes(let needed):
            invariant(needed > prefix.count, "asked for \(needed) bytes after being given \(prefix.count)")
            invariant(needed <= largestLeaseArea,
                      "asked for \(needed) bytes (file size \(file.size)): more than any sanlock lease, and the scanner allocates it")
            // The scanner reads more only when the last read was complete.
            guard needed > length, prefix.count == length else { return }
            length = needed
        }
    }
}

private func check(_ kind: EntryKind, probeIDs: [UInt64]?) {
    switch kind {
    case .autoLease(let state):
        let hosts = state.sharedHolders.map(\.hostID)
        invariant(Set(hosts).count == hosts.count, "a shared holder listed twice: \(hosts)")
        invariant(hosts.allSatisfy { $0 >= 1 }, "shared holder with host id 0: \(hosts)")
        if let probeIDs { invariant(hosts.allSatisfy(probeIDs.contains), "shared holder \(hosts) was not probed") }
        if state.held { invariant(!hosts.contains(state.ownerID), "the exclusive owner is also listed as shared") }
    case .corruptLease(.truncated(let size, let needed)):
        invariant(needed > size, "truncated, yet \(size) bytes >= the \(needed) needed")
    default:
        break
    }
}
