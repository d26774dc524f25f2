import Foundation

struct JanitorRun: Sendable {
    var result: CommandResult
    /// The JSON report, checked against the schema file.
    var document: JSONValue?

    var status: Int32 { result.status }

    func lease(_ name: String) throws -> JSONValue {
        guard let lease = document?.lease(name) else {
            throw CommandError(command: ["lease \(name) not in report"], result: result)
        }
        return lease
    }
}

/// Runs the built `virt-sanlock-cleanup` binary as a user would.
enum JanitorBinary {
    /// The executable next to the test bundle (`swift build` puts both in
    /// the same directory), unless VSC_BINARY names another.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["VSC_BINARY"] { return path }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("virt-sanlock-cleanup").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return "virt-sanlock-cleanup"
    }

    /// An empty status directory: no guests (a missing one is an error).
    static var noGuests: String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-test-no-guests").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The binary and `arguments`, isolated from the machine: no
    /// configuration, no libvirt XML, unless the arguments name their own;
    /// and no minimum age, since tests make their leases moments before
    /// running the janitor.
    static func commandLine(_ arguments: [String]) -> [String] {
        var args = [binary]
        if !arguments.contains("--config") { args += ["--config", "/nonexistent/qemu-sanlock.conf"] }
        if !arguments.contains("--status-dir") { args += ["--status-dir", noGuests] }
        if !arguments.contains("--config-dir") { args += ["--config-dir", "/nonexistent/definitions"] }
        // (Not for --audit, which takes no --min-age: a usage error.)
        if !arguments.contains("--min-age"), !arguments.contains("--audit") { args += ["--min-age", "0"] }
        return args + arguments
    }

    /// Runs with `--format json` (unless `json: false`) and a config file
    /// that does not exist, so the machine's own configuration never matters.
    static func run(
        _ arguments: [String], daemon: TestSanlockDaemon?, runDirectory: String? = nil,
        json: Bool = true, environment: [String: String] = [:]
    ) async throws -> JanitorRun {
        var env = environment
        env["SANLOCK_RUN_DIR"] = daemon?.runDirectory ?? runDirectory ?? "/nonexistent/sanlock-run"
        var args = commandLine(arguments)
        if json { args += ["--format", "json"] }
        let result = try await Command.run(args, environment: env, check: false)
        var document: JSONValue?
        if json, !result.stdout.isEmpty {
            do {
                document = try JSONValue(parsing: result.stdout)
            } catch {
                throw CommandError(command: args + ["(invalid JSON: \(error))"], result: result)
            }
            let validation = try await ReportSchema.validate([result.stdout])
            guard validation.succeeded else {
                throw CommandError(command: args + ["(not valid against the schema: \(validation.stdout)\(validation.stderr))"],
                                   result: result)
            }
        }
        return JanitorRun(result: result, document: document)
    }
}
