import Sanlock
import SystemCalls
import SystemPackage

/// A lease file held open: by the scan, which reads its leader through it,
/// and for a lease the run deletes, until the deletion is done, so that the
/// leader is read again, invalidated and checked through the same
/// descriptor: one lookup and one open per lease, however slow the storage.
/// Closed when the last reference goes.
final class LeaseFile: Sendable {
    private let descriptor: FileDescriptor
    public let name: EntryName
    /// For messages.
    public let path: String
    /// What the open's lookup said about the file: its identity is the one
    /// every later step checks against.
    public let status: FileStatus
    /// Opened with O_DIRECT (the file system took it).
    let direct: Bool
    /// Opened read-write.
    let writable: Bool

    init(descriptor: FileDescriptor, name: EntryName, path: String, status: FileStatus, direct: Bool, writable: Bool) {
        self.descriptor = descriptor
        self.name = name
        self.path = path
        self.status = status
        self.direct = direct
        self.writable = writable
    }

    deinit { descriptor.closeIgnoringErrors() }

    /// Reads the first `length` bytes into `buffer`; the result is valid
    /// until the next read into `buffer`, and shorter at the end of the file.
    func read(length: Int, into buffer: AlignedBuffer) throws(FileSystemError) -> UnsafeRawBufferPointer {
        let memory = buffer.reserve(length)
        let exact = UnsafeMutableRawBufferPointer(rebasing: memory[0..<length])
        var total = 0
        do throws(SystemCallError) {
            do throws(SystemCallError) {
                // O_DIRECT reads whole blocks: the whole (page-rounded) buffer.
                try descriptor.readFromStart(into: direct ? memory : exact, atLeast: length, count: &total)
            } catch where direct && error.errno == .invalidArgument {
                // Some file systems accept O_DIRECT at open but not our I/O size.
                try descriptor.readFromStart(into: exact, atLeast: length, count: &total)
            }
        } catch {
            throw FileSystemError(.read, path: path, cause: error)
        }
        return UnsafeRawBufferPointer(rebasing: memory[0..<min(total, length)])
    }

    /// The leader sector (512 or 4096 bytes, as the leader says).
    func leaderSector() throws(FileSystemError) -> [UInt8] {
        // The bytes read are copied out while the buffer lives.
        let buffer = AlignedBuffer()
        return try withExtendedLifetime(buffer) { () throws(FileSystemError) -> [UInt8] in
            let first = Array(try read(length: 512, into: buffer))
            let sectorSize = first.withUnsafeBytes { LeaderRecord(sector: $0) }.map { Int($0.sectorSize) } ?? 512
            switch sectorSize {
            case 512 where first.count == 512: return first
            case 4096:
                let sector = Array(try read(length: 4096, into: buffer))
                if sector.count == 4096 { return sector }
            default: break
            }
            throw FileSystemError(.read, path: path, condition: .shortSector)
        }
    }

    /// Overwrites the start of the file with `bytes` (a whole sector).
    /// O_DIRECT, as sanlock writes its leases: on NFS the write reaches the
    /// server before it returns, where every host reads it.
    func overwriteLeader(with bytes: [UInt8]) throws(FileSystemError) {
        guard writable else { throw FileSystemError(.write, path: path, errno: .badFileDescriptor) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        do throws(SystemCallError) {
            try descriptor.writeFully(at: 0, UnsafeRawBufferPointer(buffer))
        } catch {
            throw FileSystemError(.write, path: path, cause: error)
        }
    }

    /// The number of names the file has, as the kernel holds it (no round
    /// trip; see `FileDescriptor.cachedStatus`).
    func cachedLinkCount() throws(FileSystemError) -> UInt64 {
        do throws(SystemCallError) {
            return UInt64(try descriptor.cachedStatus().linkCount)
        } catch {
            throw FileSystemError(.stat, path: path, cause: error)
        }
    }

    /// The file's attributes asked afresh (`fstat`: a round trip on NFS).
    func currentStatus() throws(FileSystemError) -> FileStatus {
        do throws(SystemCallError) {
            return FileStatus(try descriptor.status())
        } catch {
            throw FileSystemError(.stat, path: path, cause: error)
        }
    }
}
