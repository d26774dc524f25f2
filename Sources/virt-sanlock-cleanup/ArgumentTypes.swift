import ArgumentParser
import SanlockCleanup

// The command line's value types. swift-argument-parser parses and checks
// them (an invalid value is exit status 64 with the option's help), so no
// option is a string parsed again later.

/// A sanlock host id: 1 to 2000 (`--host-id`, `--retired-host`).
struct HostIDArgument: ExpressibleByArgument, Sendable, Hashable {
    let value: UInt64

    init?(argument: String) {
        guard let value = UInt64(argument), (1...LockManagerConfig.maximumHostID).contains(value) else { return nil }
        self.value = value
    }
}

/// A duration such as `30m`, `2h`, `1h30m` or `0` (`--min-age`), as
/// `DurationText` reads it.
struct DurationArgument: ExpressibleByArgument, Sendable, Hashable {
    let seconds: Double
    /// As written, for the help's default.
    let defaultValueDescription: String

    init?(argument: String) {
        guard let seconds = try? DurationText.seconds(argument) else { return nil }
        self.seconds = seconds
        self.defaultValueDescription = argument
    }

    static let defaultMinimumAge = DurationArgument(argument: DurationText.format(DeletionPolicy.defaultMinimumAge))!
    static let defaultDaemonTimeout = DurationArgument(argument: DurationText.format(RunConfiguration.defaultDaemonTimeout))!
}

/// Parallel sanlock connections: 1 to 64 (`--jobs`).
struct JobCount: ExpressibleByArgument, Sendable, Hashable {
    static let range = 1...64
    let value: Int

    init?(argument: String) {
        guard let value = Int(argument), Self.range.contains(value) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { String(value) }
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}
