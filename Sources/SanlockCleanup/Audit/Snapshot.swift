import Sanlock

/// What the audit needs of the site, as plain values: the assembly of a
/// reading is a pure function of these and the reading.
struct AuditSiteFacts: Sendable {
    var lockspace = LeaseClassifier.lockspaceName
    var directoryPath: String
    var thisHostID: UInt64?
    var joined: Bool
    /// The daemon is adding (or removing) the lockspace, not joined.
    var pending: JoinedLockspace.Phase?
    var thisHostName: String?
    var configuredHostID: UInt64?
    var hostNames: [UInt64: String]
    var generationsOnDisk: [UInt64: UInt64] = [:]

    init(site: Site, configuration: RunConfiguration) {
        directoryPath = site.directory.path
        thisHostID = site.thisHostID
        joined = site.sanlock.joined != nil
        pending = site.sanlock.pending?.phase
        thisHostName = site.sanlock.hostName
        configuredHostID = configuration.configuredHostID
        hostNames = site.hostNames
        generationsOnDisk = site.generationsOnDisk
    }

    init(directoryPath: String, thisHostID: UInt64?, joined: Bool, pending: JoinedLockspace.Phase? = nil,
         thisHostName: String? = nil, configuredHostID: UInt64?, hostNames: [UInt64: String] = [:]) {
        self.directoryPath = directoryPath
        self.thisHostID = thisHostID
        self.joined = joined
        self.pending = pending
        self.thisHostName = thisHostName
        self.configuredHostID = configuredHostID
        self.hostNames = hostNames
    }

    func lockspaceFacts(hosts: [UInt64: SanlockHost]?) -> LockspaceFacts {
        LockspaceFacts(thisHostID: thisHostID, joined: joined, thisHostName: thisHostName, hosts: hosts, hostNames: hostNames,
                       generationsOnDisk: generationsOnDisk)
    }

    func leasePath(_ name: String) -> String {
        (directoryPath.hasSuffix("/") ? directoryPath : directoryPath + "/") + name
    }
}

/// One reading, judged: every audited guest's disks with their protection,
/// this host's standing, the leases no guest accounts for.
struct Snapshot: Sendable {
    var host: AuditReport.Host
    var guests: [AuditReport.Guest]
    var unaccounted: [DaemonStatus.Token]
    var warnings: [RunWarning]
    /// Disks unprotected in this reading and the one before, whose lease
    /// this host acquired in between (see `settled`).
    var moved: Set<DiskKey> = []

    struct DiskKey: Hashable, Sendable {
        var guest: String
        var target: String?
        var lease: String?
    }

    /// The judgement of a reading: pure.
    static func assemble(_ reading: AuditReading, _ site: AuditSiteFacts) -> Snapshot {
        let lockspace = site.lockspaceFacts(hosts: reading.hosts)
        var guests: [AuditReport.Guest] = []
        var accounted = Set<AccountedToken>()
        for guest in reading.guests {
            let ownPIDs = processes(of: guest, in: reading.status)
            var disks: [AuditReport.Disk] = []
            for disk in guest.disks where disk.leaseName != nil || disk.isUnmappedVolume {
                let holders = disk.leaseName.map { reading.status.holders(of: $0, in: site.lockspace) } ?? []
                let entry = disk.leaseName.flatMap { reading.files[$0] }
                let facts = ProtectionFacts(
                    guestPaused: guest.state == .paused || guest.state == .pmsuspended,
                    migratingIn: guest.asyncJob == "migration in", migratingOut: guest.asyncJob == "migration out",
                    mode: disk.shareable ? .shared : .exclusive, leaseName: disk.leaseName,
                    ownTokens: holders.filter { ownPIDs.contains($0.pid) },
                    otherTokens: holders.filter { !ownPIDs.contains($0.pid) },
                    file: entry?.kind ?? .vanished, lockspace: lockspace)
                let finding = Protection.judge(facts)
                var line = AuditReport.Disk(
                    target: disk.target, sourcePath: disk.sourcePath ?? disk.volume.map { "\($0.pool ?? "?")/\($0.volume ?? "?")" },
                    lease: disk.leaseName, leasePath: disk.leaseName.map(site.leasePath), mode: facts.mode, finding: finding)
                if let file = entry?.status?.identity, let state = entry?.leaseState {
                    line.observed = AuditReport.LeaseObservation(file: file, lver: state.lver, ownerID: state.ownerID)
                }
                if let holder = finding.holderHostID, !lockspace.isThisHost(holder) {
                    line.holderHostName = site.hostNames[holder]
                    line.holderHostState = reading.hosts?[holder]?.state
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
        let unaccounted = reading.status.tokens.filter {
            $0.isHeld && $0.lockspace == site.lockspace && !accounted.contains(AccountedToken(pid: $0.pid, name: $0.name))
        }
        let host = AuditReport.Host(
            lockspace: site.lockspace, joined: site.joined, hostID: site.joined ? site.thisHostID : nil,
            configuredHostID: site.configuredHostID, generation: lockspace.thisGeneration,
            hostName: site.thisHostID.flatMap { site.hostNames[$0] }, pending: site.pending,
            identityConflict: lockspace.identityConflict)
        return Snapshot(host: host, guests: guests, unaccounted: unaccounted,
                        warnings: reading.staleGuests.map(RunWarning.staleGuestStatus))
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
                    kept.finding.settled = SettledReading(
                        delay: delay, earlierState: before.state == guest.state ? nil : before.state,
                        laterProtection: disk.finding.protection)
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
