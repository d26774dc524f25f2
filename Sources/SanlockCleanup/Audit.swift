// FoundationEssentials (Date, JSONEncoder) links no ICU; Foundation would add
// 34 MB of it to the binary (make check-deb fails if it comes back).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sanlock
import SystemCalls

/// `--audit`: proves, for every guest libvirt runs or keeps paused here, that
/// each disk is protected by its lease. Changes nothing. Inventory (the
/// daemon's tokens, the guests, the file at each lease path) → judgement
/// (`Protection.judge`) → report; this is the only place that wires them.
public struct Audit: Sendable {
    public let configuration: RunConfiguration
    public let logger: Logger
    /// How long to wait before reading again a guest that looked unprotected
    /// (see `run`).
    public var settleDelay: Double = 0.5

    public init(configuration: RunConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Throws when the audit cannot know: no daemon to ask, a status file
    /// that cannot be read.
    public func run() throws(JanitorError) -> AuditReport {
        let started = Date()
        let clock = ContinuousClock.now
        let directory: LeaseDirectory
        do {
            directory = try LeaseDirectory(path: configuration.leaseDirectory)
        } catch {
            throw .leaseDirectory(error)
        }
        var snapshot = try Snapshot.take(directory: directory, configuration, logger: logger)
        // libvirt changes a guest's leases and its status file one after the
        // other (pause: release, then write "paused"; resume: acquire, then
        // write "running"), and the audit reads the two at different
        // instants. A disk that looks unprotected is only reported as such
        // when a second reading, once libvirt had time to finish, agrees.
        if snapshot.guests.contains(where: { $0.disks.contains { !$0.finding.protection.isProtected } }) {
            logger.debug("a disk looks unprotected: reading everything again", metadata: ["delay_s": "\(settleDelay)"])
            Syscall.sleep(seconds: settleDelay)
            snapshot = try Snapshot.take(directory: directory, configuration, logger: logger)
        }
        for guest in snapshot.guests {
            for disk in guest.disks {
                logger.debug("\(guest.name.escapingControlCharacters()) \(disk.target?.escapingControlCharacters() ?? "-"): \(disk.finding.protection.rawValue)",
                             metadata: ["protection": "\(disk.finding.protection.rawValue)", "detail": "\(disk.finding.detail)"])
            }
        }
        return AuditReport(
            leaseDirectory: directory.path, host: snapshot.host, guests: snapshot.guests,
            unaccountedLeases: snapshot.unaccounted, warnings: snapshot.warnings,
            startedAt: started, duration: (ContinuousClock.now - clock).seconds)
    }
}

/// One reading of everything the audit judges from.
struct Snapshot {
    var host: AuditReport.Host
    var guests: [AuditReport.Guest]
    var unaccounted: [DaemonStatus.Token]
    var warnings: [RunWarning]

    static func take(directory: LeaseDirectory, _ configuration: RunConfiguration, logger: Logger) throws(JanitorError) -> Snapshot {
        let lockspace = LeaseClassifier.lockspaceName
        var findings = RunFindings(cleaning: false)
        if let file = configuration.autoDiskLeasesOffIn { findings.warn(.autoDiskLeasesOff(configurationFile: file)) }

        // sanlock first: without it nothing can be proved.
        let sanlock = SanlockView.gather(lockspace: lockspace, directory: directory)
        if case .unreachable(let error) = sanlock.availability {
            if error.code == .permissionDenied || error.code == .notPermitted { throw .sanlockPermissionDenied(error) }
            throw .daemonUnreachable(error)
        }
        if let error = sanlock.lockspaceQueryError { throw .daemonUnreachable(error) }
        let status: DaemonStatus
        do {
            status = try SanlockClient.status()
        } catch {
            throw .daemonUnreachable(error)
        }
        for warning in sanlock.warnings(configuredHostID: configuration.configuredHostID) { findings.warn(warning) }
        if let joined = sanlock.joined, !sanlock.joinedFromThisDirectory {
            findings.warn(.auditLimited(.lockspaceJoinedElsewhere(path: joined.path, offset: joined.offset)))
        }

        let inventory = GuestInventory.load(
            statusDirectories: configuration.statusDirectories, configDirectories: configuration.configDirectories)
        guard inventory.isComplete else { throw .guestsUnknown(inventory.statusErrors) }
        for guest in inventory.staleGuests { findings.warn(.staleGuestStatus(guest)) }

        // Not joined (a daemon restarted under the guests), this host is
        // still the configured id: a lease its earlier incarnation holds is
        // this host's, not another host's.
        let thisHostID = sanlock.thisHostID ?? configuration.hostIDOverride ?? configuration.configuredHostID
        let generation = thisHostID.flatMap { sanlock.hosts?[$0]?.generation }
        let image = Inventory.readLockspaceImage(in: directory, findings: &findings)
        let hostNames = image?.hostNames ?? [:]
        let scanner = InventoryScanner(directory: directory, classifier: Inventory.classifier(image: image, hosts: sanlock.hosts))

        let auditedGuests = inventory.running.filter { !$0.isStale }
        // Each disk's file, read once even when guests share a disk.
        var files: [String: EntryKind] = [:]
        for name in Set(auditedGuests.flatMap { $0.disks.compactMap(\.leaseName) }) {
            files[name] = scanner.examine(EntryName(name)).kind
        }
        var hosts = sanlock.hosts ?? [:]
        Inventory.completeHostTable(&hosts, owners: files.values.compactMap(\.leaseStateOwners).flatMap { $0 })

        var guests: [AuditReport.Guest] = []
        var accounted = Set<AccountedToken>()
        for guest in auditedGuests {
            let ownPIDs = processes(of: guest, in: status)
            var disks: [AuditReport.Disk] = []
            for disk in guest.disks where disk.leaseName != nil || disk.isUnmappedVolume {
                let holders = disk.leaseName.map { status.holders(of: $0, in: lockspace) } ?? []
                let own = holders.filter { ownPIDs.contains($0.pid) }
                let facts = ProtectionFacts(
                    guestPaused: guest.state == .paused || guest.state == .pmsuspended,
                    migratingIn: guest.asyncJob == "migration in",
                    mode: disk.shareable ? .shared : .exclusive, leaseName: disk.leaseName,
                    ownTokens: own, otherTokens: holders.filter { !ownPIDs.contains($0.pid) },
                    file: disk.leaseName.flatMap { files[$0] } ?? .vanished,
                    thisHostID: thisHostID, thisGeneration: generation, hosts: hosts)
                let finding = Protection.judge(facts)
                var line = AuditReport.Disk(
                    target: disk.target, sourcePath: disk.sourcePath ?? disk.volume.map { "\($0.pool ?? "?")/\($0.volume ?? "?")" },
                    lease: disk.leaseName, leasePath: disk.leaseName.map { directory.path(of: EntryName($0)) },
                    mode: facts.mode, finding: finding)
                if let holder = finding.holderHostID, holder != thisHostID {
                    line.holderHostName = hostNames[holder]
                    line.holderHostState = hosts[holder]?.state
                }
                disks.append(line)
            }
            // Block-job destinations and backing images are the guest's too.
            let names = guest.leaseNames.union(guest.disks.flatMap(\.backingStoreLeaseNames))
            for pid in ownPIDs { for name in names { accounted.insert(AccountedToken(pid: pid, name: name)) } }
            guests.append(AuditReport.Guest(
                name: guest.name, state: guest.state, stateReason: guest.stateReason, asyncJob: guest.asyncJob, pid: guest.pid,
                disks: disks))
        }
        let unaccounted = status.tokens.filter {
            $0.isHeld && $0.lockspace == lockspace && !accounted.contains(AccountedToken(pid: $0.pid, name: $0.name))
        }
        let host = AuditReport.Host(
            lockspace: lockspace, joined: sanlock.joined != nil, hostID: sanlock.thisHostID,
            configuredHostID: configuration.configuredHostID, generation: generation,
            hostName: thisHostID.flatMap { hostNames[$0] })
        logger.debug("audit reading", metadata: [
            "guests": "\(guests.count)", "tokens": "\(status.tokens.count)", "host_id": "\(thisHostID.map(String.init) ?? "none")",
        ])
        return Snapshot(host: host, guests: guests, unaccounted: unaccounted, warnings: findings.warnings)
    }

    /// The processes that act for `guest`: its qemu pid; for a guest without
    /// one (libxl), the processes registered under its name, as libvirt
    /// registers them (truncated to sanlock's 48 bytes).
    private static func processes(of guest: Guest, in status: DaemonStatus) -> Set<Int32> {
        if let pid = guest.pid { return [pid] }
        let name = String(decoding: guest.name.utf8.prefix(48), as: UTF8.self)
        return Set(status.clients.filter { $0.name == name }.map(\.pid))
    }

    private struct AccountedToken: Hashable {
        var pid: Int32
        var name: String
    }
}

extension EntryKind {
    /// Every host a lease file names as holder or last owner.
    var leaseStateOwners: [UInt64]? {
        guard case .autoLease(let state) = self else { return nil }
        return (state.ownerID != 0 ? [state.ownerID] : []) + state.sharedHolders.map(\.hostID)
    }
}
