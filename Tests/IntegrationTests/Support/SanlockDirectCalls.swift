import CSanlock
import Sanlock
@testable import SanlockCleanup

/// sanlock calls the janitor does not make, which the behaviour tests use to
/// show what sanlock itself does.
enum SanlockDirectCalls {
    /// Reads and verifies the leader through the daemon; returns its lver.
    static func readResource(_ resource: SanlockResource) throws(SanlockError) -> UInt64 {
        try withResource(resource) { (res) throws(SanlockError) in
            let rv = sanlock_read_resource(res, 0)
            guard rv >= 0 else { throw SanlockError(.readResource, code: rv) }
            return res.pointee.lver
        }
    }

    /// `sanlock_write_resource(SANLK_WRITE_CLEAR)`: the whole lease area
    /// re-initialised with the "cleared" magic, every host's paxos dblock
    /// zeroed. The janitor invalidates only the leader instead (see
    /// `LeaderRecord.invalidating`).
    static func writeClear(_ resource: SanlockResource) throws(SanlockError) {
        try withResource(resource) { (res) throws(SanlockError) in
            let rv = sanlock_write_resource(res, 0, 0, UInt32(SANLK_WRITE_CLEAR))
            guard rv >= 0 else { throw SanlockError(.writeResource, code: rv) }
        }
    }

    private static func withResource<Value>(
        _ resource: SanlockResource, _ body: (UnsafeMutablePointer<sanlk_resource>) throws(SanlockError) -> Value
    ) throws(SanlockError) -> Value {
        var error: Int32 = 0
        guard let res = vsc_resource_new(resource.lockspace, resource.name, resource.path, resource.offset, &error) else {
            throw SanlockError(.prepareResource, code: error)
        }
        defer { vsc_sanlock_free(res) }
        return try body(res)
    }
}

extension InventoryScanner {
    /// A lease as a cleaning run's scan leaves it: examined, held open.
    func forRemoval(_ name: String) -> Scanned {
        scan(DirectoryEntry(name: EntryName(name), type: .regular), keepingOpen: true, using: AlignedBuffer())
    }
}

extension LeaseRemover {
    /// Removes a scanned lease as a cleaning run does, through the file the
    /// scan held open.
    func remove(_ scanned: InventoryScanner.Scanned, using connection: borrowing SanlockConnection) -> RemovalOutcome {
        remove(scanned.entry, file: scanned.file, using: connection)
    }
}
