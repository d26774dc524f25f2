/// A guest's state as libvirt writes it in `<domstatus state='...'>`
/// (`virDomainState` strings in libvirt's `src/conf/domain_conf.c`).
public enum GuestState: String, Sendable, Hashable, Codable, CaseIterable {
    case nostate, running, blocked, paused, shutdown, shutoff, crashed, pmsuspended
    /// A string this janitor does not know (a newer libvirt, or damage). Such
    /// a guest is kept in the inventory with all its disks, never dropped.
    case unknown

    /// Maps libvirt's string; anything unrecognised (or absent) is `.unknown`.
    public init(libvirtName: String?) {
        guard let libvirtName, let state = GuestState(rawValue: libvirtName), state != .unknown else {
            self = .unknown
            return
        }
        self = state
    }
}
