import Foundation
import LibXML
@testable import SanlockCleanup
import TestFixtures
import Testing

@Suite("GuestInventory: status and config directories")
struct GuestInventoryTests {
    /// A host layout: `run/qemu` and `run/libxl` for status, `etc/qemu` and
    /// `etc/libxl` for definitions (the libxl ones absent unless created).
    final class Host {
        let root: GuestTemporaryDirectory
        var statusDirectories: [String] { [root.path + "/run/qemu", root.path + "/run/libxl"] }
        var configDirectories: [String] { [root.path + "/etc/qemu", root.path + "/etc/libxl"] }

        init() throws { root = try GuestTemporaryDirectory() }

        @discardableResult
        func status(_ name: String, _ xml: String) throws -> String { try root.write("run/qemu/" + name, xml) }
        @discardableResult
        func config(_ name: String, _ xml: String) throws -> String { try root.write("etc/qemu/" + name, xml) }

        /// Loads with a fake process table: only `livePids` are alive.
        func load(livePids: Set<Int32> = [], limits: XMLParseLimits = .default) -> GuestInventory {
            GuestInventory.load(
                statusDirectories: statusDirectories, configDirectories: configDirectories,
                limits: limits, isProcessAlive: { livePids.contains($0) })
        }
    }

    @Test func readsStatusAndDefinitionsAndSkipsWhatLibvirtKeepsBeside() throws {
        let host = try Host()
        try host.status("alive.xml", TestGuest(name: "alive", pid: 100, disks: [.init(path: "/img/alive.qcow2")], capabilities: 5).statusXML())
        try host.status("stale.xml", TestGuest(name: "stale", pid: 200, disks: [.init(path: "/img/stale.qcow2")], capabilities: 5).statusXML())
        try host.status("demo.xml", GuestFixtures.text("status-demo-paused.xml"))
        // What else lives in /run/libvirt/qemu and /etc/libvirt/qemu.
        try host.status("alive.pid", "100\n")
        try host.status("alive.xml.new", "<domstatus")
        try host.status("dbus/alive-dbus.xml", "<busconfig/>")
        try host.status("swtpm/alive-swtpm.xml", "not xml")
        try host.config("stopped.xml", GuestFixtures.text("definition-stopped.xml"))
        try host.config("networks/default.xml", "<network><name>default</name></network>")
        try host.config("networks/autostart/default.xml", "<network/>")
        try host.config("autostart/README", "x")
        try FileManager.default.createSymbolicLink(
            atPath: host.root.path + "/etc/qemu/autostart/stopped.xml", withDestinationPath: "../stopped.xml")

        let inventory = host.load(livePids: [100, 1234])

        #expect(inventory.statusErrors.isEmpty)
        #expect(inventory.definitionWarnings.isEmpty)
        #expect(inventory.isComplete)
        #expect(inventory.active.map(\.name) == ["alive", "demo", "stale"])
        #expect(inventory.active.map(\.processAlive) == [true, true, false])
        #expect(inventory.active.map(\.state) == [.running, .paused, .running])
        #expect(inventory.active.allSatisfy { $0.isStatus })
        #expect(inventory.staleGuests.map(\.name) == ["stale"])
        #expect(inventory.active[0].file == host.root.path + "/run/qemu/alive.xml")
        #expect(inventory.active[0].leaseNames == [DiskLeaseName.forSourcePath("/img/alive.qcow2")])
        #expect(inventory.defined.map(\.name) == ["stopped"])
        #expect(inventory.defined[0].state == .shutoff && !inventory.defined[0].isStatus)
    }

    @Test func missingDirectoriesAreNormal() throws {
        let host = try Host()
        let inventory = host.load()
        #expect(inventory.active.isEmpty && inventory.defined.isEmpty)
        #expect(inventory.statusErrors.isEmpty && inventory.definitionWarnings.isEmpty)
        #expect(inventory.isComplete)
    }

    @Test func unparsableStatusFileFailsClosedWithFileLineAndMessage() throws {
        let host = try Host()
        try host.status("good.xml", TestGuest(name: "good", pid: 4000, disks: [.init(path: "/img/good")], capabilities: 1).statusXML())
        let truncated = try host.status("cut.xml", GuestFixtures.text("status-truncated.xml"))
        let inventory = host.load()

        #expect(!inventory.isComplete)
        #expect(inventory.active.map(\.name) == ["good"])
        let error = try #require(inventory.statusErrors.first)
        #expect(inventory.statusErrors.count == 1)
        #expect(error.file == truncated)
        #expect(error.line == 384) // the cut-off last line
        #expect(error.message == "Premature end of data in tag disk line 380")
        #expect(error.description.hasPrefix(truncated + ":384:"))
    }

    @Test func statusFileThatIsNotAStatusFails() throws {
        let host = try Host()
        let path = try host.status("confused.xml", GuestFixtures.text("definition-stopped.xml"))
        let inventory = host.load()
        #expect(inventory.statusErrors == [
            GuestSourceError(file: path, line: 8, message: "root element is <domain>, not <domstatus>"),
        ])
    }

    @Test func brokenDefinitionsAreWarningsOnly() throws {
        let host = try Host()
        try host.config("good.xml", TestGuest(name: "good", disks: [.init(path: "/img/good")]).definitionXML())
        let broken = try host.config("broken.xml", "<domain>\n<name>broken</name>\n<devices>\n</domain>\n")
        let network = try host.config("net.xml", "<network><name>default</name></network>")
        let inventory = host.load()

        #expect(inventory.isComplete)
        #expect(inventory.defined.map(\.name) == ["good"])
        #expect(inventory.definitionWarnings.map(\.file) == [broken, network])
        #expect(inventory.definitionWarnings[0].line == 4)
        #expect(inventory.definitionWarnings[1].message == "root element is <network>, not <domain>")
    }

    @Test func xxeInAStatusFileLeaksNothingAndFailsClosed() throws {
        let host = try Host()
        let path = try host.status("evil.xml", GuestFixtures.text("status-xxe.xml"))
        try host.status("lol.xml", GuestFixtures.text("status-billion-laughs.xml"))
        let inventory = host.load()
        #expect(inventory.active.isEmpty)
        #expect(inventory.statusErrors.count == 2)
        #expect(inventory.statusErrors.map(\.file) == [path, host.root.path + "/run/qemu/lol.xml"])
        #expect(inventory.statusErrors.allSatisfy { $0.message.contains("DOCTYPE") })
        #expect(!inventory.statusErrors.contains { $0.description.contains("root:") })
    }

    @Test func statusDirectoryThatCannotBeListedFails() throws {
        let host = try Host()
        try host.root.write("run/qemu", "a file where a directory should be")
        let inventory = host.load()
        #expect(inventory.statusErrors.count == 1)
        #expect(inventory.statusErrors.first?.file == host.root.path + "/run/qemu")
        #expect(inventory.statusErrors.first?.message.contains("Not a directory") == true)
    }

    @Test func configDirectoryThatCannotBeListedWarns() throws {
        let host = try Host()
        try host.root.write("etc/qemu", "a file")
        let inventory = host.load()
        #expect(inventory.isComplete)
        #expect(inventory.definitionWarnings.map(\.file) == [host.root.path + "/etc/qemu"])
    }

    @Test(.timeLimit(.minutes(1)))
    func oddEntriesInTheStatusDirectory() throws {
        let host = try Host()
        let outside = try host.root.write("elsewhere/target.xml", TestGuest(name: "linked", pid: 4000, disks: [.init(path: "/img/l")], capabilities: 1).statusXML())
        try host.root.makeDirectory("run/qemu")
        let statusDirectory = host.statusDirectories[0]
        try FileManager.default.createSymbolicLink(atPath: statusDirectory + "/linked.xml", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: statusDirectory + "/dangling.xml", withDestinationPath: "/nonexistent/x.xml")
        #expect(mkfifo(statusDirectory + "/fifo.xml", 0o600) == 0)
        try host.root.makeDirectory("run/qemu/dir.xml")

        let inventory = host.load()
        // Never followed: an error, so a cleaning run deletes nothing.
        #expect(inventory.active.isEmpty)
        #expect(inventory.statusErrors.map(\.file) == [
            statusDirectory + "/dangling.xml", statusDirectory + "/dir.xml", statusDirectory + "/fifo.xml",
            statusDirectory + "/linked.xml",
        ])
        #expect(inventory.statusErrors.map(\.message) == [
            "a symbolic link (never followed)", "not a regular file", "not a regular file", "a symbolic link (never followed)",
        ])
    }

    @Test func nonUTF8FileNameIsReadAndShownEscaped() throws {
        let host = try Host()
        try host.root.makeDirectory("run/qemu")
        let name: [UInt8] = Array("bad".utf8) + [0xFF] + Array(".xml".utf8)
        let path = Array(host.statusDirectories[0].utf8) + [UInt8(ascii: "/")] + name + [0]
        let xml = try TestGuest(name: "bytes", pid: 4000, disks: [.init(path: "/img/b")], capabilities: 1).statusXML()
        let fd = path.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o600) }
        }
        try #require(fd >= 0)
        _ = Array(xml.utf8).withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        close(fd)

        let inventory = host.load()
        #expect(inventory.statusErrors.isEmpty)
        #expect(inventory.active.map(\.name) == ["bytes"])
        #expect(inventory.active.first?.file == host.statusDirectories[0] + "/bad\\xff.xml")
    }

    @Test func oversizedStatusFileFailsClosed() throws {
        let host = try Host()
        let path = try host.status("big.xml", TestGuest(name: "big", pid: 4000, disks: [.init(path: "/img/x")], capabilities: 300).statusXML())
        let inventory = host.load(limits: XMLParseLimits(maxBytes: 4096))
        #expect(inventory.statusErrors.map(\.file) == [path])
        #expect(inventory.statusErrors.first?.message.contains("4096-byte limit") == true)
    }

    // MARK: Process liveness

    @Test func livenessOfRealProcesses() throws {
        #expect(ProcessLiveness.isAlive(getpid()))
        #expect(ProcessLiveness.isAlive(1))
        #expect(!ProcessLiveness.isAlive(0))
        #expect(!ProcessLiveness.isAlive(-5))

        // A child that has exited and been reaped: its pid is gone.
        var child: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(argv[0]) }
        try #require(posix_spawn(&child, "/bin/true", nil, nil, argv, nil) == 0)
        var status: Int32 = 0
        try #require(waitpid(child, &status, 0) == child)
        #expect(!ProcessLiveness.isAlive(child))
    }

    @Test func defaultLoadChecksTheRealProcessTable() throws {
        let host = try Host()
        try host.status("me.xml", TestGuest(name: "me", pid: getpid(), disks: [.init(path: "/img/me")], capabilities: 1).statusXML())
        try host.status("nopid.xml", "<domstatus state='running'><domain><name>nopid</name></domain></domstatus>")
        let inventory = GuestInventory.load(statusDirectories: host.statusDirectories, configDirectories: host.configDirectories)
        #expect(inventory.active.map(\.name) == ["me", "nopid"])
        #expect(inventory.active.map(\.processAlive) == [true, nil])
        #expect(inventory.staleGuests.isEmpty)
    }

    @Test func xenStatusPidIsNotJudged() throws {
        let host = try Host()
        try host.root.write("run/libxl/xenguest.xml", """
            <domstatus state='running' reason='booted' pid='200'>
              <domain type='xen' id='5'>
                <name>xenguest</name>
                <devices>
                  <disk type='file' device='disk'><source file='/img/xen.img'/><target dev='xvda'/></disk>
                </devices>
              </domain>
            </domstatus>
            """)
        let inventory = host.load(livePids: [])
        #expect(inventory.active.map(\.name) == ["xenguest"])
        #expect(inventory.active.first?.domainType == "xen")
        #expect(inventory.active.first?.pid == 200)
        #expect(inventory.active.first?.processAlive == nil)
        #expect(inventory.staleGuests.isEmpty)
    }

    // MARK: Scale

    /// 500 status files, each with 300 `<qemuCaps>` flags and 10 disks (about
    /// 20 KiB apiece, like real ones), all read and mapped. How long that
    /// takes is make bench's business (its audit row reads status files); the
    /// time printed here is for a reader, never asserted.
    @Test func fiveHundredStatusFiles() throws {
        let host = try Host()
        try TestGuest.writeStatuses((0..<500).map { guest in
            let paths = (0..<10).map { "/var/lib/libvirt/images/guest-\(guest)-disk-\($0).qcow2" }
            return (TestGuest(name: "guest-\(guest)", pid: Int32(10_000 + guest), disks: paths.map { .init(path: $0) }),
                    host.statusDirectories[0] + String(format: "/guest-%03d.xml", guest))
        })
        let clock = ContinuousClock()
        var inventory = GuestInventory()
        let elapsed = clock.measure { inventory = host.load(livePids: Set((10_000..<10_500).map { Int32($0) })) }
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        print("GuestInventory.load: 500 status files (300 flags, 10 disks each) in \(Int(milliseconds)) ms")

        #expect(inventory.statusErrors.isEmpty)
        #expect(inventory.active.count == 500)
        #expect(Set(inventory.active.flatMap(\.leaseNames)).count == 5000)
        #expect(inventory.active.allSatisfy { $0.processAlive == true && $0.disks.count == 10 })
    }
}
