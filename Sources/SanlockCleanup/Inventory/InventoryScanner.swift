#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Examines directory entries: `fstatat` without following, then, for files
/// with an auto-lease name only, reads the leader (and the mode blocks of
/// hosts that may hold it shared) and classifies it.
public struct InventoryScanner: Sendable {
    public let directory: LeaseDirectory
    public let classifier: LeaseClassifier

    public init(directory: LeaseDirectory, classifier: LeaseClassifier) {
        self.directory = directory
        self.classifier = classifier
    }

    public func examine(_ name: EntryName) -> LeaseEntry {
        examine(name, using: AlignedBuffer())
    }

    /// `buffer` is reused across calls on one thread.
    public func examine(_ name: EntryName, using buffer: AlignedBuffer) -> LeaseEntry {
        let path = directory.path(of: name)
        let status: FileStatus
        do {
            status = try directory.status(of: name)
        } catch {
            return LeaseEntry(name: name, path: path, status: nil,
                              kind: error.errno == .noSuchFileOrDirectory ? .vanished : .unreadable(error))
        }
        if let kind = LeaseClassifier.kind(ofNonRegular: status, symlinkTarget: directory.symlinkTarget(of: name)) {
            return LeaseEntry(name: name, path: path, status: status, kind: kind)
        }
        if let kind = LeaseClassifier.kindWithoutReading(name: name) {
            return LeaseEntry(name: name, path: path, status: status, kind: kind)
        }
        var length = LeaseClassifier.initialReadLength
        while true {
            let prefix: UnsafeRawBufferPointer
            do {
                prefix = try directory.readPrefix(of: name, length: length, expected: status.identity, into: buffer)
            } catch {
                let kind: EntryKind = error.errno == .noSuchFileOrDirectory ? .vanished : .unreadable(error)
                return LeaseEntry(name: name, path: path, status: status, kind: kind)
            }
            switch classifier.classify(name: name, size: status.size, bytes: prefix) {
            case .kind(let kind):
                return LeaseEntry(name: name, path: path, status: status, kind: kind)
            case .needsBytes(let needed) where needed > length && prefix.count == length:
                length = needed
            case .needsBytes:
                // The file ended before the blocks the leader promised.
                let needed = Int64(length)
                return LeaseEntry(name: name, path: path, status: status,
                                  kind: .corruptLease(.truncated(size: status.size, needed: needed)))
            }
        }
    }
}
