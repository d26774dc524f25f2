#if canImport(Glibc)
import Glibc
#endif
import LibXML
import SystemCalls
import SystemPackage

/// Every guest libvirt describes on this host: live ones from the status
/// directories, persistent ones from the config directories, and every file
/// that could not be used. A plain value, so the decision that consumes it
/// is a pure function.
public struct GuestInventory: Sendable {
    /// From status XML: running, paused or otherwise active guests (stale
    /// ones included, marked by `processAlive == false`).
    var active: [Guest]
    /// From persistent definitions (state `.shutoff`).
    var defined: [Guest]
    /// A status directory or file that exists but could not be read or
    /// parsed. Any entry here means the inventory may miss a live guest: the
    /// janitor must delete nothing.
    var statusErrors: [GuestSourceError]
    /// A config directory or definition that could not be used: it only
    /// names disks of stopped guests, so this is a warning.
    var definitionWarnings: [GuestSourceError]

    public init(
        active: [Guest] = [], defined: [Guest] = [],
        statusErrors: [GuestSourceError] = [], definitionWarnings: [GuestSourceError] = []
    ) {
        self.active = active
        self.defined = defined
        self.statusErrors = statusErrors
        self.definitionWarnings = definitionWarnings
    }

    /// The status files were all read: deleting is allowed as far as the
    /// guest inventory goes.
    var isComplete: Bool { statusErrors.isEmpty }

    /// Status files whose qemu process is gone.
    var staleGuests: [Guest] { active.filter(\.isStale) }

    public static func load(statusDirectories: [String], configDirectories: [String]) -> GuestInventory {
        load(
            statusDirectories: statusDirectories, configDirectories: configDirectories,
            limits: .default, isProcessAlive: ProcessLiveness.isAlive)
    }

    /// Reads `*.xml` directly in each directory (never subdirectories such
    /// as `autostart/` or `networks/`, nor `*.xml.new`, `*.pid`, `*.log`).
    /// A directory that does not exist is normal; one that exists and cannot
    /// be listed is an error like an unreadable file.
    ///
    /// Symlinks are never followed: libvirt never makes one here, and one
    /// that someone made may point anywhere. In a status directory it is an
    /// error like an unreadable file (a live guest could hide behind it: the
    /// janitor deletes nothing); among definitions, a warning.
    public static func load(
        statusDirectories: [String], configDirectories: [String],
        limits: XMLParseLimits, isProcessAlive: (Int32) -> Bool
    ) -> GuestInventory {
        var inventory = GuestInventory()
        for directory in statusDirectories {
            let result = readGuests(in: directory, limits: limits, parse: GuestXML.status(from:))
            inventory.active += result.guests.map { guest in
                var guest = guest
                guest.processAlive = guest.domainType == "xen" ? nil : guest.pid.map(isProcessAlive)
                return guest
            }
            inventory.statusErrors += result.errors
        }
        for directory in configDirectories {
            let result = readGuests(in: directory, limits: limits, parse: GuestXML.definition(from:))
            inventory.defined += result.guests
            inventory.definitionWarnings += result.errors
        }
        return inventory
    }

    private static func readGuests(
        in directory: String, limits: XMLParseLimits,
        parse: (XMLDocument) throws(GuestSourceError) -> Guest
    ) -> (guests: [Guest], errors: [GuestSourceError]) {
        let names: [EntryName]
        do {
            guard let listed = try xmlEntryNames(in: directory) else { return ([], []) }
            names = listed
        } catch {
            return ([], [error])
        }
        var guests: [Guest] = []
        var errors: [GuestSourceError] = []
        let prefix = Array(directory.utf8) + (directory.hasSuffix("/") ? [] : [UInt8(ascii: "/")])
        for name in names {
            let pathBytes = prefix + name.bytes
            let displayPath = String(decoding: prefix, as: UTF8.self) + name.escaped
            do {
                let document = try XMLDocument.parse(filePathBytes: pathBytes, displayPath: displayPath, limits: limits)
                guests.append(try parse(document))
            } catch let error as XMLError {
                // Deleted between readdir and open: the guest stopped (or was
                // undefined) while we looked; libvirt replaces these files by
                // rename, so a live guest's file never disappears.
                if case .io(errno: ENOENT) = error.kind, !entryExists(pathBytes) { continue }
                errors.append(GuestSourceError(
                    file: displayPath, line: error.line, column: error.column, message: error.message))
            } catch let error as GuestSourceError {
                errors.append(error)
            } catch {
                errors.append(GuestSourceError(file: displayPath, message: "\(error)"))
            }
        }
        return (guests, errors)
    }

    /// Names ending in `.xml`, sorted by bytes; `nil` when the directory
    /// does not exist.
    static func xmlEntryNames(in directory: String) throws(GuestSourceError) -> [EntryName]? {
        let stream: DirectoryStream
        do throws(SystemCallError) {
            stream = try DirectoryStream(path: directory.utf8)
        } catch {
            if error.errno == .noSuchFileOrDirectory { return nil }
            throw GuestSourceError(file: directory, message: "cannot open directory: \(error.errno)")
        }
        let listed: [[UInt8]]
        do throws(SystemCallError) {
            listed = try stream.names()
        } catch {
            throw GuestSourceError(file: directory, message: "cannot read directory: \(error.errno)")
        }
        let suffix = Array(".xml".utf8)
        // libvirt loads every entry whose name ends in ".xml" (hidden ones
        // too), so the same set is read here.
        return listed.filter { $0.count >= suffix.count && Array($0.suffix(suffix.count)) == suffix }
            .map(EntryName.init(bytes:)).sorted()
    }

    private static func entryExists(_ pathBytes: [UInt8]) -> Bool {
        do throws(SystemCallError) {
            _ = try Syscall.status(ofPath: pathBytes, followSymlinks: false)
            return true
        } catch {
            return error.errno != .noSuchFileOrDirectory
        }
    }
}

/// Whether a status file's pid is still a process.
enum ProcessLiveness {
    /// `kill(pid, 0)`: only ESRCH means gone; EPERM (another user's process)
    /// and anything unexpected count as alive. A reused pid therefore reads
    /// as alive, which errs on the side of keeping leases. This must run in
    /// the host's pid namespace: elsewhere every qemu looks gone.
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        do throws(SystemCallError) {
            try Syscall.probeProcess(pid)
            return true
        } catch {
            return error.errno != .noSuchProcess
        }
    }
}
