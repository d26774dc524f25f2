import LibXML

/// Reads a guest from libvirt's XML: a status file (`<domstatus>` wrapping
/// private data and the live `<domain>`) or a persistent definition (a bare
/// `<domain>`). Only the disks directly under `<devices>` count: `<source>`
/// elements also appear in backing chains, block-job mirrors, persistent
/// reservations, interfaces, hostdevs and serial ports.
enum GuestXML {
    static let statusDiskPath = "/domstatus/domain/devices/disk"
    static let definitionDiskPath = "/domain/devices/disk"

    /// A status file. Fails when it is not a `<domstatus>` with exactly one
    /// `<domain>` that has a `<name>`: anything else means we cannot tell
    /// which disks a possibly live guest uses.
    public static func status(from document: XMLDocument) throws(GuestSourceError) -> Guest {
        let root = document.root
        guard root.name == "domstatus" else {
            throw GuestSourceError(file: document.url, line: root.line, message: "root element is <\(root.name)>, not <domstatus>")
        }
        let domains = root.children(named: "domain")
        guard domains.count == 1 else {
            throw GuestSourceError(
                file: document.url, line: root.line,
                message: "<domstatus> has \(domains.count) <domain> elements, not 1")
        }
        // An unknown or absent state is kept as `.unknown`: the guest stays
        // in the inventory with all its disks.
        var guest = try guest(
            domain: domains[0], document: document, diskPath: statusDiskPath,
            state: GuestState(libvirtName: root.attribute("state")), isStatus: true)
        guest.stateReason = root.attribute("reason")
        guest.asyncJob = root.firstChild(named: "job")?.attribute("async").flatMap { $0 == "none" ? nil : $0 }
        guest.pid = root.attribute("pid").flatMap { Int32($0) }.flatMap { $0 > 0 ? $0 : nil }
        return guest
    }

    /// A persistent definition (state `.shutoff`, no pid).
    static func definition(from document: XMLDocument) throws(GuestSourceError) -> Guest {
        let root = document.root
        guard root.name == "domain" else {
            throw GuestSourceError(file: document.url, line: root.line, message: "root element is <\(root.name)>, not <domain>")
        }
        return try guest(domain: root, document: document, diskPath: definitionDiskPath, state: .shutoff, isStatus: false)
    }

    private static func guest(
        domain: XMLNode, document: XMLDocument, diskPath: String, state: GuestState, isStatus: Bool
    ) throws(GuestSourceError) -> Guest {
        guard let nameNode = domain.firstChild(named: "name") else {
            throw GuestSourceError(file: document.url, line: domain.line, message: "<domain> has no <name>")
        }
        let name = nameNode.text.trimmingXMLWhitespace()
        guard !name.isEmpty else {
            throw GuestSourceError(file: document.url, line: nameNode.line, message: "<name> is empty")
        }
        let diskNodes: [XMLNode]
        do {
            diskNodes = try document.select(diskPath)
        } catch {
            throw GuestSourceError(file: document.url, line: error.line, message: error.message)
        }
        return Guest(
            name: name,
            uuid: domain.firstChild(named: "uuid").map { $0.text.trimmingXMLWhitespace() },
            domainType: domain.attribute("type"),
            state: state, file: document.url, isStatus: isStatus,
            disks: diskNodes.map(disk(from:)))
    }

    /// One `<disk>`, read the way libvirt's `virDomainDiskDefParseXML` and
    /// `virDomainStorageSourceParse` read it.
    public static func disk(from node: XMLNode) -> GuestDisk {
        let type = node.attribute("type") ?? "file"
        let device = node.attribute("device") ?? "disk"
        let source = node.firstChild(named: "source")
        var path: String?
        var volume: VolumeSource?
        if type == "volume" {
            let translated = source.flatMap(translatedVolumePath(of:))
            volume = VolumeSource(
                pool: source?.attribute("pool"), volume: source?.attribute("volume"),
                mode: source?.attribute("mode"), translatedType: translated?.type)
            // A `direct` volume is an iSCSI network disk whatever path is written.
            path = volume?.mode == "direct" ? nil : translated?.path
        } else if let source {
            path = localPath(of: source, storageType: type)
        }

        let mirror = node.firstChild(named: "mirror")
        // Old status files put the destination in `<mirror file=...>`.
        let mirrorType = mirror.map { $0.attribute("type") ?? "file" }
        let mirrorPath = mirror.flatMap { mirror in
            nonEmpty(mirror.attribute("file"))
                ?? mirror.firstChild(named: "source").flatMap { localPath(of: $0, storageType: mirrorType ?? "file") }
        }

        return GuestDisk(
            type: type, device: device, sourcePath: path,
            // libvirt marks every cdrom read-only whatever the XML says.
            readonly: node.hasChild(named: "readonly") || device == "cdrom",
            shareable: node.hasChild(named: "shareable"),
            target: node.firstChild(named: "target")?.attribute("dev"),
            volume: volume, mirrorPath: mirrorPath, mirrorType: mirrorType,
            backingStorePaths: backingStorePaths(of: node))
    }

    /// The path attribute of a local storage type; `''` counts as absent,
    /// as libvirt drops it ("no media").
    private static func localPath(of source: XMLNode, storageType: String) -> String? {
        switch storageType {
        case "file": nonEmpty(source.attribute("file"))
        case "block": nonEmpty(source.attribute("dev"))
        case "dir": nonEmpty(source.attribute("dir"))
        default: nil
        }
    }

    private static func translatedVolumePath(of source: XMLNode) -> (type: String, path: String)? {
        for type in ["file", "block", "dir"] {
            if let path = localPath(of: source, storageType: type) { return (type, path) }
        }
        return nil
    }

    private static func backingStorePaths(of disk: XMLNode) -> [String] {
        var paths: [String] = []
        var level = disk.firstChild(named: "backingStore")
        // Bounded by the parser's depth limit; each level is one element deeper.
        while let store = level {
            if let source = store.firstChild(named: "source"),
               let path = localPath(of: source, storageType: store.attribute("type") ?? "file") {
                paths.append(path)
            }
            level = store.firstChild(named: "backingStore")
        }
        return paths
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }
}

extension String {
    /// Without leading and trailing XML whitespace (space, tab, CR, LF).
    /// libvirt writes `<name>` and `<uuid>` bare; this only tolerates a
    /// hand-edited definition (the name is for messages, not for leases).
    func trimmingXMLWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
