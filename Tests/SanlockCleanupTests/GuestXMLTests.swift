import LibXML
@testable import SanlockCleanup
import TestFixtures
import Testing

@Suite("GuestXML: guests and disks from libvirt's status and definition XML")
struct GuestXMLTests {
    static func statusGuest(_ fixture: String) throws -> Guest {
        try GuestXML.status(from: XMLDocument.parse(file: GuestFixtures.path(fixture)))
    }

    /// One `<disk>` inside a minimal status file, read back.
    static func disk(_ xml: String) throws -> GuestDisk {
        let document = try XMLDocument.parse(
            string: TestGuest(name: "variant", pid: 4000, rawDisks: xml).statusXML(), url: "variant.xml")
        let guest = try GuestXML.status(from: document)
        try #require(guest.disks.count == 1)
        return guest.disks[0]
    }

    @Test("<job async=...> of a status file: a live migration's destination says 'migration in'; 'none' is no job")
    func asyncJob() throws {
        func guest(_ job: String) throws -> Guest {
            try GuestXML.status(from: XMLDocument.parse(string: """
                <domstatus state='paused' reason='migration' pid='7'>\(job)<domain type='kvm'><name>g</name><devices/></domain></domstatus>
                """, url: "g.xml"))
        }
        #expect(try guest("<job type='none' async='migration in' phase='prepare' flags='0x0'/>").asyncJob == "migration in")
        #expect(try guest("<job type='none' async='none'/>").asyncJob == nil)
        #expect(try guest("").asyncJob == nil)
        #expect(try guest("").stateReason == "migration")
    }

    // MARK: The realistic status fixture

    @Test func statusFixtureGuestFields() throws {
        let guest = try Self.statusGuest("status-demo-paused.xml")
        #expect(guest.name == "demo")
        #expect(guest.uuid == "6b1c7bb4-1a3e-4cb4-9b5a-0d9e8f3c2a11")
        #expect(guest.domainType == "kvm")
        #expect(guest.state == .paused)
        #expect(guest.stateReason == "user")
        #expect(guest.pid == 1234)
        #expect(guest.isStatus)
        #expect(guest.processAlive == nil) // filled in by the inventory, not the parser
        #expect(guest.file == GuestFixtures.path("status-demo-paused.xml"))
    }

    /// Only `/domstatus/domain/devices/disk`: not the private `<devices>`
    /// alias list, not backing chains, mirrors, leases, interfaces, serials
    /// or hostdevs.
    @Test func statusFixtureDisksAndLeases() throws {
        let guest = try Self.statusGuest("status-demo-paused.xml")
        #expect(guest.disks.map(\.target) == ["vda", "vdb", "vdc", "vdd", "vde", "sda", "sdb", "vdf", "vdg", "vdh"])
        #expect(guest.disks.map(\.leaseName) == [
            "bfa0240911bc17753e0b473688822159", // vda: top image only
            "e7a2b0189bd9bf1e8a3c5bba95468fc5", // vdb: block
            "7ccf2ca99c63560dcabacbab7fd84afa", // vdc: dir
            "ea21f7292a8e4466190e0e808bef19bf", // vdd: shareable
            nil, // vde: readonly
            nil, // sda: cdrom with media
            nil, // sdb: cdrom without media
            nil, // vdf: rbd
            nil, // vdg: untranslated volume
            "4feb1dcdee1e393d8c35688f515cabce", // vdh: being copied
        ])
        #expect(guest.leaseNames == [
            "bfa0240911bc17753e0b473688822159", "e7a2b0189bd9bf1e8a3c5bba95468fc5",
            "7ccf2ca99c63560dcabacbab7fd84afa", "ea21f7292a8e4466190e0e808bef19bf",
            "4feb1dcdee1e393d8c35688f515cabce", "9a5e53edad256d413bc822ad68ec1020",
        ])
        #expect(!guest.leaseNames.contains(DiskLeaseName.forSourcePath("/var/lib/libvirt/images/base.qcow2")))
        #expect(!guest.leaseNames.contains(DiskLeaseName.forSourcePath("/var/lib/libvirt/sanlock/admin-lease")))
        #expect(guest.hasUnmappedVolumes)
    }

    @Test func statusFixtureDiskDetails() throws {
        let disks = try Self.statusGuest("status-demo-paused.xml").disks
        let vda = disks[0]
        #expect(vda.type == "file" && vda.device == "disk")
        #expect(vda.sourcePath == "/var/lib/libvirt/images/demo.img")
        #expect(vda.backingStorePaths == ["/var/lib/libvirt/images/base.qcow2", "/dev/mapper/vg0-golden"])
        #expect(vda.backingStoreLeaseNames == ["f177b932dc0c50fc9a3ea8f2e2074e4e", "bce4bf6f69c8622a239edb26ec058e69"])
        #expect(disks[3].shareable && !disks[3].readonly)
        #expect(disks[4].readonly)
        #expect(disks[5].device == "cdrom" && disks[5].sourcePath == "/var/lib/libvirt/images/install.iso")
        #expect(disks[6].sourcePath == nil)
        #expect(disks[7].type == "network" && disks[7].sourcePath == nil)
        #expect(disks[8].volume == VolumeSource(pool: "default", volume: "vol1.qcow2"))
        #expect(disks[8].isUnmappedVolume)
        #expect(disks[9].mirrorPath == "/var/lib/libvirt/images/copy-dest.qcow2")
        #expect(disks[9].mirrorLeaseName == "9a5e53edad256d413bc822ad68ec1020")
    }

    @Test func definitionFixture() throws {
        let document = try XMLDocument.parse(file: GuestFixtures.path("definition-stopped.xml"))
        let guest = try GuestXML.definition(from: document)
        #expect(guest.name == "stopped")
        #expect(guest.state == .shutoff)
        #expect(guest.pid == nil && guest.processAlive == nil && !guest.isStatus)
        #expect(guest.disks.map(\.leaseName) == [
            "fbcd27245c031b22d2cbfa7573c2c145", // non-ASCII path
            "01d58b2f6df4b87d5563c05ed865e7d3", // floppy: libvirt does not force it read-only
            nil, // volume: the pool would have to be asked
            nil, // cdrom without <readonly/>: libvirt forces it
        ])
        #expect(guest.disks[2].volume == VolumeSource(pool: "iscsi-pool", volume: "unit:0:0:1", mode: "host"))
        #expect(guest.disks[3].readonly)
        // A definition is not a status file, and vice versa.
        #expect(throws: GuestSourceError.self) { try GuestXML.status(from: document) }
        let status = try XMLDocument.parse(file: GuestFixtures.path("status-demo-paused.xml"))
        #expect(throws: GuestSourceError.self) { try GuestXML.definition(from: status) }
    }

    // MARK: Disk variants

    struct Variant: Sendable, CustomTestStringConvertible {
        var label: String
        var xml: String
        var type: String
        var sourcePath: String?
        var readonly = false
        var shareable = false
        var leaseName: String?
        var testDescription: String { label }
    }

    static let demo = "/var/lib/libvirt/images/demo.img"
    static let demoLease = "bfa0240911bc17753e0b473688822159"

    static let variants: [Variant] = [
        Variant(label: "file", xml: """
            <disk type='file' device='disk'><source file='\(demo)'/><target dev='vda'/></disk>
            """, type: "file", sourcePath: demo, leaseName: demoLease),
        Variant(label: "no type attribute means file", xml: """
            <disk device='disk'><source file='\(demo)'/><target dev='vda'/></disk>
            """, type: "file", sourcePath: demo, leaseName: demoLease),
        Variant(label: "block", xml: """
            <disk type='block' device='disk'><source dev='/dev/mapper/vg0-data'/><target dev='vda'/></disk>
            """, type: "block", sourcePath: "/dev/mapper/vg0-data", leaseName: "e7a2b0189bd9bf1e8a3c5bba95468fc5"),
        Variant(label: "block lun", xml: """
            <disk type='block' device='lun'><source dev='/dev/mapper/vg0-data'/><target dev='sda'/></disk>
            """, type: "block", sourcePath: "/dev/mapper/vg0-data", leaseName: "e7a2b0189bd9bf1e8a3c5bba95468fc5"),
        Variant(label: "dir", xml: """
            <disk type='dir' device='disk'><driver name='qemu' type='fat'/><source dir='/srv/guests/share'/><target dev='hdb'/></disk>
            """, type: "dir", sourcePath: "/srv/guests/share", leaseName: "7ccf2ca99c63560dcabacbab7fd84afa"),
        Variant(label: "volume translated by the status XML", xml: """
            <disk type='volume' device='disk'><source pool='default' volume='vol1.qcow2' file='/var/lib/libvirt/images/pool/vol1.qcow2'/><target dev='vda'/></disk>
            """, type: "volume", sourcePath: "/var/lib/libvirt/images/pool/vol1.qcow2", leaseName: "e1ed23f6fb71ccf66224062cf3a1988c"),
        Variant(label: "volume untranslated", xml: """
            <disk type='volume' device='disk'><source pool='default' volume='vol1.qcow2'/><target dev='vda'/></disk>
            """, type: "volume", sourcePath: nil, leaseName: nil),
        Variant(label: "volume in direct mode is a network disk", xml: """
            <disk type='volume' device='disk'><source pool='iscsi' volume='unit:0:0:1' mode='direct' dev='/dev/sdz'/><target dev='vda'/></disk>
            """, type: "volume", sourcePath: nil, leaseName: nil),
        Variant(label: "network", xml: """
            <disk type='network' device='disk'><source protocol='nbd' name='export'><host name='192.0.2.5' port='10809'/></source><target dev='vda'/></disk>
            """, type: "network", sourcePath: nil, leaseName: nil),
        Variant(label: "nvme", xml: """
            <disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source><target dev='vda'/></disk>
            """, type: "nvme", sourcePath: nil, leaseName: nil),
        Variant(label: "vhostuser", xml: """
            <disk type='vhostuser' device='disk'><source type='unix' path='/tmp/vhost-blk.sock'><reconnect enabled='yes' timeout='10'/></source><target dev='vda'/></disk>
            """, type: "vhostuser", sourcePath: nil, leaseName: nil),
        Variant(label: "readonly", xml: """
            <disk type='file' device='disk'><source file='\(demo)'/><target dev='vda'/><readonly/></disk>
            """, type: "file", sourcePath: demo, readonly: true, leaseName: nil),
        Variant(label: "cdrom with media", xml: """
            <disk type='file' device='cdrom'><source file='/var/lib/libvirt/images/install.iso'/><target dev='sda'/><readonly/></disk>
            """, type: "file", sourcePath: "/var/lib/libvirt/images/install.iso", readonly: true, leaseName: nil),
        Variant(label: "cdrom with media but no <readonly/>", xml: """
            <disk type='file' device='cdrom'><source file='/var/lib/libvirt/images/install.iso'/><target dev='sda'/></disk>
            """, type: "file", sourcePath: "/var/lib/libvirt/images/install.iso", readonly: true, leaseName: nil),
        Variant(label: "cdrom without media", xml: """
            <disk type='file' device='cdrom'><target dev='sda' tray='open'/><readonly/></disk>
            """, type: "file", sourcePath: nil, readonly: true, leaseName: nil),
        Variant(label: "shareable", xml: """
            <disk type='file' device='disk'><source file='\(demo)'/><target dev='vda'/><shareable/></disk>
            """, type: "file", sourcePath: demo, shareable: true, leaseName: demoLease),
        Variant(label: "empty source attribute", xml: """
            <disk type='file' device='disk'><source file=''/><target dev='vda'/></disk>
            """, type: "file", sourcePath: nil, leaseName: nil),
        Variant(label: "source without its attribute", xml: """
            <disk type='block' device='disk'><source file='\(demo)'/><target dev='vda'/></disk>
            """, type: "block", sourcePath: nil, leaseName: nil),
        Variant(label: "backing chain: top only", xml: """
            <disk type='file' device='disk'><source file='\(demo)'/><backingStore type='file'><format type='qcow2'/><source file='/var/lib/libvirt/images/base.qcow2'/><backingStore/></backingStore><target dev='vda'/></disk>
            """, type: "file", sourcePath: demo, leaseName: demoLease),
        Variant(label: "top-level source comes first, nested ones ignored", xml: """
            <disk type='file' device='disk'><backingStore type='file'><source file='/var/lib/libvirt/images/base.qcow2'/></backingStore><source file='\(demo)'/><target dev='vda'/></disk>
            """, type: "file", sourcePath: demo, leaseName: demoLease),
        Variant(label: "escaped path", xml: """
            <disk type='file' device='disk'><source file='/var/lib/libvirt/images/it&apos;s &amp; &lt;odd&gt;.img'/><target dev='vda'/></disk>
            """, type: "file", sourcePath: "/var/lib/libvirt/images/it's & <odd>.img", leaseName: "36fad03005512d1e486d70cd7d143320"),
        Variant(label: "non-ASCII path", xml: """
            <disk type='file' device='disk'><source file='/var/lib/libvirt/images/Ünïcødé disk.qcow2'/><target dev='vda'/></disk>
            """, type: "file", sourcePath: "/var/lib/libvirt/images/Ünïcødé disk.qcow2", leaseName: "fbcd27245c031b22d2cbfa7573c2c145"),
    ]

    @Test(arguments: variants)
    func diskVariant(_ variant: Variant) throws {
        let disk = try Self.disk(variant.xml)
        #expect(disk.type == variant.type)
        #expect(disk.sourcePath == variant.sourcePath)
        #expect(disk.readonly == variant.readonly)
        #expect(disk.shareable == variant.shareable)
        #expect(disk.leaseName == variant.leaseName)
    }

    @Test func leaseElementsAreNotDisks() throws {
        let document = try XMLDocument.parse(string: TestGuest(name: "leases", pid: 4000, rawDisks: """
            <lease><lockspace>space</lockspace><key>key</key><target path='/var/lib/libvirt/sanlock/admin'/></lease>
            <disk type='file' device='disk'><source file='\(Self.demo)'/><target dev='vda'/></disk>
            """).statusXML(), url: "leases.xml")
        let guest = try GuestXML.status(from: document)
        #expect(guest.disks.count == 1)
        #expect(guest.leaseNames == [Self.demoLease])
    }

    @Test func blockCopyMirrorInTheOldAttributeForm() throws {
        let disk = try Self.disk("""
            <disk type='file' device='disk'><source file='\(Self.demo)'/><mirror file='/var/lib/libvirt/images/copy-dest.qcow2' format='qcow2' job='copy'/><target dev='vda'/></disk>
            """)
        #expect(disk.mirrorPath == "/var/lib/libvirt/images/copy-dest.qcow2")
        #expect(disk.mirrorLeaseName == "9a5e53edad256d413bc822ad68ec1020")
    }

    @Test func networkMirrorHasNoLease() throws {
        let disk = try Self.disk("""
            <disk type='file' device='disk'><source file='\(Self.demo)'/><mirror type='network' job='copy'><source protocol='nbd' name='x'/></mirror><target dev='vda'/></disk>
            """)
        #expect(disk.mirrorPath == nil && disk.mirrorLeaseName == nil)
    }

    // MARK: The tests' own writer

    /// Every harness writes guest XML with test-functions.sh guest-xml
    /// (TestGuest): what it writes must read back as the guest it describes,
    /// hostile names and paths included, or every test built on it proves
    /// less than it says.
    @Test func theTestWriterReadsBackAsTheGuestItDescribes() throws {
        let odd = "/var/lib/libvirt/images/a'b\"c&d<e>-- f.qcow2"
        let guest = TestGuest(
            name: "web-<1>&'--", state: "paused", reason: "migration", pid: 4242,
            disks: [.init(path: odd, backing: "/base & <x>.img"), .init(path: "/ro", readonly: true),
                    .init(path: "/shared", shareable: true)] + (0..<27).map { .init(path: "/many/\($0)") },
            asyncJob: "migration in")
        let status = try GuestXML.status(from: XMLDocument.parse(string: guest.statusXML(), url: "s.xml"))
        #expect(status.name == guest.name && status.state == .paused && status.stateReason == "migration")
        #expect(status.pid == 4242 && status.asyncJob == "migration in")
        #expect(status.disks.map(\.sourcePath) == guest.disks.map(\.path))
        #expect(status.disks[0].backingStorePaths == ["/base & <x>.img"])
        #expect(status.disks.map(\.readonly).prefix(3) == [false, true, false])
        #expect(status.disks.map(\.shareable).prefix(3) == [false, false, true])
        #expect(Set(status.disks.compactMap(\.target)).count == 30, "vda ... vdz, vdaa ...: no two disks share a target")

        let definition = try GuestXML.definition(from: XMLDocument.parse(string: guest.definitionXML(), url: "d.xml"))
        #expect(definition.name == guest.name && definition.state == .shutoff)
        #expect(definition.disks.map(\.sourcePath) == guest.disks.map(\.path))
    }

    @Test func theTestWriterRefusesWhatItCannotWrite() {
        #expect(throws: GuestXMLWriterError.self) { try TestGuest(name: "nopid").statusXML() }
        #expect(throws: GuestXMLWriterError.self) { try TestGuest(name: "-", pid: 1, capabilities: -1).statusXML() }
    }

    // MARK: Status wrapper

    @Test(arguments: [
        ("running", GuestState.running), ("paused", .paused), ("shutoff", .shutoff), ("shutdown", .shutdown),
        ("crashed", .crashed), ("blocked", .blocked), ("pmsuspended", .pmsuspended), ("nostate", .nostate),
        ("hibernating-in-2030", .unknown), ("unknown", .unknown),
    ])
    func stateStrings(raw: String, state: GuestState) throws {
        let xml = try TestGuest(name: "s", state: raw, pid: 4000).statusXML()
        #expect(try GuestXML.status(from: XMLDocument.parse(string: xml, url: "s.xml")).state == state)
    }

    @Test(arguments: [("1234", Int32(1234) as Int32?), ("0", nil), ("-1", nil), ("abc", nil), ("99999999999", nil)])
    func pidAttribute(raw: String, pid: Int32?) throws {
        let xml = "<domstatus state='running' pid='\(raw)'><domain><name>p</name></domain></domstatus>"
        #expect(try GuestXML.status(from: XMLDocument.parse(string: xml, url: "p.xml")).pid == pid)
    }

    @Test func missingStateAndPidAreKeptAsUnknown() throws {
        let xml = "<domstatus><domain><name>p</name></domain></domstatus>"
        let guest = try GuestXML.status(from: XMLDocument.parse(string: xml, url: "p.xml"))
        #expect(guest.state == .unknown && guest.pid == nil && guest.stateReason == nil)
    }

    @Test(arguments: [
        ("<domain><name>x</name></domain>", 1, "not <domstatus>"),
        ("<domstatus state='running' pid='1'>\n<monitor/>\n</domstatus>", 1, "0 <domain>"),
        ("<domstatus>\n<domain><name>a</name></domain><domain><name>b</name></domain></domstatus>", 1, "2 <domain>"),
        ("<domstatus state='running' pid='1'>\n<domain type='kvm'>\n<devices/></domain></domstatus>", 2, "no <name>"),
        ("<domstatus>\n<domain>\n<name>  </name></domain></domstatus>", 3, "empty"),
    ])
    func unusableStatusDocuments(xml: String, line: Int, message: String) throws {
        let document = try XMLDocument.parse(string: xml, url: "/run/libvirt/qemu/x.xml")
        let error = try #require(throws: GuestSourceError.self) { try GuestXML.status(from: document) }
        #expect(error.file == "/run/libvirt/qemu/x.xml")
        #expect(error.line == line)
        #expect(error.message.contains(message))
    }
}
