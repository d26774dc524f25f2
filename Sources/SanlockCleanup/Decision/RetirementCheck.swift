import Sanlock

/// Whether `--retired-host` may purge a host's leases: never this host's,
/// never a live host's; a failing host is reported with how long sanlock
/// needs to declare it dead.
enum RetirementCheck {
    static func check(
        retiredHosts: Set<UInt64>, hosts: [UInt64: SanlockHost]?, thisHostID: UInt64?, findings: inout RunFindings
    ) throws(JanitorError) {
        for host in retiredHosts.sorted() {
            if host == thisHostID { throw .retiringThisHost(host) }
            guard let hosts else {
                findings.warn(.retiredHostLivenessUnknown(host))
                continue
            }
            switch hosts[host]?.state {
            case .live?, .unknown?:
                try findings.problem(.retiredHostLive(host, hosts[host]!.state))
            case .failing?:
                findings.warn(.retiredHostFailing(host))
            case nil:
                findings.warn(.retiredHostStateUnknown(host))
            case .dead?, .free?:
                break
            }
        }
    }
}
