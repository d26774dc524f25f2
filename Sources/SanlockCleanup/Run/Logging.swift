import Logging
import Synchronization
import SystemCalls
import SystemPackage

/// Where stderr goes decides how the janitor talks: a person at a terminal,
/// the systemd journal, or a file or mail (cron).
public enum LogDestination: Sendable, Hashable {
    /// Readable lines, and a progress bar for long runs.
    case terminal
    /// stderr is the journal (`JOURNAL_STREAM` names it): each line starts
    /// with its syslog priority (`<3>`…`<7>`) so journald files it right.
    case journal
    /// Anything else (cron mails it): plain lines, nothing decorative.
    case plain

    /// Looks at file descriptor 2 and the environment.
    public static func detect(environment: [String: String], descriptor: Int32 = 2) -> LogDestination {
        let status = try? FileDescriptor(rawValue: descriptor).status()
        if let stream = environment["JOURNAL_STREAM"], let status,
           stream == "\(status.deviceID.rawValue):\(status.inode.rawValue)" {
            return .journal
        }
        return FileDescriptor(rawValue: descriptor).isTerminal ? .terminal : .plain
    }

    /// syslog priority of a log level (sd-daemon(3) prefixes).
    static func priority(of level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

/// swift-log handler for the janitor: one line per message on stderr, shaped
/// for its destination.
public struct JanitorLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let destination: LogDestination
    private let write: @Sendable (String) -> Void

    public init(destination: LogDestination, logLevel: Logger.Level,
                write: @escaping @Sendable (String) -> Void = JanitorLogHandler.writeToStandardError) {
        self.destination = destination
        self.logLevel = logLevel
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Messages carry names and text from files, escaped where they are
        // made; escaping control characters again here guarantees one
        // printable line whatever a message forgot.
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let attached = event.metadata { merged.merge(attached) { _, new in new } }
        let message = "\(event.message)".escapingControlCharacters() + Self.format(merged)
        write(Self.format(message, level: event.level, destination: destination) + "\n")
    }

    /// Metadata as ` key=value` pairs after the message (logfmt, sorted by
    /// key), so that a line can be found by what was decided:
    /// `journalctl -u virt-sanlock-cleanup | grep reason=used-by-guest`.
    /// Values are escaped, and quoted when they hold a space or a quote.
    public static func format(_ metadata: Logger.Metadata) -> String {
        metadata.keys.sorted().map { key in
            let value = "\(metadata[key]!)".escapingControlCharacters()
            let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" }
            let quoted = needsQuotes ? "\"" + value.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\\\"") + "\"" : value
            return " \(key.escapingControlCharacters())=\(quoted)"
        }.joined()
    }

    public static func format(_ message: String, level: Logger.Level, destination: LogDestination) -> String {
        switch destination {
        case .journal:
            // journald adds the program name and time itself.
            return "<\(LogDestination.priority(of: level))>\(message)"
        case .terminal, .plain:
            let label = switch level {
            case .warning: "warning: "
            case .error, .critical: "error: "
            default: ""
            }
            return "virt-sanlock-cleanup: \(label)\(message)"
        }
    }

    public static let writeToStandardError: @Sendable (String) -> Void = { text in
        ProgressBar.clearLine()
        writeStandardError(text)
    }
}

/// Unbuffered, so lines from several threads never interleave mid-line.
func writeStandardError(_ text: String) {
    try? FileDescriptor.standardError.writeFully(text.utf8)
}

