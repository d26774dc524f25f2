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
        var names: [[UInt8]] = []
        while let name = try nextName() {
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        return names
    }
}
