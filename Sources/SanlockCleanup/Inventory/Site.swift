import Logging
import Sanlock

/// Where a run works and who this host is there, built once for every mode:
/// the lease directory held open, the run lock of a cleaning run, the local
/// sanlock daemon's view of the lockspace, this host's id, the lockspace
/// file (which host id joined under which name) and the classifier it
/// implies. Every error of gathering them is mapped here, once.
struct Site: Sendable {
    let directory: LeaseDirectory
    /// Held to the end of a cleaning run (nil for other modes): while it is
    /// held no other janitor of this host works here, which makes a cleared
    /// leader naming this host a leftover of an earlier run (see Decision).
    public let runLock: RunLock?
    let sanlock: SanlockView
    /// The daemon's id for this host when joined, else `--host-id`, else
    /// `host_id` from the configuration.
    let thisHostID: UInt64?
    /// The lockspace file's delta leases; nil when it is missing or unusable
    /// (a warning says which).
    let lockspaceImage: LockspaceImage?
    /// Reads the mode blocks of the hosts that ever joined.
    let classifier: LeaseClassifier

    /// The name each host id joined with, from the lockspace file (sanlock's
    /// host name): known without a daemon too.
    var hostNames: [UInt64: String] { lockspaceImage?.hostNames ?? [:] }

    /// The generation each host id last joined at, from the lockspace file.
    var generationsOnDisk: [UInt64: UInt64] {
        Dictionary((lockspaceImage?.joinedHosts ?? []).map { ($0.hostID, $0.generation) }, uniquingKeysWith: max)
    }

    /// What the site says about a problem depends on the mode: a cleaning
    /// run stops at any (it must be sure), a dry run reports it, an audit
    /// stops only when the daemon cannot be asked at all (whether this host
    /// joined is what it reports).
    static func open(
        _ configuration: RunConfiguration, control: RunControl, logger: Logger, findings: inout RunFindings
    ) throws(JanitorError) -> Site {
        DaemonDeadline.seconds = configuration.daemonTimeout
        let directory: LeaseDirectory
        do {
            directory = try LeaseDirectory(path: configuration.leaseDirectory)
        } catch {
            throw .leaseDirectory(error)
        }
        // Before the daemon is asked anything: a second run exits at once,
        // naming the first, even while the daemon does not answer.
        var runLock: RunLock?
        if configuration.mode == .clean {
            do {
                runLock = try RunLock.acquire(leaseDirectory: directory.identity)
            } catch {
                switch error {
                case .held(let holder): throw .anotherJanitorRunning(holder: holder)
                case .failed(let cause): throw .runLock(cause)
                }
            }
        }
        if let file = configuration.autoDiskLeasesOffIn { findings.warn(.autoDiskLeasesOff(configurationFile: file)) }
        control.enter(.askingSanlock)
        let sanlock = SanlockView.gather(
            lockspace: LeaseClassifier.lockspaceName, directory: directory,
            settings: configuration.mode == .audit || configuration.mode == .clean && configuration.jobs == nil)
        if let error = sanlock.problem() {
            logger.debug("sanlock cannot vouch for this host", metadata: ["problem": "\(error.code)"])
            if configuration.mode == .audit {
                switch error {
                case .lockspaceNotJoined: break
                case .lockspaceJoinedElsewhere: findings.warn(.auditLimited(error))
                default: throw error
                }
            } else {
                try findings.problem(error)
            }
        }
        for warning in sanlock.warnings(configuredHostID: configuration.configuredHostID) { findings.warn(warning) }
        if configuration.mode != .audit, let given = configuration.hostIDOverride, let joined = sanlock.thisHostID,
           given != joined {
            try findings.problem(.hostIDMismatch(given: given, joined: joined))
        }
        let thisHostID = sanlock.thisHostID ?? configuration.hostIDOverride ?? configuration.configuredHostID
        let source = sanlock.thisHostID != nil ? "sanlock" : configuration.hostIDOverride != nil ? "--host-id"
            : configuration.configuredHostID != nil ? "host_id" : "none"
        logger.debug("this host's id", metadata: [
            "host_id": "\(thisHostID.map(String.init) ?? "unknown")", "source": "\(source)",
        ])
        let image = readLockspaceImage(in: directory, findings: &findings)
        return Site(
            directory: directory, runLock: runLock, sanlock: sanlock, thisHostID: thisHostID, lockspaceImage: image,
            classifier: classifier(image: image, hosts: sanlock.hosts))
    }

    /// sanlock's liveness of every host it lists, and of each of `owners`
    /// besides: `sanlock_get_hosts` lists only hosts with a timestamp, so
    /// every other host a lease or `--retired-host` names is asked about, and
    /// "not listed" never has to be guessed. A host sanlock cannot tell
    /// about stays out of the table, which the judgement treats as unknown.
    /// nil without the daemon's view of the lockspace.
    func hostTable(covering owners: some Sequence<UInt64>) -> [UInt64: SanlockHost]? {
        guard var table = sanlock.hosts else { return nil }
        for host in Set(owners).subtracting(table.keys).sorted() {
            if let answer = try? SanlockClient.hosts(in: LeaseClassifier.lockspaceName, hostID: host).first {
                table[host] = answer
            }
        }
        return table
    }

    /// Shared holders can only be hosts that joined the lockspace at some
    /// point: probe only their mode blocks rather than all 2000 (all of them
    /// when neither the lockspace file nor the daemon tells which).
    static func classifier(image: LockspaceImage?, hosts: [UInt64: SanlockHost]?) -> LeaseClassifier {
        var probeHostIDs: Set<UInt64>? = nil
        if let image { probeHostIDs = Set(image.joinedHosts.map(\.hostID)) }
        if let hosts { probeHostIDs = (probeHostIDs ?? []).union(hosts.keys) }
        return LeaseClassifier(probeHostIDs: probeHostIDs.map { Array($0) })
    }

    /// One delta lease per host id, in 512-byte sectors (4096-byte ones
    /// would need 8 MiB: read on only for those).
    static func readLockspaceImage(in directory: LeaseDirectory, findings: inout RunFindings) -> LockspaceImage? {
        let name = EntryName(LeaseClassifier.lockspaceName)
        do {
            let file = try directory.openLease(name, writable: false)
            let buffer = AlignedBuffer()
            return try withExtendedLifetime(buffer) { () throws(FileSystemError) -> LockspaceImage? in
                var bytes = try file.read(length: 2000 * 512, into: buffer)
                if LeaderRecord(sector: bytes)?.sectorSize == 4096 {
                    bytes = try file.read(length: 2000 * 4096, into: buffer)
                }
                guard let image = LockspaceImage(bytes: bytes) else {
                    findings.warn(.lockspaceFileInvalid(path: directory.path(of: name)))
                    return nil
                }
                return image
            }
        } catch {
            if error.errno == .noSuchFileOrDirectory {
                findings.warn(.noLockspaceFile(leaseDirectory: directory.path))
            } else {
                findings.warn(.lockspaceFileUnreadable(error))
            }
            return nil
        }
    }
}
