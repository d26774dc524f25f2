// The guest XML reader: libxml2 through the LibXML wrapper, then the status
// and definition readers and the lease-name index built from them.
import FuzzSupport
import LibXML
@testable import SanlockCleanup

private let url = "/run/libvirt/qemu/fuzz.xml"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGuestXML(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let document: XMLDocument
    do {
        document = try XMLDocument.parse(bytes: bytes, url: url)
    } catch {
        _ = error.description
        return 0
    }

    // Every document is read both ways: as a status file and as a definition.
    var running: [Guest] = []
    var defined: [Guest] = []
    do {
        var guest = try GuestXML.status(from: document)
        // Exercise both live and stale guests, as the pid decides.
        guest.processAlive = guest.pid.map { $0 % 2 == 0 }
        running.append(guest)
    } catch {
        _ = error.description
    }
    do {
        defined.append(try GuestXML.definition(from: document))
    } catch {
        _ = error.description
    }

    let index = GuestIndex(GuestInventory(active: running, defined: defined))
    for guest in running + defined {
        invariant(!guest.name.isEmpty, "a guest without a name")
        for disk in guest.disks {
            for name in [disk.leaseName, disk.mirrorLeaseName].compactMap({ $0 }) + disk.backingStoreLeaseNames {
                invariant(EntryName(name).isAutoLeaseName, "lease name \(name) is not 32 lowercase hex")
                invariant(index.use(of: name) != nil, "lease name \(name) of guest \(guest.name) is not in the index")
            }
            if disk.readonly { invariant(disk.leaseName == nil, "a read-only disk has a lease name") }
        }
    }
    for name in index.uses.keys {
        if let use = index.protectingUse(of: name) { invariant(use.protectsLease, "protecting use does not protect") }
    }
    return 0
}
