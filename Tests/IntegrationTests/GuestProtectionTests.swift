import Foundation
import TestFixtures
import Testing

/// Guests described by libvirt's XML protect their leases, whatever sanlock
/// says about them (issue: paused guests, daemon restarts, fail closed).
@Suite("Guests protect their leases (real daemon, libvirt-shaped XML)", .enabled(if: DaemonTestEnvironment.shouldRun))
struct GuestProtectionTests {
    @Test("A paused guest's lease is free in sanlock but kept; deleted once its status file is gone")
    func pausedGuest() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let disk = "/var/lib/libvirt/images/paused guest:1.qcow2"
            let lease = try await leaseName(forDisk: disk)
            try await host.createLease(lease, in: cluster.leases)
            // The guest ran (acquired) and paused (libvirt released the lease).
            try await host.release(try await host.hold(lease, in: cluster.leases))
            let status = cluster.scratch.path + "/run-libvirt-qemu"
            try TestGuest(name: "web1", state: "paused", pid: getpid(), disks: [.init(path: disk, backing: "/var/lib/libvirt/images/base.img")])
                .writeStatus(in: status)

            for dryRun in [true, false] {
                let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status] + (dryRun ? ["-n"] : []), daemon: host)
                #expect(run.status == 0, "\(run.result.stderr)")
                let entry = try run.lease(lease)
                #expect(entry.action == "kept")
                #expect(entry.reason == "used-by-guest")
                #expect(entry.guest == "web1")
                #expect(entry.guestState == "paused")
                #expect(entry.disk?.text == disk)
                #expect(entry.held == false)
            }
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))

            try FileManager.default.removeItem(atPath: status + "/web1.xml")
            let after = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status], daemon: host)
            #expect(try after.lease(lease).action == "deleted")
            #expect(!FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
        }
    }

    @Test("After a sanlock restart a running guest's lease could be taken: its status XML keeps it")
    func daemonRestart() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let disk = "/var/lib/libvirt/images/db1.qcow2"
            let lease = try await leaseName(forDisk: disk)
            try await host.createLease(lease, in: cluster.leases)
            let guest = try await host.hold(lease, in: cluster.leases)
            // sanlock dies and comes back; the guest (its qemu) keeps running
            // but sanlock no longer knows it holds anything.
            host.crashDaemonOnly()
            let restarted = try await TestSanlockDaemon.start(runDirectory: host.runDirectory, hostName: host.hostName)
            try await restarted.join(cluster.leases, hostID: 1)
            defer { guest.terminate() }
            let status = cluster.scratch.path + "/status"
            try TestGuest(name: "db1", state: "running", pid: guest.processIdentifier, disks: [.init(path: disk)]).writeStatus(in: status)

            // Without the XML the lease looks abandoned (held by the previous
            // incarnation of this host): sanlock would hand it over.
            let blind = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "-n"], daemon: restarted)
            #expect(try blind.lease(lease).action == "would-delete")
            #expect(try blind.lease(lease).reason == "owner-host-restarted")

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status], daemon: restarted)
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(lease).action == "kept")
            #expect(try run.lease(lease).reason == "used-by-guest")
            #expect(try run.lease(lease).guestState == "running")
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: lease)))
            await restarted.stop()
        }
    }

    @Test("A status XML that cannot be parsed: nothing is deleted and the file and line are named")
    func unreadableStatusFailsClosed() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let free = String(repeating: "a", count: 32)
            try await host.createLease(free, in: cluster.leases)
            let status = cluster.scratch.path + "/status"
            try FileManager.default.createDirectory(atPath: status, withIntermediateDirectories: true)
            try "<domstatus state='running'>\n  <domain>\n    <name>broken</name>\n".write(
                toFile: status + "/broken.xml", atomically: true, encoding: .utf8)

            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status], daemon: host)
            #expect(run.status == 1)
            #expect(run.document?.error?.code == "guests-unknown")
            #expect(run.result.stderr.contains(status + "/broken.xml:"))
            #expect(run.result.stderr.contains("nothing deleted"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))

            // A dry run still reports, and says a cleaning run would stop.
            let dry = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status, "-n"], daemon: host)
            #expect(dry.status == 0)
            #expect(dry.document?.warnings?.strings?.contains { $0.contains("broken.xml") && $0.contains("would delete nothing") } == true)
        }
    }

    @Test("An XXE status file neither leaks a file nor passes: fail closed")
    func xxeStatusFailsClosed() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let secretDisk = cluster.scratch.path + "/secret"
            try "/var/lib/libvirt/images/leaked.qcow2".write(toFile: secretDisk, atomically: true, encoding: .utf8)
            let free = try await leaseName(forDisk: "/var/lib/libvirt/images/leaked.qcow2")
            try await host.createLease(free, in: cluster.leases)
            let status = cluster.scratch.path + "/status"
            try FileManager.default.createDirectory(atPath: status, withIntermediateDirectories: true)
            try """
                <?xml version="1.0"?>
                <!DOCTYPE domstatus [<!ENTITY disk SYSTEM "file://\(secretDisk)">]>
                <domstatus state='paused' pid='1'><domain><name>x</name><devices>
                <disk type='file' device='disk'><source file='&disk;'/></disk></devices></domain></domstatus>
                """.write(toFile: status + "/xxe.xml", atomically: true, encoding: .utf8)
            let run = try await JanitorBinary.run(["--lease-dir", cluster.leases.path, "--status-dir", status], daemon: host)
            #expect(run.status == 1)
            #expect(run.document?.error?.code == "guests-unknown")
            #expect(!run.result.stderr.contains("leaked.qcow2"))
            #expect(FileManager.default.fileExists(atPath: cluster.leases.path(of: free)))
        }
    }

    @Test("The report names the guest and disk behind each lease: stopped guests, stale status files, unknown disks")
    func reportNamesGuests() async throws {
        try await withCluster { cluster in
            let host = cluster.host(1)
            let stoppedDisk = "/var/lib/libvirt/images/web1.qcow2"
            let staleDisk = "/var/lib/libvirt/images/ghost.qcow2"
            let stopped = try await leaseName(forDisk: stoppedDisk)
            let stale = try await leaseName(forDisk: staleDisk)
            let unknown = String(repeating: "c", count: 32)
            for lease in [stopped, stale, unknown] { try await host.createLease(lease, in: cluster.leases) }
            let definitions = cluster.scratch.path + "/etc-libvirt-qemu"
            let status = cluster.scratch.path + "/run-libvirt-qemu"
            try TestGuest(name: "web1", disks: [.init(path: stoppedDisk)]).writeDefinition(in: definitions)
            // A status file whose qemu is gone: a pid that cannot exist.
            try TestGuest(name: "ghost", state: "running", pid: 4_000_000, disks: [.init(path: staleDisk)]).writeStatus(in: status)
            // Definitions that cannot be parsed are only warnings.
            try "<domain><name>half".write(toFile: definitions + "/half.xml", atomically: true, encoding: .utf8)

            let arguments = ["--lease-dir", cluster.leases.path, "--status-dir", status, "--config-dir", definitions]
            let run = try await JanitorBinary.run(arguments, daemon: host)
            #expect(run.status == 0, "\(run.result.stderr)")
            #expect(try run.lease(stopped).action == "deleted")
            #expect(try run.lease(stopped).guest == "web1")
            #expect(try run.lease(stopped).guestState == "shutoff")
            #expect(try run.lease(stopped).disk?.text == stoppedDisk)
            #expect(try run.lease(stale).action == "kept")
            #expect(try run.lease(stale).reason == "stale-guest-status")
            #expect(try run.lease(unknown).action == "deleted")
            #expect(try run.lease(unknown).unknownDisk == true)
            #expect(run.document?.warnings?.strings?.contains { $0.contains("half.xml") } == true)
            #expect(run.document?.warnings?.strings?.contains { $0.contains("ghost") && $0.contains("4000000") } == true)

            try await host.createLease(stopped, in: cluster.leases)
            try await host.createLease(unknown, in: cluster.leases)
            let text = try await JanitorBinary.run(arguments + ["-n"], daemon: host, json: false)
            #expect(text.result.stdout.contains("free, never acquired; disk \(stoppedDisk) of stopped guest web1"))
            #expect(text.result.stdout.contains("free, never acquired; unknown disk"))
            #expect(text.result.stdout.contains("guest ghost's status file says running but its process (pid 4000000) is gone"))
        }
    }
}
