#if canImport(Glibc)
import Glibc
#endif
import Sanlock
import SystemCalls

/// What the local sanlock daemon says: whether it is there, whether this
/// host joined the lockspace (and from which file), and which hosts of the
/// lockspace are alive.
public struct SanlockView: Sendable {
    public enum Availability: Sendable, Hashable {
        case reachable(version: UInt32)
        case unreachable(SanlockError)
    }

    var availability: Availability
    /// This host's membership of the lockspace, if joined.
    var joined: JoinedLockspace?
    /// The lockspace as the daemon lists it while it is still joining or
    /// leaving it: not joined, whatever host id it names.
    var pending: JoinedLockspace?
    /// Every lockspace the daemon has joined (for messages).
    var joinedNames: [String] = []
    var lockspaceQueryError: SanlockError?
    /// False when the lockspace was joined from another file than the lease
    /// directory's: its leases would be judged against the wrong hosts.
    var joinedFromThisDirectory: Bool = false
    /// sanlock's liveness verdict per host id; nil when not available.
    var hosts: [UInt64: SanlockHost]?
    var hostsError: SanlockError?
    /// The daemon's settings, when asked for.
    var settings: DaemonSettings?

    /// How many requests the daemon serves at once (`max_worker_threads`).
    var workerThreads: Int? { settings?.workerThreads }
    /// The name the daemon joins lockspaces with.
    var hostName: String? { settings?.hostName }

    var daemonReachable: Bool {
        if case .reachable = availability { return true }
        return false
    }

    var thisHostID: UInt64? { joined?.hostID }

    /// The daemon's answers a run needs, each within the daemon deadline.
    /// `settings`: ask for the daemon's settings too (its worker threads,
    /// for `--jobs`; its host name, for the audit).
    static func gather(lockspace: String, directory: LeaseDirectory, settings: Bool = false) -> SanlockView {
        let version: UInt32
        do {
            version = try SanlockClient.daemonVersion()
        } catch {
            return SanlockView(availability: .unreachable(error))
        }
        var view = SanlockView(availability: .reachable(version: version))
        do {
            let lockspaces = try SanlockClient.lockspaces()
            view.joinedNames = lockspaces.filter { $0.phase == .joined }.map(\.name)
            view.joined = lockspaces.first { $0.name == lockspace && $0.phase == .joined }
            view.pending = lockspaces.first { $0.name == lockspace && $0.phase != .joined }
        } catch {
            view.lockspaceQueryError = error
        }
        if let joined = view.joined {
            let ours = try? directory.status(of: EntryName(lockspace))
            let byPath = try? Syscall.status(ofPath: joined.path.utf8)
            view.joinedFromThisDirectory = byPath != nil && joined.offset == 0
                && ours?.identity == byPath.map(FileIdentity.init)
            do {
                let hosts = try SanlockClient.hosts(in: lockspace)
                view.hosts = Dictionary(hosts.map { ($0.hostID, $0) }, uniquingKeysWith: { first, _ in first })
            } catch {
                view.hostsError = error
            }
        }
        if settings { view.settings = try? SanlockClient.daemonSettings() }
        return view
    }

    /// The call that went unanswered, if the daemon stopped answering.
    var unanswered: SanlockError? {
        if case .unreachable(let error) = availability, error.code == .noAnswer { return error }
        return [lockspaceQueryError, hostsError].compactMap { $0 }.first { $0.code == .noAnswer }
    }

    /// Why a cleaning run cannot proceed, or nil when it can.
    func problem() -> JanitorError? {
        if let unanswered { return .daemonNotAnswering(unanswered) }
        if case .unreachable(let error) = availability {
            switch error {
            case SanlockCode.permissionDenied, SanlockCode.notPermitted: return .sanlockPermissionDenied(error)
            default: return .daemonUnreachable(error)
            }
        }
        if let error = lockspaceQueryError { return .daemonUnreachable(error) }
        guard let joined else {
            return .lockspaceNotJoined(lockspace: LeaseClassifier.lockspaceName, joined: joinedNames, pending: pending)
        }
        if !joinedFromThisDirectory { return .lockspaceJoinedElsewhere(path: joined.path, offset: joined.offset) }
        return nil
    }

    func warnings(configuredHostID: UInt64?) -> [RunWarning] {
        var warnings: [RunWarning] = []
        if let joined, let configuredHostID, configuredHostID != joined.hostID {
            warnings.append(.configuredHostIDDiffers(configured: configuredHostID, joined: joined.hostID, lockspace: joined.name))
        }
        if let hostsError {
            warnings.append(.hostLivenessUnreadable(hostsError))
        }
        return warnings
    }
}
