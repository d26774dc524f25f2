/// Which guest disk each lease name belongs to: the guest inventory turned
/// into a lookup table for the decision and the report.
public struct GuestIndex: Sendable, Hashable {
    /// One guest's use of a lease name.
    public struct Use: Sendable, Hashable {
        public enum Role: String, Sendable, Hashable {
            /// The lease libvirt takes for the disk's top image.
            case disk
            /// A block job's destination, leased while the job runs.
            case mirror
            /// A backing image: libvirt takes no lease for it; a lease file
            /// with this name is left from when it was the top image.
            case backingImage = "backing-image"
        }

        public var guest: String
        public var state: GuestState
        /// From a status file (an active guest), not a definition.
        public var fromStatus: Bool
        /// The status file says the guest runs but its process is gone.
        public var stale: Bool
        public var pid: Int32?
        public var diskPath: String
        public var role: Role
        public var file: String

        public init(guest: String, state: GuestState, fromStatus: Bool, stale: Bool = false, pid: Int32? = nil,
                    diskPath: String, role: Role = .disk, file: String = "") {
            self.guest = guest
            self.state = state
            self.fromStatus = fromStatus
            self.stale = stale
            self.pid = pid
            self.diskPath = diskPath
            self.role = role
            self.file = file
        }

        /// libvirt may hold (or re-acquire) this lease for the guest: a disk
        /// or block-job lease of a guest whose status file says it is not
        /// shut off. Paused guests count: libvirt releases their leases and
        /// takes them again on resume.
        var protectsLease: Bool {
            fromStatus && state != .shutoff && role != .backingImage
        }
    }

    /// Every use of each lease name, most protective first.
    private(set) var uses: [String: [Use]] = [:]
    /// Active guests with a writable storage-pool volume disk whose lease
    /// cannot be named from the XML.
    private(set) var guestsWithUnmappedVolumes: [String] = []

    public init() {}

    public init(_ inventory: GuestInventory) {
        for guest in inventory.active { add(guest) }
        for guest in inventory.defined { add(guest) }
        guestsWithUnmappedVolumes = inventory.active
            .filter { $0.state != .shutoff && $0.hasUnmappedVolumes }.map(\.name).sorted()
        uses = uses.mapValues { list in list.sorted { Self.rank($0) < Self.rank($1) } }
    }

    /// The use that best explains a lease name, if any guest accounts for it.
    func use(of leaseName: String) -> Use? { uses[leaseName]?.first }

    /// The use that forbids deleting the lease, if any.
    func protectingUse(of leaseName: String) -> Use? {
        uses[leaseName]?.first(where: \.protectsLease)
    }

    mutating func add(_ guest: Guest) {
        func record(_ name: String?, _ path: String?, _ role: Use.Role) {
            guard let name, let path else { return }
            uses[name, default: []].append(Use(
                guest: guest.name, state: guest.state, fromStatus: guest.isStatus, stale: guest.isStale,
                pid: guest.pid, diskPath: path, role: role, file: guest.file))
        }
        for disk in guest.disks {
            record(disk.leaseName, disk.sourcePath, .disk)
            record(disk.mirrorLeaseName, disk.mirrorPath, .mirror)
            for (name, path) in zip(disk.backingStoreLeaseNames, disk.backingStorePaths) {
                record(name, path, .backingImage)
            }
        }
    }

    /// Protecting uses first (live before stale), then other status uses,
    /// then definitions; backing images last.
    private static func rank(_ use: Use) -> Int {
        if use.protectsLease { return use.stale ? 1 : 0 }
        if use.role == .backingImage { return 4 }
        return use.fromStatus ? 2 : 3
    }
}
