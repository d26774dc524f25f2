/// The process exit statuses. This is the one description of them: the
/// command's help, the man page (`make man` takes it from the help) and the
/// README (checked by a test) all show `ExitStatus.descriptions`.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    /// Nothing was deleted: configuration, lease directory or sanlock problem.
    case fatal = 1
    /// The run completed but at least one deletion failed unexpectedly.
    case deletionsFailed = 2
    /// Another janitor is already working on this lease directory (for this
    /// host): nothing done. Not an error for a scheduled run.
    case busy = 3
    /// `--audit`: at least one disk of a running or paused guest is not
    /// protected by its lease.
    case unprotected = 4
    /// The run completed without failures, but its report could not be
    /// written to standard output (EIO, ENOSPC, ...; not EPIPE: a reader
    /// that left, as `| head` does, changes nothing).
    case reportNotWritten = 5
    /// Bad command line (swift-argument-parser's EX_USAGE).
    case usage = 64

    /// What the status tells the user, in one line.
    public var meaning: String {
        switch self {
        case .success:
            "the run completed; leases kept because they are in use are not failures"
        case .fatal:
            "fatal error, nothing deleted (with --audit: nothing audited): configuration, lease directory, sanlock daemon unreachable or not answering, lockspace not joined (or still joining), not root, unreadable guest status XML, retired host still live"
        case .deletionsFailed:
            "the run completed, but at least one deletion failed (the report says which and in what state the lease was left), or the sanlock daemon stopped answering during the deletions"
        case .busy:
            "another janitor is working on this lease directory for this host; nothing done"
        case .unprotected:
            "--audit only: at least one disk of a running or paused guest is not protected by its lease (the report says which and why), or this host's identity in the lockspace is in conflict"
        case .reportNotWritten:
            "the run completed without failures, but its report could not be written to standard output (EIO, a full disk; see stderr)"
        case .usage:
            "bad command line"
        }
    }

    /// The status a signal leaves, as shells report it.
    public static func interrupted(by signal: Int32) -> Int32 { 128 + signal }

    static let interruptedMeaning =
        "interrupted by signal N (SIGTERM, SIGINT, SIGHUP): the lease in hand was finished, the others kept with reason interrupted; a run blocked in a call (a daemon that does not answer, a dead NFS server) ends 2 s after the signal with the JSON error code interrupted"

    /// Every status and its meaning, in order: `("0", "the run …")`, …,
    /// `("128+N", "interrupted …")`.
    public static var descriptions: [(status: String, meaning: String)] {
        allCases.map { (String($0.rawValue), $0.meaning) } + [("128+N", interruptedMeaning)]
    }
}
