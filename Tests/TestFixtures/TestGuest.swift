import Foundation

/// A guest as libvirt's files describe it. The XML comes from the test
/// library's one writer, `Tests/lib/test-functions.sh guest-xml`, which the
/// shell scripts, the fault harness and the bench use too (docs/testing.md,
/// "Guest XML"): one idea of libvirt's shape for every harness.
package struct TestGuest: Sendable {
    package struct Disk: Sendable {
        package var path: String
        package var readonly: Bool
        package var shareable: Bool
        /// A raw backing file: the status file's `<backingStore>` chain.
        package var backing: String?

        package init(path: String, readonly: Bool = false, shareable: Bool = false, backing: String? = nil) {
            self.path = path
            self.readonly = readonly
            self.shareable = shareable
            self.backing = backing
        }
    }

    package var name: String
    package var state: String
    /// `nil`: the writer's default (booted when running, else user).
    package var reason: String?
    /// qemu's pid; a status file needs one, a definition does not.
    package var pid: Int32?
    package var disks: [Disk]
    /// `<job async=...>`: `migration in` on a live migration's destination.
    package var asyncJob: String?
    /// `<qemuCaps>` flags; a real qemu has a few hundred.
    package var capabilities: Int
    /// `<disk>` elements written as given, after `disks`: a parser test's variants.
    package var rawDisks: String?

    package init(
        name: String, state: String = "running", reason: String? = nil, pid: Int32? = nil,
        disks: [Disk] = [], asyncJob: String? = nil, capabilities: Int = 300, rawDisks: String? = nil
    ) {
        self.name = name
        self.state = state
        self.reason = reason
        self.pid = pid
        self.disks = disks
        self.asyncJob = asyncJob
        self.capabilities = capabilities
        self.rawDisks = rawDisks
    }

    /// /run/libvirt/qemu/<name>.xml
    package func statusXML() throws -> String { try GuestXMLWriter.run([arguments(definition: false)]) }

    /// /etc/libvirt/qemu/<name>.xml
    package func definitionXML() throws -> String { try GuestXMLWriter.run([arguments(definition: true)]) }

    package func writeStatus(in directory: String) throws {
        try Self.write(statusXML(), to: directory + "/\(name).xml")
    }

    package func writeDefinition(in directory: String) throws {
        try Self.write(definitionXML(), to: directory + "/\(name).xml")
    }

    /// Many status files from one run of the writer (a scale test writes
    /// hundreds; one shell per file would cost a fork and the library's
    /// parsing each).
    package static func writeStatuses(_ guests: [(guest: TestGuest, file: String)]) throws {
        for file in guests.map(\.file) {
            try FileManager.default.createDirectory(
                atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        _ = try GuestXMLWriter.run(guests.map { $0.guest.arguments(definition: false) }, files: guests.map(\.file))
    }

    /// Written as libvirt does, so a concurrent reader sees the old file or
    /// the new one: a temporary file, then a rename.
    package static func write(_ xml: String, to file: String) throws {
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try xml.write(toFile: file, atomically: true, encoding: .utf8)
    }

    func arguments(definition: Bool) -> [String] {
        var arguments = ["--state", state, "--capabilities", String(capabilities)]
        if let reason { arguments += ["--reason", reason] }
        if let pid { arguments += ["--pid", String(pid)] }
        if let asyncJob { arguments += ["--async-job", asyncJob] }
        for disk in disks {
            arguments += ["--disk", disk.path]
            if disk.readonly { arguments.append("--readonly") }
            if disk.shareable { arguments.append("--shareable") }
            if let backing = disk.backing { arguments += ["--backing", backing] }
        }
        if let rawDisks { arguments += ["--disk-xml", rawDisks] }
        if definition { arguments.append("--definition") }
        return arguments + ["--", name]
    }
}

package struct GuestXMLWriterError: Error, CustomStringConvertible {
    package var status: Int32
    package var stderr: String
    package var description: String { "test-functions.sh guest-xml exited \(status): \(stderr)" }
}

/// Runs the shell library's `guest_xml` once per argument list, in one bash.
enum GuestXMLWriter {
    static let library = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("lib/test-functions.sh").path

    /// The XML of every call, concatenated; with `files`, each call's XML
    /// goes to its file instead (and the result is empty).
    static func run(_ calls: [[String]], files: [String]? = nil) throws -> String {
        var script = "set -e\n. \(quoted(library))\n"
        for (index, arguments) in calls.enumerated() {
            script += "guest_xml " + arguments.map(quoted).joined(separator: " ")
            if let files { script += " >" + quoted(files[index]) }
            script += "\n"
        }
        // A file, not `bash -c`: hundreds of calls pass the kernel's limit
        // on one argument (128 KiB).
        let scriptFile = FileManager.default.temporaryDirectory.appendingPathComponent("guest-xml-\(UUID().uuidString).sh")
        try script.write(to: scriptFile, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: scriptFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [scriptFile.path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both to the end before waiting: a full pipe would stall bash.
        let group = DispatchGroup()
        nonisolated(unsafe) var errorData = Data()
        DispatchQueue.global().async(group: group) { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw GuestXMLWriterError(
                status: process.terminationStatus, stderr: String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    /// A single-quoted shell word.
    static func quoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
