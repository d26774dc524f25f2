import Sanlock

/// One reading of what the audit judges from, taken as close together as
/// the calls allow: the daemon's tokens first, then the status XML (libvirt
/// acquires a resuming guest's leases before it writes "running", so this
/// order never sees a running guest without the lease it just took), then
/// the file at each lease path and the liveness of every host a file names.
/// I/O only: `Snapshot.assemble` judges it.
struct AuditReading: Sendable {
    /// The daemon's registered processes and held leases.
    var status: DaemonStatus
    /// The guests to audit: running and paused, stale status files left out.
    var guests: [Guest]
    /// Stale status files (qemu gone), warned about.
    var staleGuests: [Guest]
    /// Each disk's lease file as read now, by lease name.
    var files: [String: LeaseEntry]
    /// sanlock's liveness of every host it lists and every host a file names.
    var hosts: [UInt64: SanlockHost]?

    static func take(at site: Site, _ configuration: RunConfiguration) throws(JanitorError) -> AuditReading {
        let status: DaemonStatus
        do {
            status = try SanlockClient.status()
        } catch {
            throw error.code == .noAnswer ? .daemonNotAnswering(error) : .daemonUnreachable(error)
        }
        let inventory = GuestInventory.load(
            statusDirectories: configuration.statusDirectories, configDirectories: configuration.configDirectories)
        guard inventory.isComplete else { throw .guestsUnknown(inventory.statusErrors) }
        let guests = inventory.active.filter { !$0.isStale }
        // Each disk's file, read once even when guests share a disk.
        let scanner = InventoryScanner(directory: site.directory, classifier: site.classifier)
        var files: [String: LeaseEntry] = [:]
        for name in Set(guests.flatMap { $0.disks.compactMap(\.leaseName) }) {
            files[name] = scanner.examine(EntryName(name))
        }
        let hosts = site.hostTable(covering: files.values.compactMap(\.kind.leaseStateOwners).joined())
        // An answer missing anywhere (a host's liveness) leaves a judgement
        // unproven.
        if DaemonDeadline.hasLapsed { throw .daemonNotAnswering(SanlockError(.getHosts, code: .noAnswer)) }
        return AuditReading(status: status, guests: guests, staleGuests: inventory.staleGuests, files: files, hosts: hosts)
    }
}

extension EntryKind {
    /// Every host a lease file names as holder or last owner.
    var leaseStateOwners: [UInt64]? {
        guard case .autoLease(let state) = self else { return nil }
        return (state.ownerID != 0 ? [state.ownerID] : []) + state.sharedHolders.map(\.hostID)
    }
}
