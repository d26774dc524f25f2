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
    /// Readings at most (see `run`).
    static let maximumReadings = 4

    public init(configuration: RunConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Throws when the audit cannot know: no daemon to ask, a status file
    /// that cannot be read.
    public func run() throws(JanitorError) -> AuditReport {
        DaemonDeadline.seconds = configuration.daemonTimeout
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
        // instants. A disk that looks unprotected is read again once libvirt
        // had time to finish, and reported unprotected only when every
        // reading that saw it agrees (`Snapshot.settled`); while this host
        // keeps acquiring its lease between readings (a guest pausing and
        // resuming), it is read again, up to `maximumReadings` in all.
        var readings = 1
        while readings < Self.maximumReadings, !snapshot.unsettled(afterFirst: readings == 1).isEmpty {
            let unsettled = snapshot.unsettled(afterFirst: readings == 1)
            logger.debug("a disk looks unprotected: reading everything again", metadata: [
                "delay_s": "\(settleDelay)", "disks": "\(unsettled.count)", "reading": "\(readings + 1)",
            ])
            Syscall.sleep(seconds: settleDelay)
            let next = try Snapshot.take(directory: directory, configuration, logger: logger)
            snapshot = Snapshot.settled(first: snapshot, second: next, delay: settleDelay)
            readings += 1
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
    /// Disks unprotected in this reading and the one before, whose lease
    /// this host acquired in between (see `settled`).
    var moved: Set<DiskKey> = []

    static func take(directory: LeaseDirectory, _ configuration: RunConfiguration, logger: Logger) throws(JanitorError) -> Snapshot {
        let lockspace = LeaseClassifier.lockspaceName
        var findings = RunFindings(cleaning: false)
        if let file = configuration.autoDiskLeasesOffIn { findings.warn(.autoDiskLeasesOff(configurationFile: file)) }

        // sanlock first: without it nothing can be proved.
        let sanlock = SanlockView.gather(lockspace: lockspace, directory: directory, settings: true)
        if let error = sanlock.unanswered { throw .daemonNotAnswering(error) }
        if case .unreachable(let error) = sanlock.availability {
            if error.code == .permissionDenied || error.code == .notPermitted { throw .sanlockPermissionDenied(error) }
            throw .daemonUnreachable(error)
        }
        if let error = sanlock.lockspaceQueryError { throw .daemonUnreachable(error) }
        let status: DaemonStatus
        do {
            status = try SanlockClient.status()
        } catch {
            throw error.code == .noAnswer ? .daemonNotAnswering(error) : .daemonUnreachable(error)
        }
        for warning in sanlock.warnings(configuredHostID: configuration.configuredHostID) { findings.warn(warning) }
        if let joined = sanlock.joined, !sanlock.joinedFromThisDirectory {
            findings.warn(.auditLimited(.lockspaceJoinedElsewhere(path: joined.path, offset: joined.offset)))
        }

        let inventory = GuestInventory.load(
            statusDirectories: configuration.statusDirectories, configDirectories: configuration.configDirectories)
        guard inventory.isComplete else { throw .guestsUnknown(inventory.statusErrors) }
        for guest in inventory.staleGuests { findings.warn(.staleGuestStatus(guest)) }

        // Not joined (a daemon restarted under the guests, or still joining),
        // this host claims the configured id; the lockspace file says
        // whether another host holds that id (LockspaceFacts.isThisHost).
        let thisHostID = sanlock.thisHostID ?? configuration.hostIDOverride ?? configuration.configuredHostID
        let image = Inventory.readLockspaceImage(in: directory, findings: &findings)
        let hostNames = image?.hostNames ?? [:]
        let scanner = InventoryScanner(directory: directory, classifier: Inventory.classifier(image: image, hosts: sanlock.hosts))

        let auditedGuests = inventory.running.filter { !$0.isStale }
        // Each disk's file, read once even when guests share a disk.
        var entries: [String: LeaseEntry] = [:]
        for name in Set(auditedGuests.flatMap { $0.disks.compactMap(\.leaseName) }) {
            entries[name] = scanner.examine(EntryName(name))
        }
        let files = entries.mapValues(\.kind)
        var hosts = sanlock.hosts ?? [:]
        Inventory.completeHostTable(&hosts, owners: files.values.compactMap(\.leaseStateOwners).flatMap { $0 })
        let lockspaceFacts = LockspaceFacts(
            thisHostID: thisHostID, joined: sanlock.joined != nil, thisHostName: sanlock.hostName,
            hosts: sanlock.hosts == nil ? nil : hosts, hostNames: hostNames)
        let generation = lockspaceFacts.thisGeneration

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
                    file: disk.leaseName.flatMap { files[$0] } ?? .vanished, lockspace: lockspaceFacts)
                let finding = Protection.judge(facts)
                var line = AuditReport.Disk(
                    target: disk.target, sourcePath: disk.sourcePath ?? disk.volume.map { "\($0.pool ?? "?")/\($0.volume ?? "?")" },
                    lease: disk.leaseName, leasePath: disk.leaseName.map { directory.path(of: EntryName($0)) },
                    mode: facts.mode, finding: finding)
                if let entry = disk.leaseName.flatMap({ entries[$0] }), let file = entry.status?.identity,
                   let state = entry.leaseState {
                    line.observed = AuditReport.LeaseObservation(file: file, lver: state.lver, ownerID: state.ownerID)
                }
                if let holder = finding.holderHostID, !lockspaceFacts.isThisHost(holder) {
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
        // An answer missing anywhere (a host's liveness) leaves a judgement
        // unproven.
        if DaemonDeadline.hasLapsed { throw .daemonNotAnswering(SanlockError(.getHosts, code: .noAnswer)) }
        let unaccounted = status.tokens.filter {
            $0.isHeld && $0.lockspace == lockspace && !accounted.contains(AccountedToken(pid: $0.pid, name: $0.name))
        }
        let host = AuditReport.Host(
            lockspace: lockspace, joined: sanlock.joined != nil, hostID: sanlock.thisHostID,
            configuredHostID: configuration.configuredHostID, generation: generation,
            hostName: thisHostID.flatMap { hostNames[$0] }, pending: sanlock.pending?.phase,
            identityConflict: lockspaceFacts.identityConflict)
        logger.debug("audit reading", metadata: [
            "guests": "\(guests.count)", "tokens": "\(status.tokens.count)", "host_id": "\(thisHostID.map(String.init) ?? "none")",
        ])
        return Snapshot(host: host, guests: guests, unaccounted: unaccounted, warnings: findings.warnings)
    }

    /// Two readings taken `delay` apart, as one: the second, except that a
    /// disk the second finds unprotected and the first found protected (the
    /// same guest, the same process, the same disk) is reported as the first
    /// found it, with a note. A transition in the middle of the audit (a
    /// guest pausing, resuming, migrating) is not an alarm; a disk
    /// unprotected in every reading that saw it is. So a disk that lost its
    /// protection less than `delay` before the second reading is reported
    /// by the next audit, not this one: the audit's verdict is as of its
    /// first reading.
    static func settled(first: Snapshot, second: Snapshot, delay: Double) -> Snapshot {
        var settled = second
        settled.moved = []
        for (guestIndex, guest) in second.guests.enumerated() {
            guard let before = first.guests.first(where: { $0.name == guest.name && $0.pid == guest.pid }) else { continue }
            for (diskIndex, disk) in guest.disks.enumerated() where !disk.finding.protection.isProtected {
                guard let earlier = before.disks.first(where: { $0.target == disk.target && $0.lease == disk.lease }) else { continue }
                if earlier.finding.protection.isProtected {
                    var kept = earlier
                    let state = before.state == guest.state ? "" : ", when the guest was \(before.state.rawValue)"
                    kept.finding.detail += " (as read \(delay.formatted) s earlier\(state); \(disk.finding.protection.rawValue) "
                        + "in the reading after it: a transition, not reported)"
                    settled.guests[guestIndex].disks[diskIndex] = kept
                } else if let was = earlier.observed, let now = disk.observed, was.file == now.file, now.lver > was.lver,
                          now.ownerID == second.host.hostID {
                    // This host acquired the lease between the two readings:
                    // its guest held it then. Read again.
                    settled.moved.insert(DiskKey(guest: guest.name, target: disk.target, lease: disk.lease))
                }
            }
        }
        return settled
    }

    /// The disks that need another reading: after the first, every one that
    /// looks unprotected; after a later one, those unprotected in every
    /// reading so far whose lease this host acquired in between.
    func unsettled(afterFirst: Bool) -> [DiskKey] {
        guests.flatMap { guest in
            guest.disks.filter { !$0.finding.protection.isProtected }
                .map { DiskKey(guest: guest.name, target: $0.target, lease: $0.lease) }
        }.filter { afterFirst || moved.contains($0) }
    }

    struct DiskKey: Hashable {
        var guest: String
        var target: String?
        var lease: String?
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
