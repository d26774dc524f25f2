import Foundation
import TestFixtures

/// The XML fixtures (Tests/TestFixtures/guests).
enum GuestFixtures {
    static let directory = GuestFixtureFiles.directory

    static func path(_ name: String) -> String { GuestFixtureFiles.path(name) }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: path(name), encoding: .utf8)
    }
}

/// Status and definition XML in libvirt's shape, for generated inputs.
enum GuestXMLBuilder {
    static let banner = """
        <!--
        WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
        OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
          virsh edit NAME
        or other application using the libvirt API.
        -->

        """

    /// A `<domstatus>` file with `capabilityCount` `<flag>`s in `<qemuCaps>`
    /// and one writable file disk per path.
    static func status(
        name: String, state: String = "running", reason: String = "booted", pid: Int32 = 4000,
        capabilityCount: Int = 300, diskPaths: [String]
    ) -> String {
        var xml = banner.replacingOccurrences(of: "NAME", with: name)
        xml += "<domstatus state='\(state)' reason='\(reason)' pid='\(pid)'>\n"
        xml += "  <taint flag='high-privileges'/>\n"
        xml += "  <monitor path='/var/lib/libvirt/qemu/domain-1-\(name)/monitor.sock' type='unix'/>\n"
        xml += "  <vcpus>\n    <vcpu id='0' pid='\(pid + 1)'/>\n  </vcpus>\n"
        xml += "  <qemuCaps>\n"
        for index in 0..<capabilityCount {
            xml += "    <flag name='capability-\(index)-of-this-qemu-binary'/>\n"
        }
        xml += "  </qemuCaps>\n"
        xml += "  <devices>\n    <device alias='virtio-disk0'/>\n  </devices>\n"
        xml += "  <libDir path='/var/lib/libvirt/qemu/domain-1-\(name)'/>\n"
        xml += "  <blockjobs active='no'/>\n"
        xml += "  <domain type='kvm' id='1'>\n    <name>\(name)</name>\n"
        xml += "    <uuid>00000000-0000-4000-8000-\(String(repeating: "0", count: 12))</uuid>\n"
        xml += "    <devices>\n      <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
        xml += disksXML(diskPaths, indent: "      ")
        xml += "    </devices>\n  </domain>\n</domstatus>\n"
        return xml
    }

    static func definition(name: String, diskPaths: [String]) -> String {
        var xml = banner.replacingOccurrences(of: "NAME", with: name)
        xml += "<domain type='kvm'>\n  <name>\(name)</name>\n  <devices>\n"
        xml += disksXML(diskPaths, indent: "    ")
        xml += "  </devices>\n</domain>\n"
        return xml
    }

    /// A status file with exactly these `<disk>` elements (written verbatim).
    static func status(name: String, disks: String, state: String = "running", pid: Int32 = 4000) -> String {
        banner.replacingOccurrences(of: "NAME", with: name) + """
            <domstatus state='\(state)' reason='booted' pid='\(pid)'>
              <qemuCaps>
                <flag name='kvm'/>
              </qemuCaps>
              <domain type='kvm' id='1'>
                <name>\(name)</name>
                <devices>
            \(disks)
                </devices>
              </domain>
            </domstatus>

            """
    }

    private static func disksXML(_ paths: [String], indent: String) -> String {
        var xml = ""
        for (index, path) in paths.enumerated() {
            xml += indent + "<disk type='file' device='disk'>\n"
            xml += indent + "  <driver name='qemu' type='qcow2'/>\n"
            xml += indent + "  <source file='\(escaped(path))' index='\(index + 1)'/>\n"
            xml += indent + "  <backingStore/>\n"
            xml += indent + "  <target dev='vd\(UnicodeScalar(UInt8(97 + index % 26)))' bus='virtio'/>\n"
            xml += indent + "</disk>\n"
        }
        return xml
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "'", with: "&apos;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
