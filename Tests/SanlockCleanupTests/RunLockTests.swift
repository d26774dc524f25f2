import Foundation
@testable import SanlockCleanup
import SystemCalls
import SystemPackage
import Testing

/// The run lock lives under /run, and its file is truncated and rewritten:
/// nothing someone else planted there may be written through or block.
@Suite("Run lock")
struct RunLockTests {
    static let leaseDirectory = FileIdentity(device: 1, inode: 2)
    static let name = "lease-dir-1-2-run-3-4.lock"

    static func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vsc-runlock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        chmod(path, 0o700)
        return path
    }

    @Test func oneJanitorAtATime() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try RunLock.acquire(in: directory, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
        #expect(throws: RunLock.Failure.self) {
            _ = try RunLock.acquire(in: directory, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
        }
        withExtendedLifetime(first) {}
        #expect(try String(contentsOfFile: directory + "/" + Self.name, encoding: .utf8) == "pid \(getpid())\n")
    }

    /// flock answers EWOULDBLOCK when another run holds the lock, and other
    /// errors when the file system fails: only the first means "another run".
    @Test("flock failing with EIO is a file system error, not another run")
    func lockFailureIsNotAnotherRun() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (errno, expectHeld) in [(Errno.ioError, false), (Errno.wouldBlock, true)] {
            let faults = InjectedFaults([.init("flock", errno)])
            let failure = #expect(throws: RunLock.Failure.self) {
                _ = try faults.during { () throws(RunLock.Failure) in
                    try RunLock.acquire(in: directory, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
                }
            }
            #expect(faults.injected == ["flock"])
            switch failure {
            case .held?: #expect(expectHeld, "\(errno) was taken for another run")
            case .failed(let error)?: #expect(!expectHeld && "\(error)".hasPrefix("lock "), "\(error)")
            default: Issue.record("\(String(describing: failure))")
            }
        }
        // Nothing was left locked: a run can take it now.
        _ = try RunLock.acquire(in: directory, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
    }

    @Test("A hard-linked lock file is refused, and the other file is not truncated")
    func hardLinkedLockFile() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let victim = directory + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        #expect(link(victim, directory + "/" + Self.name) == 0)
        #expect(throws: RunLock.Failure.self) {
            _ = try RunLock.acquire(in: directory, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
    }

    @Test("A FIFO as the lock file is refused without blocking", .timeLimit(.minutes(1)))
    func fifoLockFile() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(mkfifo(directory + "/" + Self.name, 0o600) == 0)
        #expect(throws: RunLock.Failure.self) {
            _ = try RunLock.acquire(in: directory, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
        }
    }

    @Test("A lock directory that is a symlink, or writable by others, is refused")
    func untrustedDirectory() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let elsewhere = directory + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: false)
        chmod(elsewhere, 0o700)
        let link = directory + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: elsewhere)
        #expect(throws: RunLock.Failure.self) {
            _ = try RunLock.acquire(in: link, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
        chmod(elsewhere, 0o777)
        #expect(throws: RunLock.Failure.self) {
            _ = try RunLock.acquire(in: elsewhere, leaseDirectory: Self.leaseDirectory, daemon: "run-3-4")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
    }
}
