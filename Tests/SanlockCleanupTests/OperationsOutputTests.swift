import Foundation
import Logging
@testable import SanlockCleanup
import Synchronization
import Testing

@Suite("Log output and metrics")
struct OperationsOutputTests {
    @Test(arguments: [
        (Logger.Level.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func journalPriorities(level: Logger.Level, priority: Int) {
        #expect(LogDestination.priority(of: level) == priority)
        #expect(JanitorLogHandler.format("m", level: level, destination: .journal) == "<\(priority)>m")
    }

    @Test func terminalAndPlainLinesNameTheProgram() {
        #expect(JanitorLogHandler.format("disk full", level: .error, destination: .plain) == "virt-sanlock-cleanup: error: disk full")
        #expect(JanitorLogHandler.format("odd", level: .warning, destination: .terminal) == "virt-sanlock-cleanup: warning: odd")
        #expect(JanitorLogHandler.format("step", level: .info, destination: .plain) == "virt-sanlock-cleanup: step")
    }

    @Test func handlerWritesOneLinePerMessage() {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "t") { _ in
            JanitorLogHandler(destination: .journal, logLevel: .info) { text in lines.withLock { $0.append(text) } }
        }
        logger.logLevel = .info
        logger.notice("deleted a\nb\u{1B}[2J")
        logger.debug("hidden")
        #expect(lines.withLock { $0 } == ["<5>deleted a\\nb\\u{1b}[2J\n"])
    }

    @Test("Metadata follows the message as sorted key=value pairs, escaped and quoted where needed")
    func handlerWritesMetadata() {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "t") { _ in
            JanitorLogHandler(destination: .plain, logLevel: .debug) { text in lines.withLock { $0.append(text) } }
        }
        logger[metadataKey: "run"] = "1"
        logger.debug("kept", metadata: ["reason": "used-by-guest", "guest": "web \"1\"\n", "empty": ""])
        #expect(lines.withLock { $0 } == [
            "virt-sanlock-cleanup: kept empty=\"\" guest=\"web \\\"1\\\"\\n\" reason=used-by-guest run=1\n",
        ])
    }

    @Test func journalIsDetectedByJournalStream() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-journal-\(getpid())").path
        let fd = open(path, O_RDWR | O_CREAT, 0o600)
        defer { close(fd); unlink(path) }
        var status = stat()
        #expect(fstat(fd, &status) == 0)
        #expect(LogDestination.detect(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"], descriptor: fd) == .journal)
        #expect(LogDestination.detect(environment: ["JOURNAL_STREAM": "1:2"], descriptor: fd) == .plain)
        #expect(LogDestination.detect(environment: [:], descriptor: fd) == .plain)
    }

    @Test func journalLinesCarryPriorities() {
        let report = ReportTests.report(mode: .clean)
        let lines = TextReport.journalLines(report)
        #expect(lines.count == report.leases.count + 1)
        #expect(lines[0].level == .notice && lines[0].text.hasPrefix("deleted aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: free, never acquired"))
        #expect(lines[2].level == .info && lines[2].text.hasPrefix("kept cccccccccccccccccccccccccccccccc: held by live host 2"))
        #expect(lines[3].level == .error)
        #expect(lines[4].text.contains("bad\\nname"))
        #expect(lines.last?.level == .warning && lines.last?.text.hasPrefix("summary: 5 entries") == true)
    }

    @Test func metricsOfACompletedRun() {
        let text = MetricsFile.render(report: ReportTests.report(mode: .clean), exitCode: ExitStatus.deletionsFailed.rawValue,
                                      now: 1_700_000_100, duration: 1.5, lastSuccess: 1_600_000_000)
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains("virt_sanlock_cleanup_deleted 1.0"))
        #expect(lines.contains("virt_sanlock_cleanup_failed 1.0"))
        #expect(lines.contains("virt_sanlock_cleanup_reclaimed_bytes 1048576.0"))
        #expect(lines.contains("virt_sanlock_cleanup_last_run_success 0.0"))
        #expect(lines.contains("virt_sanlock_cleanup_last_success_timestamp_seconds 1600000000.0"))
        #expect(lines.contains(#"virt_sanlock_cleanup_leases{state="held"} 1.0"#))
        #expect(lines.contains(#"virt_sanlock_cleanup_leases{state="free"} 3.0"#))
        #expect(lines.contains(#"virt_sanlock_cleanup_verdicts{action="kept",reason="held-by-live-host"} 2.0"#))
        #expect(lines.contains(#"virt_sanlock_cleanup_entries{kind="foreign"} 1.0"#))
        #expect(text.contains("# TYPE virt_sanlock_cleanup_deleted gauge"))
    }

    /// Byte for byte the text swift-prometheus's registry wrote for these
    /// gauges (which it ordered at random), in the order they are set.
    @Test func metricsTextIsTheExpositionFormat() {
        let text = MetricsFile.render(report: nil, exitCode: ExitStatus.fatal.rawValue, now: 1_700_000_005.5, duration: 0.25,
                                      lastSuccess: 1_700_000_000)
        #expect(text == """
            # HELP virt_sanlock_cleanup_last_run_timestamp_seconds When the last run ended (Unix time).
            # TYPE virt_sanlock_cleanup_last_run_timestamp_seconds gauge
            virt_sanlock_cleanup_last_run_timestamp_seconds 1700000005.5
            # HELP virt_sanlock_cleanup_last_run_success 1 if the last run completed without failures, else 0.
            # TYPE virt_sanlock_cleanup_last_run_success gauge
            virt_sanlock_cleanup_last_run_success 0.0
            # HELP virt_sanlock_cleanup_last_run_exit_status Exit status of the last run.
            # TYPE virt_sanlock_cleanup_last_run_exit_status gauge
            virt_sanlock_cleanup_last_run_exit_status 1.0
            # HELP virt_sanlock_cleanup_last_success_timestamp_seconds When a run last completed without failures (Unix time).
            # TYPE virt_sanlock_cleanup_last_success_timestamp_seconds gauge
            virt_sanlock_cleanup_last_success_timestamp_seconds 1700000000.0
            # HELP virt_sanlock_cleanup_run_duration_seconds Wall time of the last run.
            # TYPE virt_sanlock_cleanup_run_duration_seconds gauge
            virt_sanlock_cleanup_run_duration_seconds 0.25

            """)

        var gauge = MetricsFile.Gauges()
        gauge("x", #"help \ with a backslash"#, 1, [("a", "1")])
        gauge("y", "other", 1e20)
        gauge("x", "help", -2.5, [("a", #"q"uote \ and"# + "\nnew line"), ("b", "")])
        #expect(gauge.text == #"""
            # HELP virt_sanlock_cleanup_x help \\ with a backslash
            # TYPE virt_sanlock_cleanup_x gauge
            virt_sanlock_cleanup_x{a="1"} 1.0
            virt_sanlock_cleanup_x{a="q\"uote \\ and\nnew line",b=""} -2.5
            # HELP virt_sanlock_cleanup_y other
            # TYPE virt_sanlock_cleanup_y gauge
            virt_sanlock_cleanup_y 1e+20

            """#)
    }

    @Test func metricsOfAFailedRunKeepTheLastSuccess() {
        let text = MetricsFile.render(report: nil, exitCode: ExitStatus.fatal.rawValue, now: 5, duration: 0.1, lastSuccess: 4)
        #expect(text.contains("virt_sanlock_cleanup_last_success_timestamp_seconds 4.0"))
        #expect(text.contains("virt_sanlock_cleanup_last_run_exit_status 1.0"))
        #expect(!text.contains("virt_sanlock_cleanup_deleted"))
        let first = MetricsFile.render(report: nil, exitCode: ExitStatus.fatal.rawValue, now: 5, duration: 0.1, lastSuccess: nil)
        #expect(!first.contains("last_success_timestamp_seconds "))
    }

    @Test func metricsFileIsReplacedAtomically() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-metrics-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/virt-sanlock-cleanup.prom"
        try MetricsFile.write("virt_sanlock_cleanup_last_success_timestamp_seconds 42.0\n", to: path)
        #expect(MetricsFile.lastSuccess(in: path) == 42)
        try MetricsFile.write("x 1\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "x 1\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["virt-sanlock-cleanup.prom"])
        #expect(throws: FileSystemError.self) { try MetricsFile.write("x", to: directory + "/missing/m.prom") }
    }

    @Test(arguments: [("0", 0.0), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("1w", 604_800), ("45", 45), ("1.5h", 5400)])
    func durations(text: String, seconds: Double) throws {
        #expect(try DurationText.seconds(text) == seconds)
    }

    @Test(arguments: ["", "h", "5x", "-1h", "1h-", "soon", "1 h",
                      // Beyond 100 years, or not plain digits (Double() takes these).
                      "5219w", "99999999999999999999999w", String(repeating: "9", count: 400) + "s",
                      "1e9", "0x10", "inf", "nan", "1.2.3h", ".h", "٣h"])
    func badDurations(text: String) {
        #expect(throws: DurationText.ParseError.self) { try DurationText.seconds(text) }
    }

    @Test func durationFormatting() throws {
        #expect(DurationText.format(0) == "0s")
        #expect(DurationText.format(5400) == "1h30m")
        #expect(DurationText.format(90061) == "1d1h1m1s")
        #expect(DurationText.format(-90) == "-1m30s")
        // An mtime of Int64.min seconds is this far in the past: no trap.
        #expect(DurationText.format(9.3e18) == "294699216670y")
        #expect(DurationText.format(.infinity) == "forever")
        #expect(DurationText.format(.nan) == "?")
        #expect(try DurationText.seconds("5218w") == DurationText.maximum)
    }

    @Test("The metrics file is written without following, truncating or blocking on what others created")
    func metricsFileIgnoresWhatOthersPlanted() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-metrics-planted-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/virt-sanlock-cleanup.prom"
        let victim = directory + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        // A hard link and a symlink where our temporary file goes, a FIFO
        // where the metrics file is: before the fix, the first was truncated
        // and written through, and reading the last blocked for ever.
        let temporary = directory + "/.virt-sanlock-cleanup.prom.\(getpid()).tmp"
        #expect(link(victim, temporary) == 0)
        #expect(mkfifo(path, 0o600) == 0)
        #expect(MetricsFile.lastSuccess(in: path) == nil)
        try MetricsFile.write("x 1\n", to: path)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "x 1\n")
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: victim)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: victim)
        #expect(MetricsFile.lastSuccess(in: path) == nil, "followed a symlink")
        try MetricsFile.write("y 1\n", to: path)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "y 1\n")
        // What a killed run left between writing and renaming goes; a live
        // writer's temporary file stays.
        let stale = directory + "/.virt-sanlock-cleanup.prom.999999999.tmp"
        let live = directory + "/.virt-sanlock-cleanup.prom.1.tmp"
        try "x".write(toFile: stale, atomically: false, encoding: .utf8)
        try "x".write(toFile: live, atomically: false, encoding: .utf8)
        try MetricsFile.write("z 1\n", to: path)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live))
        // A previous file with an implausible value: ignored, not carried over.
        for value in ["nan", "+Inf", "-5", "1e300"] {
            try "virt_sanlock_cleanup_last_success_timestamp_seconds \(value)\n".write(toFile: path, atomically: false, encoding: .utf8)
            #expect(MetricsFile.lastSuccess(in: path) == nil, "\(value)")
        }
    }
}
