import Foundation

/// Writes guest XML in libvirt's real shape: comment banner, `<domstatus>`
/// with private data and a `<qemuCaps>` block, then the live `<domain>` with
/// nested backing chains. For tests that need libvirt's files without libvirt.
struct TestGuest {
    struct Disk {
        var path: String
        var readonly = false
        var shareable = false
        var backing: String? = nil
    }

    var name: String
    var state = "running"
    var pid: Int32? = nil
    var disks: [Disk]
    /// `<job async=...>`: `migration in` on a live migration's destination.
    var asyncJob: String? = nil

    func disksXML() -> String {
        disks.enumerated().map { index, disk in
            let backing = disk.backing.map {
                "<backingStore type='file' index='1'><format type='raw'/><source file='\($0)'/><backingStore/></backingStore>"
            } ?? "<backingStore/>"
            return """
                    <disk type='file' device='disk'>
                      <driver name='qemu' type='qcow2'/>
                      <source file='\(xmlEscaped(disk.path))' index='\(index + 2)'/>
                      \(backing)
                      <target dev='vd\(Character(UnicodeScalar(97 + index)!))' bus='virtio'/>
                      \(disk.readonly ? "<readonly/>" : "")\(disk.shareable ? "<shareable/>" : "")
                      <alias name='virtio-disk\(index)'/>
                    </disk>
                """
        }.joined(separator: "\n")
    }

    /// /run/libvirt/qemu/<name>.xml
    func statusXML() -> String {
        let flags = (0..<300).map { "    <flag name='capability-\($0)'/>" }.joined(separator: "\n")
        return """
            <!--
            WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
            OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
              virsh edit \(name)
            or other application using the libvirt API.
            -->

            <domstatus state='\(state)' reason='user' pid='\(pid ?? 0)'>
              <monitor path='/var/lib/libvirt/qemu/domain-1-\(name)/monitor.sock' type='unix'/>
              \(asyncJob.map { "<job type='none' async='\($0)' phase='begin'/>" } ?? "")
              <qemuCaps>
            \(flags)
              </qemuCaps>
              <devices>
                <device alias='virtio-disk0'/>
              </devices>
              <domain type='kvm' id='1'>
                <name>\(name)</name>
                <memory unit='KiB'>65536</memory>
                <os><type arch='x86_64' machine='pc'>hvm</type></os>
                <devices>
            \(disksXML())
                </devices>
              </domain>
            </domstatus>
            """
    }

    /// /etc/libvirt/qemu/<name>.xml
    func definitionXML() -> String {
        """
        <!--
        WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
        OVERWRITTEN AND LOST.
        -->
        <domain type='kvm'>
          <name>\(name)</name>
          <memory unit='KiB'>65536</memory>
          <devices>
        \(disksXML())
          </devices>
        </domain>
        """
    }

    func writeStatus(in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try statusXML().write(toFile: directory + "/\(name).xml", atomically: true, encoding: .utf8)
    }

    func writeDefinition(in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try definitionXML().write(toFile: directory + "/\(name).xml", atomically: true, encoding: .utf8)
    }
}

private func xmlEscaped(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "'", with: "&apos;")
        .replacingOccurrences(of: "<", with: "&lt;")
}

/// What libvirt names a disk's lease: MD5 of the path, as the tests compute
/// it independently of the code under test (coreutils' md5sum).
func leaseName(forDisk path: String) async throws -> String {
    let result = try await Command.run(["sh", "-c", "printf %s \"$0\" | md5sum", path])
    return String(result.stdout.prefix(32))
}
