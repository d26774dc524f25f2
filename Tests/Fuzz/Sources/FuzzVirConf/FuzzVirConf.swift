// The virConf parser and the lock manager settings read from it
// (qemu-sanlock.conf), over arbitrary bytes.
import FuzzSupport
@testable import SanlockCleanup

private let path = "/etc/libvirt/qemu-sanlock.conf"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVirConf(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let lines = bytes.count(where: { $0 == UInt8(ascii: "\n") }) + 1

    do {
        let conf = try VirConf.parse(bytes: bytes, path: path)
        for entry in conf.entries {
            invariant((1...lines).contains(entry.line), "entry \(entry.name) on line \(entry.line) of \(lines)")
            invariant(conf.entry(for: entry.name) != nil, "entry \(entry.name) cannot be looked up")
            walk(entry.value)
        }
    } catch {
        // The message must be producible for any input, and name a real line.
        let description = error.description
        invariant(description.hasPrefix(path + ":"), "error without its file: \(description)")
        invariant((1...lines).contains(error.line), "error on line \(error.line) of \(lines)")
    }

    do {
        let config = try LockManagerConfig.parse(bytes: bytes, path: path)
        if let host = config.hostID { invariant((1...LockManagerConfig.maximumHostID).contains(host), "host_id \(host)") }
        invariant(config.diskLeaseDirectory.hasPrefix("/"), "relative disk_lease_dir \(config.diskLeaseDirectory)")
    } catch {
        let description = error.description
        invariant(description.hasPrefix(path), "error without its file: \(description)")
    }
    return 0
}

/// Visits every nested value without recursion: a deep list that the
/// parser survived must not overflow the stack here instead.
private func walk(_ value: VirConfValue) {
    var pending = [value]
    while let next = pending.popLast() {
        switch next {
        case .integer, .string: break
        case .list(let items): pending += items
        }
    }
}
