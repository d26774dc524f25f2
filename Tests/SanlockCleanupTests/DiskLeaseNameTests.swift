import Foundation
@testable import SanlockCleanup
import TestFixtures
import Testing

@Suite("DiskLeaseName: libvirt's MD5 naming of auto disk leases")
struct DiskLeaseNameTests {
    /// Expected values computed with `printf %s PATH | md5sum`.
    @Test(arguments: [
        ("/var/lib/libvirt/images/demo.img", "bfa0240911bc17753e0b473688822159"),
        ("/dev/mapper/vg0-data", "e7a2b0189bd9bf1e8a3c5bba95468fc5"),
        ("/srv/guests/share", "7ccf2ca99c63560dcabacbab7fd84afa"),
        ("/var/lib/libvirt/images/it's & <odd>.img", "36fad03005512d1e486d70cd7d143320"),
    ])
    func md5OfThePathAsWritten(path: String, expected: String) {
        #expect(DiskLeaseName.forSourcePath(path) == expected)
    }

    @Test func symlinkedPathHashesAsWrittenNotAsResolved() throws {
        let directory = try GuestTemporaryDirectory()
        let target = try directory.write("demo.img", "")
        let link = directory.path + "/demo-link.img"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)

        #expect(DiskLeaseName.forSourcePath(link) != DiskLeaseName.forSourcePath(target))
        // The well-known spelling of the same idea, with a fixed expected value.
        #expect(DiskLeaseName.forSourcePath("/var/lib/libvirt/images/demo-link.img") == "9daa6037aac228c3909005cf3b2234b9")
    }

    @Test func dotDotPathIsNotNormalised() {
        let name = DiskLeaseName.forSourcePath("/var/lib/libvirt/images/../images/demo.img")
        #expect(name == "7a55b2b4fb4445534c1e60c5447c1c01")
        #expect(name != "bfa0240911bc17753e0b473688822159")
    }

    @Test func nonASCIIPathHashesItsUTF8Bytes() {
        #expect(DiskLeaseName.forSourcePath("/var/lib/libvirt/images/Ünïcødé disk.qcow2") == "fbcd27245c031b22d2cbfa7573c2c145")
    }

    /// Swift's `==` calls NFC and NFD spellings equal; libvirt hashes bytes.
    @Test func unicodeNormalisationFormsAreDifferentLeases() {
        let composed = "/var/lib/libvirt/images/caf\u{E9}.img"
        let decomposed = "/var/lib/libvirt/images/cafe\u{301}.img"
        #expect(composed == decomposed)
        #expect(DiskLeaseName.forSourcePath(composed) == "d68b07b244ff33cc0882f61d160eba8c")
        #expect(DiskLeaseName.forSourcePath(decomposed) == "975d15de44735ea507d03f820b14e949")
    }

    @Test(arguments: ["/a", "/var/lib/libvirt/images/demo.img", String(repeating: "x", count: 5000), "/ü"])
    func nameIs32LowercaseHexDigits(path: String) {
        let name = DiskLeaseName.forSourcePath(path)
        #expect(name.utf8.count == 32)
        #expect(name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var disk: GuestDisk
        var expected: String?
        var testDescription: String { label }
    }

    static let demo = "/var/lib/libvirt/images/demo.img"
    static let demoLease = "bfa0240911bc17753e0b473688822159"

    @Test(arguments: [
        Case(label: "file", disk: GuestDisk(type: "file", sourcePath: demo), expected: demoLease),
        Case(label: "block", disk: GuestDisk(type: "block", sourcePath: "/dev/mapper/vg0-data"),
             expected: "e7a2b0189bd9bf1e8a3c5bba95468fc5"),
        Case(label: "dir", disk: GuestDisk(type: "dir", sourcePath: "/srv/guests/share"),
             expected: "7ccf2ca99c63560dcabacbab7fd84afa"),
        Case(label: "shareable", disk: GuestDisk(type: "file", sourcePath: demo, shareable: true), expected: demoLease),
        Case(label: "floppy", disk: GuestDisk(type: "file", device: "floppy", sourcePath: demo), expected: demoLease),
        Case(label: "readonly", disk: GuestDisk(type: "file", sourcePath: demo, readonly: true), expected: nil),
        Case(label: "no source", disk: GuestDisk(type: "file", sourcePath: nil), expected: nil),
        Case(label: "empty source", disk: GuestDisk(type: "file", sourcePath: ""), expected: nil),
        Case(label: "network", disk: GuestDisk(type: "network", sourcePath: demo), expected: nil),
        Case(label: "nvme", disk: GuestDisk(type: "nvme", sourcePath: demo), expected: nil),
        Case(label: "vhostuser", disk: GuestDisk(type: "vhostuser", sourcePath: demo), expected: nil),
        Case(label: "vhostvdpa", disk: GuestDisk(type: "vhostvdpa", sourcePath: demo), expected: nil),
        Case(label: "volume, untranslated",
             disk: GuestDisk(type: "volume", sourcePath: nil, volume: VolumeSource(pool: "default", volume: "v")),
             expected: nil),
        Case(label: "volume, translated to a file",
             disk: GuestDisk(type: "volume", sourcePath: demo,
                             volume: VolumeSource(pool: "default", volume: "v", translatedType: "file")),
             expected: demoLease),
        Case(label: "unknown type", disk: GuestDisk(type: "floppy-tape", sourcePath: demo), expected: nil),
    ])
    func whichDisksGetALease(_ testCase: Case) {
        #expect(DiskLeaseName.leaseName(for: testCase.disk) == testCase.expected)
        #expect(testCase.disk.leaseName == testCase.expected)
    }

    @Test func mirrorDestinationGetsItsOwnName() {
        let disk = GuestDisk(sourcePath: Self.demo, mirrorPath: "/var/lib/libvirt/images/copy-dest.qcow2", mirrorType: "file")
        #expect(disk.mirrorLeaseName == "9a5e53edad256d413bc822ad68ec1020")
        let guest = Guest(name: "g", state: .running, file: "f", isStatus: true, disks: [disk])
        #expect(guest.leaseNames == [Self.demoLease, "9a5e53edad256d413bc822ad68ec1020"])
    }
}
