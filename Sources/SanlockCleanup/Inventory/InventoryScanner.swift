#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Examines directory entries and says what each is. A regular file with an
/// auto-lease name is opened at once (one lookup and one open: `readdir`
/// already said it is a regular file), its leader read through that
/// descriptor (with the mode blocks of hosts that may hold it shared) and
/// classified; everything else gets an `fstatat` without following.
struct InventoryScanner: Sendable {
    let directory: LeaseDirectory
    let classifier: LeaseClassifier

    public init(directory: LeaseDirectory, classifier: LeaseClassifier) {
        self.directory = directory
        self.classifier = classifier
    }

    /// An entry as the scan left it: what it is, and for a lease file a
    /// cleaning run may remove, the file held open for the removal.
    struct Scanned: Sendable {
        public var entry: LeaseEntry
        public var file: LeaseFile?
    }

    /// Looks at one entry afresh, read-only, keeping nothing open.
    func examine(_ name: EntryName) -> LeaseEntry {
        scan(DirectoryEntry(name: name), keepingOpen: false, using: AlignedBuffer()).entry
    }

    /// `keepingOpen`: open lease files read-write and keep those that a
    /// cleaning run may remove (leases, uninitialised and invalidated
    /// files) open. `buffer` is reused across calls on one thread.
    func scan(_ listed: DirectoryEntry, keepingOpen: Bool, using buffer: AlignedBuffer) -> Scanned {
        let name = listed.name
        if listed.type == .regular, name.isAutoLeaseName {
            do throws(FileSystemError) {
                return classify(try directory.openLease(name, writable: keepingOpen), keepingOpen: keepingOpen, using: buffer)
            } catch {
                if error.errno == .noSuchFileOrDirectory { return Scanned(entry: entry(name, nil, .vanished)) }
                // Replaced since the listing (a symlink: ELOOP, a directory:
                // EISDIR), or not openable: look at it by name.
            }
        }
        let status: FileStatus
        do {
            status = try directory.status(of: name)
        } catch {
            return Scanned(entry: entry(name, nil, error.errno == .noSuchFileOrDirectory ? .vanished : .unreadable(error)))
        }
        if let kind = LeaseClassifier.kind(ofNonRegular: status, symlinkTarget: directory.symlinkTarget(of: name)) {
            return Scanned(entry: entry(name, status, kind))
        }
        if let kind = LeaseClassifier.kindWithoutReading(name: name) {
            return Scanned(entry: entry(name, status, kind))
        }
        do throws(FileSystemError) {
            return classify(try directory.openLease(name, writable: keepingOpen), keepingOpen: keepingOpen, using: buffer)
        } catch {
            return Scanned(entry: entry(name, status, error.errno == .noSuchFileOrDirectory ? .vanished : .unreadable(error)))
        }
    }

    private func classify(_ file: LeaseFile, keepingOpen: Bool, using buffer: AlignedBuffer) -> Scanned {
        let kind = kind(of: file, status: file.status, using: buffer)
        return Scanned(entry: entry(file.name, file.status, kind), file: keepingOpen && kind.isRemovable ? file : nil)
    }

    /// What an open file is: reads as much of it as the classifier asks for.
    func kind(of file: LeaseFile, status: FileStatus, using buffer: AlignedBuffer) -> EntryKind {
        if let kind = LeaseClassifier.kind(ofNonRegular: status, symlinkTarget: nil) { return kind }
        var length = LeaseClassifier.initialReadLength
        while true {
            let prefix: UnsafeRawBufferPointer
            do {
                prefix = try file.read(length: length, into: buffer)
            } catch {
                return .unreadable(error)
            }
            switch classifier.classify(name: file.name, size: status.size, bytes: prefix) {
            case .kind(let kind):
                return kind
            case .needsBytes(let needed) where needed > length && prefix.count == length:
                length = needed
            case .needsBytes:
                // The file ended before the blocks the leader promised.
                return .corruptLease(.truncated(size: status.size, needed: Int64(length)))
            }
        }
    }

    private func entry(_ name: EntryName, _ status: FileStatus?, _ kind: EntryKind) -> LeaseEntry {
        LeaseEntry(name: name, path: directory.path(of: name), status: status, kind: kind)
    }
}

extension EntryKind {
    /// What a cleaning run may remove, and so keeps open from the scan.
    var isRemovable: Bool {
        switch self {
        case .autoLease, .uninitialisedLease, .clearedLease: true
        default: false
        }
    }
}
