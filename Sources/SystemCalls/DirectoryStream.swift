#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import CLinux
import SystemPackage

/// A directory being listed (`opendir`/`fdopendir`, `readdir`,
/// `closedir`): the one directory listing of the janitor. Closed when it
/// goes away.
public struct DirectoryStream: ~Copyable {
    private let stream: OpaquePointer

    /// `opendir` of a path.
    public init(path: some Sequence<UInt8>) throws(SystemCallError) {
        stream = try withCString(path) { path in pointerOrErrno("opendir") { opendir(path) } }.get()!
    }

    /// `dup` and `fdopendir` of a directory held open, rewound (`rewinddir`):
    /// the duplicate shares the original's offset, which an earlier listing
    /// left at the end. The original stays open and untouched.
    public init(duplicating directory: FileDescriptor) throws(SystemCallError) {
        let copy = try valueOrErrno("dup") { dup(directory.rawValue) }.get()
        switch pointerOrErrno("fdopendir", { fdopendir(copy) }) {
        case .success(let stream):
            self.stream = stream!
        case .failure(let error):
            _ = Glibc.close(copy)
            throw error
        }
        rewinddir(stream)
    }

    deinit { closedir(stream) }

    /// The descriptor the stream reads (`dirfd`), for `*at` calls on its
    /// entries while listing.
    public var descriptor: FileDescriptor { FileDescriptor(rawValue: dirfd(stream)) }

    /// `readdir`: the next entry's name, `.` and `..` included; nil at the end.
    public func nextName() throws(SystemCallError) -> [UInt8]? {
        guard let entry = try pointerOrErrno("readdir", nullAtEnd: true, { readdir(stream) }).get() else { return nil }
        let name = clinux_dirent_name(entry)!
        return Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }

    /// Every name but `.` and `..`, in the directory's order.
    public func names() throws(SystemCallError) -> [[UInt8]] {
        try entries().map(\.name)
    }

    /// Every entry but `.` and `..`, in the directory's order, with the type
    /// the file system gave (`d_type`): a hint only, the entry may change
    /// before anyone acts on it.
    public func entries() throws(SystemCallError) -> [(name: [UInt8], type: EntryTypeHint)] {
        var entries: [(name: [UInt8], type: EntryTypeHint)] = []
        while let entry = try pointerOrErrno("readdir", nullAtEnd: true, { readdir(stream) }).get() {
            let pointer = clinux_dirent_name(entry)!
            let name = Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            entries.append((name, EntryTypeHint(clinux_dirent_type(entry))))
        }
        return entries
    }
}

/// A directory entry's type as `readdir` reported it.
public enum EntryTypeHint: Sendable, Hashable {
    case regular
    /// Anything but a regular file: a directory, a symlink, a device...
    case other
    /// The file system does not say (`DT_UNKNOWN`).
    case unknown

    init(_ type: UInt8) {
        switch Int32(type) {
        case Int32(DT_REG): self = .regular
        case Int32(DT_UNKNOWN): self = .unknown
        default: self = .other
        }
    }
}
