import Foundation

/// The result of a finished child process.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { status == 0 }
}

struct CommandError: Error, CustomStringConvertible {
    var command: [String]
    var result: CommandResult
    var description: String {
        "\(command.joined(separator: " ")) exited \(result.status): \(result.stderr)\(result.stdout)"
    }
}

/// Runs child processes without blocking the test's cooperative thread:
/// waits through the termination handler, output goes to temporary files
/// (pipes could fill up and stall a chatty child).
enum Command {
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:], check: Bool = true) async throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try resolve(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-out-\(UUID().uuidString)")
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            // As a shell reports it: 128 + N for a child killed by signal N.
            process.terminationHandler = { process in
                let status = process.terminationStatus
                continuation.resume(returning: process.terminationReason == .uncaughtSignal ? 128 + status : status)
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try out.close()
        try err.close()
        let result = CommandResult(
            status: status,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
        if check, !result.succeeded { throw CommandError(command: arguments, result: result) }
        return result
    }

    /// Starts a long-running child (a daemon, a lease holder) and returns it.
    static func start(_ arguments: [String], environment: [String: String] = [:], logFile: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try resolve(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        if let logFile {
            _ = FileManager.default.createFile(atPath: logFile, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    static func resolve(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
        for directory in path + ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CommandError(command: [name], result: CommandResult(status: 127, stdout: "", stderr: "not found"))
    }

    static func exists(_ name: String) -> Bool { (try? resolve(name)) != nil }
}

/// How long a wait may take before the test calls it hung: a hang guard,
/// not a speed goal. What takes a tenth of a second on an idle machine may
/// take many seconds on a shared CI machine running this suite in parallel,
/// and no test may fail for that: speed is measured by `make bench`, never
/// asserted by a test.
let hangGuardSeconds = 60.0

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
func waitUntil(timeout: Double = hangGuardSeconds, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await condition() { return }
        if Date() > deadline { throw TimeoutError(what: what, seconds: timeout) }
        try await Task.sleep(for: .milliseconds(50))
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var what: String
    var seconds: Double
    var description: String { "timed out after \(seconds) s waiting for \(what)" }
}

/// What libvirt names a disk's lease: MD5 of the path, as the tests compute
/// it independently of the code under test (coreutils' md5sum).
func leaseName(forDisk path: String) async throws -> String {
    let result = try await Command.run(["sh", "-c", "printf %s \"$0\" | md5sum", path])
    return String(result.stdout.prefix(32))
}
