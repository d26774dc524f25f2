/// One `<disk>` of a guest, reduced to what decides its auto lease.
public struct GuestDisk: Sendable, Hashable {
    /// `<disk type=...>` as written; libvirt's default when absent is `file`.
    public var type: String
    /// `<disk device=...>` as written; libvirt's default when absent is `disk`.
    var device: String
    /// The top image's path exactly as written: `file=` for file, `dev=` for
    /// block, `dir=` for dir, and for volume only a translated path if the
    /// `<source>` carries one (see `VolumeSource`). `nil` for network, nvme,
    /// vhostuser, vhostvdpa, an absent `<source>` and an empty attribute
    /// (libvirt drops `''` to mean "no media").
    var sourcePath: String?
    /// libvirt's effective flag: `<readonly/>`, and every cdrom (libvirt
    /// forces cdroms read-only). Read-only disks get no lease.
    var readonly: Bool
    /// `<shareable/>`: still leased, in shared mode.
    var shareable: Bool
    /// `<target dev=...>`, for messages.
    var target: String?
    /// The pool and volume of a `type='volume'` disk.
    var volume: VolumeSource?
    /// The lease file name libvirt gives this disk, `nil` when it makes none.
    var leaseName: String?
    /// The destination of a block job (`<mirror>`: copy destination, or the
    /// base of an active commit). libvirt attaches a lease to it while the
    /// job runs, so it is reported as a name to keep (see `leaseNames`).
    var mirrorPath: String?
    var mirrorLeaseName: String?
    /// Paths of the `<backingStore>` chain below the top image, nearest
    /// first. libvirt names leases only for the top image when a guest
    /// starts; these are for telling where a lease file came from.
    var backingStorePaths: [String]

    init(
        type: String = "file", device: String = "disk", sourcePath: String?,
        readonly: Bool = false, shareable: Bool = false, target: String? = nil,
        volume: VolumeSource? = nil, mirrorPath: String? = nil, mirrorType: String? = nil,
        backingStorePaths: [String] = []
    ) {
        self.type = type
        self.device = device
        self.sourcePath = sourcePath
        self.readonly = readonly
        self.shareable = shareable
        self.target = target
        self.volume = volume
        self.mirrorPath = mirrorPath
        self.backingStorePaths = backingStorePaths
        self.leaseName = nil
        self.mirrorLeaseName = nil
        self.leaseName = DiskLeaseName.leaseName(for: self)
        self.mirrorLeaseName = mirrorPath.flatMap {
            DiskLeaseName.leaseName(storageType: mirrorType ?? "file", path: $0, readonly: false)
        }
    }

    /// The storage type libvirt locks by: the disk type, or for a volume the
    /// type it was translated to when the XML tells it (`nil` otherwise).
    var lockedStorageType: String? {
        type == "volume" ? volume?.translatedType : type
    }

    /// The names leases of the backing images would have. libvirt does not
    /// lease them at start; a lease file with one of these names was made
    /// when that image was a top image (before a snapshot or during a block
    /// job), so a caller may prefer to keep it while the guest runs.
    var backingStoreLeaseNames: [String] {
        backingStorePaths.map(DiskLeaseName.forSourcePath)
    }

    /// A writable volume disk whose lease cannot be named from the XML: the
    /// pool must be asked for the path (libvirt re-translates volumes when it
    /// reconnects and does not store the result in the status XML).
    var isUnmappedVolume: Bool {
        type == "volume" && !readonly && leaseName == nil && volume?.mode != "direct"
    }
}

/// `<source pool=... volume=... mode=...>` of a volume disk.
struct VolumeSource: Sendable, Hashable {
    var pool: String?
    var volume: String?
    /// `host` or `direct` (iSCSI pools: `direct` makes it a network disk,
    /// which never has a lease); `nil` when not written.
    public var mode: String?
    /// `file`, `block` or `dir` when the `<source>` also carries that
    /// type's path attribute. libvirt 9.x does not write one
    /// (`virDomainDiskSourceFormat` formats only pool/volume/mode); it is
    /// honoured in case a version or tool does, since it can only add names.
    var translatedType: String?

    public init(pool: String?, volume: String?, mode: String? = nil, translatedType: String? = nil) {
        self.pool = pool
        self.volume = volume
        self.mode = mode
        self.translatedType = translatedType
    }
}

/// A guest as one libvirt XML file describes it.
public struct Guest: Sendable, Hashable {
    public var name: String
    var uuid: String?
    /// `<domain type=...>`: `kvm` or `qemu` for qemu guests, `xen` for libxl.
    var domainType: String?
    /// From `<domstatus state=...>`; `.shutoff` for a persistent definition.
    public var state: GuestState
    var stateReason: String?
    /// `<domstatus><job async=...>`: the asynchronous job libvirt runs on
    /// the guest, such as `migration in` on a live migration's destination
    /// (nil for none).
    var asyncJob: String?
    /// From `<domstatus pid=...>`; `nil` when absent, unparsable or not
    /// positive (Xen guests have no qemu process).
    public var pid: Int32?
    /// The file this guest was read from.
    public var file: String
    /// Read from a status directory (a running or paused guest).
    var isStatus: Bool
    /// Status files only: whether `pid` names a live process (`nil` when
    /// there is no pid, and for Xen guests, whose status pid is not a
    /// per-guest process that can be judged). `false` means the status file
    /// is stale.
    var processAlive: Bool?
    public var disks: [GuestDisk]

    init(
        name: String, uuid: String? = nil, domainType: String? = nil, state: GuestState, stateReason: String? = nil,
        pid: Int32? = nil, file: String, isStatus: Bool, processAlive: Bool? = nil, disks: [GuestDisk]
    ) {
        self.name = name
        self.uuid = uuid
        self.domainType = domainType
        self.state = state
        self.stateReason = stateReason
        self.pid = pid
        self.file = file
        self.isStatus = isStatus
        self.processAlive = processAlive
        self.disks = disks
    }

    /// A status file whose qemu process is gone.
    var isStale: Bool { isStatus && processAlive == false }

    /// Every lease name this guest's XML accounts for: each disk's lease and
    /// each block-job destination's lease.
    var leaseNames: Set<String> {
        var names = Set<String>()
        for disk in disks {
            if let name = disk.leaseName { names.insert(name) }
            if let name = disk.mirrorLeaseName { names.insert(name) }
        }
        return names
    }

    /// The guest has a writable volume disk whose lease cannot be named.
    var hasUnmappedVolumes: Bool { disks.contains(where: \.isUnmappedVolume) }
}

/// A file that could not be used, and why: in a status directory this keeps
/// the janitor from deleting anything; in a config directory it is a warning.
public struct GuestSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    var column: Int?
    var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        return "\(location): \(message)"
    }
}
