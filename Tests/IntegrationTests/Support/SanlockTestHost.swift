import Foundation
import Testing

/// Whether this machine can run the daemon tests: root, the sanlock tools
/// and unshare (each daemon gets its own mount namespace for /var/log).
enum DaemonTestEnvironment {
    static var missing: String? {
        if getuid() != 0 { return "not root" }
        for tool in ["sanlock", "unshare", "mount"] where !Command.exists(tool) {
            return "\(tool) not installed (apt-get install sanlock util-linux)"
        }
        return nil
    }

    static var available: Bool { missing == nil }

    /// Under CI a skipped daemon test would hide a broken setup: fail instead.
    static var mustRun: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
}

/// Escapes a path for sanlock's "LS:NAME:PATH:OFFSET" strings.
func sanlockEscaped(_ path: String) -> String {
    path.replacingOccurrences(of: ":", with: "\\:")
}

/// A scratch directory on a real file system (sanlock needs O_DIRECT, which
/// tmpfs refuses), removed by `remove()`.
struct ScratchDirectory: Sendable {
    let path: String

    init(prefix: String = "vsc-test") throws {
        let base = ProcessInfo.processInfo.environment["VSC_TEST_TMPDIR"] ?? "/var/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else {
            throw CommandError(command: ["mkdtemp"], result: CommandResult(status: errno, stdout: "", stderr: "mkdtemp failed"))
        }
        path = String(cString: result)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A lease directory shared by the test hosts, with its lockspace file.
struct TestLeaseDirectory: Sendable {
    static let lockspace = "__LIBVIRT__DISKS__"
    let path: String

    var lockspacePath: String { path + "/" + Self.lockspace }

    func lockspaceSpec(hostID: Int) -> String {
        "\(Self.lockspace):\(hostID):\(sanlockEscaped(lockspacePath)):0"
    }

    func path(of name: String) -> String { path + "/" + name }

    func resourceSpec(_ name: String, shared: Bool = false) -> String {
        "\(Self.lockspace):\(name):\(sanlockEscaped(path(of: name))):0" + (shared ? ":SH" : "")
    }

    /// A zero-filled 1 MiB file, as libvirt makes before `sanlock_init`.
    func createZeroFile(_ name: String, size: Int = 1 << 20) throws {
        guard FileManager.default.createFile(atPath: path(of: name), contents: Data(count: size)) else {
            throw CommandError(command: ["create", name], result: CommandResult(status: 1, stdout: "", stderr: "cannot create"))
        }
    }
}

/// A private sanlock daemon standing in for one host (docs/testing.md, "Daemon tests"): its own
/// SANLOCK_RUN_DIR, no watchdog, its own /var/log through a mount namespace,
/// a fixed host name so a rejoin after a crash is not delayed. The recipe is
/// the shell scripts' one, Tests/lib/test-functions.sh.
final class TestSanlockDaemon: @unchecked Sendable {
    let runDirectory: String
    let hostName: String
    private let process: Process
    private(set) var holders: [Process] = []
    private let lock = NSLock()

    var environment: [String: String] { ["SANLOCK_RUN_DIR": runDirectory] }

    /// The test scripts' shell library, run as a command.
    private static let testFunctions = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("lib/test-functions.sh").path

    private init(runDirectory: String, hostName: String, process: Process) {
        self.runDirectory = runDirectory
        self.hostName = hostName
        self.process = process
    }

    static func start(runDirectory: String, hostName: String) async throws -> TestSanlockDaemon {
        // `sanlock-daemon` execs into the daemon, so `process` is the daemon
        // itself (ours to reap); `wait-sanlock` returns once it answers and
        // fails at once if it exits (its output: runDirectory/daemon.out).
        let process = try Command.start([testFunctions, "sanlock-daemon", runDirectory, hostName])
        let daemon = TestSanlockDaemon(runDirectory: runDirectory, hostName: hostName, process: process)
        do {
            try await Command.run([testFunctions, "wait-sanlock", runDirectory, String(process.processIdentifier)])
        } catch {
            process.terminate()
            throw error
        }
        return daemon
    }

    @discardableResult
    func client(_ arguments: [String], check: Bool = true) async throws -> CommandResult {
        try await Command.run(["sanlock", "client"] + arguments, environment: environment, check: check)
    }

    /// Formats the lockspace file (once per directory, by the first host).
    func initLockspace(in directory: TestLeaseDirectory) async throws {
        try directory.createZeroFile(TestLeaseDirectory.lockspace)
        try await client(["init", "-o", "1", "-s", directory.lockspaceSpec(hostID: 0)])
    }

    /// Joins the lockspace with io_timeout 1: about 3 s.
    func join(_ directory: TestLeaseDirectory, hostID: Int) async throws {
        try await client(["add_lockspace", "-o", "1", "-s", directory.lockspaceSpec(hostID: hostID)])
    }

    func leave(_ directory: TestLeaseDirectory, hostID: Int) async throws {
        try await client(["rem_lockspace", "-s", directory.lockspaceSpec(hostID: hostID)])
    }

    /// Creates a lease the way libvirt does: zero-filled file, then sanlock_init.
    func createLease(_ name: String, in directory: TestLeaseDirectory) async throws {
        try directory.createZeroFile(name)
        try await client(["init", "-r", directory.resourceSpec(name)])
    }

    /// Starts a "guest" holding the lease (`sanlock client command`), and
    /// returns once sanlock granted it.
    func hold(_ name: String, in directory: TestLeaseDirectory, shared: Bool = false) async throws -> Process {
        let ready = runDirectory + "/held-\(UUID().uuidString)"
        let log = ready + ".log"
        let holder = try Command.start(
            ["sanlock", "client", "command", "-r", directory.resourceSpec(name, shared: shared),
             "-c", "/bin/sh", "-c", "touch \"$0\"; exec sleep 600", ready],
            environment: environment, logFile: log)
        lock.withLock { holders.append(holder) }
        try await waitUntil("lease \(name) held by \(hostName)") {
            if !holder.isRunning {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw HolderRefused(lease: name, host: hostName, output: output)
            }
            return FileManager.default.fileExists(atPath: ready)
        }
        return holder
    }

    /// Stops a holder; sanlock releases its lease when the process dies.
    /// Returns once the daemon no longer lists the process: it notices the
    /// exit asynchronously, and a fixed pause would be too short on a
    /// loaded machine.
    func release(_ holder: Process) async throws {
        let pid = holder.processIdentifier
        holder.terminate()
        try await waitUntil("holder exit") { !holder.isRunning }
        try await waitUntil("the daemon to forget process \(pid)") {
            let status = try await self.client(["status"], check: false).stdout
            return !status.split(separator: "\n").contains { $0.hasPrefix("p \(pid) ") }
        }
    }

    /// A host crash: the daemon dies without releasing anything.
    func crash() {
        for holder in lock.withLock({ holders }) { kill(holder.processIdentifier, SIGKILL) }
        kill(process.processIdentifier, SIGKILL)
        killDaemonChildren()
    }

    /// The daemon alone dies (lease holders survive, as qemu survives a
    /// sanlock crash); a new daemon can then be started on the same run
    /// directory.
    func crashDaemonOnly() {
        kill(process.processIdentifier, SIGKILL)
        killDaemonChildren()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: runDirectory + "/sanlock.sock")
    }

    func stop() async {
        for holder in lock.withLock({ holders }) where holder.isRunning { holder.terminate() }
        _ = try? await client(["shutdown", "-f", "1"], check: false)
        try? await waitUntil(timeout: 5, "daemon exit") { !self.process.isRunning }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            killDaemonChildren()
        }
    }

    /// `test-functions.sh sanlock-daemon` execs down to sanlock, so the
    /// child is the daemon, but be sure no daemon of ours outlives the test:
    /// find it by its pid file.
    private func killDaemonChildren() {
        if let text = try? String(contentsOfFile: runDirectory + "/sanlock.pid", encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGKILL)
        }
    }
}

struct HolderRefused: Error, CustomStringConvertible {
    var lease: String
    var host: String
    var output: String
    var description: String { "\(host) could not acquire \(lease): \(output)" }
}

/// One test's world: a scratch directory with a lease directory and one or
/// more hosts that joined its lockspace.
final class SanlockCluster: @unchecked Sendable {
    let scratch: ScratchDirectory
    let leases: TestLeaseDirectory
    private(set) var hosts: [Int: TestSanlockDaemon] = [:]

    init(leaseDirectoryName: String = "leases") throws {
        scratch = try ScratchDirectory()
        leases = TestLeaseDirectory(path: scratch.path + "/" + leaseDirectoryName)
        try FileManager.default.createDirectory(atPath: leases.path, withIntermediateDirectories: true)
    }

    /// Starts host `id` (daemon name "host<id>") and joins the lockspace.
    @discardableResult
    func startHost(_ id: Int, join: Bool = true, runDirectory: String? = nil) async throws -> TestSanlockDaemon {
        let daemon = try await launch(id, runDirectory: runDirectory)
        if join { try await daemon.join(leases, hostID: id) }
        return daemon
    }

    /// Starts several hosts and joins them at once: a join takes about 3 s
    /// whatever else happens, so joining in parallel saves that per host.
    func startHosts(_ ids: [Int], runDirectories: [Int: String] = [:]) async throws {
        for id in ids { try await launch(id, runDirectory: runDirectories[id]) }
        let leases = self.leases
        let daemons = ids.map { ($0, hosts[$0]!) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (id, daemon) in daemons {
                group.addTask { try await daemon.join(leases, hostID: id) }
            }
            try await group.waitForAll()
        }
    }

    @discardableResult
    private func launch(_ id: Int, runDirectory: String?) async throws -> TestSanlockDaemon {
        let daemon = try await TestSanlockDaemon.start(
            runDirectory: runDirectory ?? scratch.path + "/run\(id)", hostName: "host\(id)")
        hosts[id] = daemon
        if !FileManager.default.fileExists(atPath: leases.lockspacePath) {
            try await daemon.initLockspace(in: leases)
        }
        return daemon
    }

    func host(_ id: Int) -> TestSanlockDaemon { hosts[id]! }

    func tearDown() async {
        for daemon in hosts.values { await daemon.stop() }
        removeRunLocks()
        scratch.remove()
    }

    /// The janitor keeps its run-lock files (removing one under a waiting
    /// janitor would let two run at once); the tests remove theirs.
    private func removeRunLocks() {
        var status = stat()
        guard stat(leases.path, &status) == 0 else { return }
        let prefix = "lease-dir-\(status.st_dev)-\(status.st_ino)-run-"
        let directory = "/run/virt-sanlock-cleanup"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }
}

/// Runs `body` with a cluster and always tears it down.
func withCluster<T>(
    leaseDirectoryName: String = "leases",
    hosts: [Int] = [1],
    _ body: (SanlockCluster) async throws -> T
) async throws -> T {
    let cluster = try SanlockCluster(leaseDirectoryName: leaseDirectoryName)
    do {
        try await cluster.startHosts(hosts)
        let result = try await body(cluster)
        await cluster.tearDown()
        return result
    } catch {
        await cluster.tearDown()
        throw error
    }
}
