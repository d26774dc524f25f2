import ArgumentParser
import CLinux
// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import SanlockCleanup
import SystemCalls
import SystemPackage

@main
struct VirtSanlockCleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "virt-sanlock-cleanup",
        abstract: "Delete libvirt's unused sanlock disk leases, each one under its own lease.",
        discussion: """
            Walks the sanlock lease directory of libvirt's auto disk leases \
            (disk_lease_dir in qemu-sanlock.conf), decides for every entry whether \
            any guest on any host may still use it, and deletes only leases that \
            nobody holds: acquire without waiting, invalidate, unlink, release. \
            Leases held by any host, entries that are not leases, symlinks and \
            directories are never deleted; the report says why each was kept.
            """ + "\n\n" + exitStatusHelp,
        version: version
    )

    /// The exit statuses as `ExitStatus` describes them, one per line
    /// (`make man` copies them from here into the man page).
    static let exitStatusHelp = "Exit status:\n" + ExitStatus.descriptions.map { "\($0.status): \($0.meaning)" }
        .joined(separator: "\n")

    @OptionGroup var site: SiteOptions
    @OptionGroup var guests: GuestOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var output: OutputOptions

    /// SIGPIPE is ignored before anything else runs: a reader that goes away
    /// (`| head`), or a sanlock daemon that dies while libsanlock_client
    /// writes to its socket (it sends without MSG_NOSIGNAL), must not kill a
    /// run between two steps of a deletion. Writes then fail with EPIPE.
    ///
    /// The arguments come from what glibc passed to the process, not from
    /// `CommandLine.arguments`, which the Swift runtime reads from /proc and
    /// leaves empty when that read fails: parsed from nothing, `--dry-run`
    /// would become a cleaning run with every default.
    static func main() {
        Syscall.ignoreSignal(SIGPIPE)
        SignalWatch.blockHandledSignals()
        let count = vsc_argument_count()
        guard count > 0 else {
            let message = "virt-sanlock-cleanup: error: cannot read the command line; nothing done\n"
            try? FileDescriptor.standardError.writeFully(message.utf8)
            Syscall.exit(ExitStatus.fatal.rawValue)
        }
        let arguments = (1..<count).map { index in
            vsc_argument(index).map { String(cString: $0) } ?? ""
        }
        main(arguments)
    }

    func run() throws {
        let mode = policy.mode
        let lifecycle = RunLifecycle(mode: mode, output: output, leaseDirectory: site.leaseDirectory ?? "")
        let (logger, control, progress) = (lifecycle.logger, lifecycle.control, lifecycle.progress)
        switch mode {
        case .audit:
            try lifecycle.perform { () throws(JanitorError) in
                try Audit(configuration: try runConfiguration(), logger: logger).run(control: control)
            }
        case .clean, .dryRun:
            var onProgress: (@Sendable (Int, Int) -> Void)?
            if let progress { onProgress = { done, total in progress.update(done: done, total: total) } }
            try lifecycle.perform { () throws(JanitorError) in
                try Janitor(configuration: try runConfiguration(), logger: logger, control: control).run(progress: onProgress)
            }
        }
    }

    /// The run's configuration: the lock manager's file, then the flags.
    func runConfiguration() throws(JanitorError) -> RunConfiguration {
        let lockManager: LockManagerConfig
        do {
            lockManager = try LockManagerConfig.load(path: site.config)
        } catch {
            throw .configuration(error)
        }
        // The default status directories may be missing (no libvirt, no Xen);
        // one named on the command line must exist: a typo would hide every
        // running and paused guest.
        for directory in guests.statusDirectories {
            guard (try? Syscall.status(ofPath: directory.utf8))?.type == .directory else {
                throw .statusDirectoryMissing(directory)
            }
        }
        return RunConfiguration(
            leaseDirectory: site.leaseDirectory ?? lockManager.diskLeaseDirectory,
            mode: policy.mode,
            jobs: policy.jobs?.value,
            daemonTimeout: policy.daemonTimeout.seconds,
            configuredHostID: lockManager.hostID,
            hostIDOverride: site.hostID?.value,
            statusDirectories: guests.statusDirectories.isEmpty ? RunConfiguration.defaultStatusDirectories : guests.statusDirectories,
            configDirectories: guests.configDirectories.isEmpty ? RunConfiguration.defaultConfigDirectories : guests.configDirectories,
            policy: policy.deletionPolicy,
            autoDiskLeasesOffIn: lockManager.fileExisted && !lockManager.autoDiskLeases ? lockManager.path : nil)
    }
}
