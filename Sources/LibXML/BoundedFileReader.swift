#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole regular file, refusing it before reading when it is larger
/// than the limit. libxml2 never opens files itself here: it only ever sees
/// bytes we read, so no loader, catalog or URL scheme is involved.
enum BoundedFileReader {
    static func read(pathBytes: [UInt8], displayPath: String, limit: Int) throws(XMLError) -> [UInt8] {
        // O_NONBLOCK: a FIFO named `x.xml` must not hang the janitor in
        // open(); it is refused below as not a regular file. Regular files
        // ignore the flag. O_NOFOLLOW: libvirt never makes a symlink there,
        // and whoever did may point it anywhere (a device, another user's
        // file): it is refused, never followed.
        let fd = (pathBytes + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                open($0.baseAddress!, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW)
            }
        }
        guard fd >= 0 else {
            if errno == ELOOP {
                throw XMLError(kind: .io(errno: ELOOP), file: displayPath, message: "a symbolic link (never followed)")
            }
            throw ioError(displayPath, "cannot open")
        }
        defer { close(fd) }

        var status = stat()
        guard fstat(fd, &status) == 0 else { throw ioError(displayPath, "cannot stat") }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw XMLError(kind: .notRegularFile, file: displayPath, message: "not a regular file")
        }
        guard Int(status.st_size) <= limit else {
            throw tooLarge(displayPath, size: Int(status.st_size), limit: limit)
        }

        // Read until EOF rather than trusting st_size: the file may grow
        // between fstat and read, and must still not exceed the limit.
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                guard count <= limit else { throw tooLarge(displayPath, size: count, limit: limit) }
                bytes.append(contentsOf: repeatElement(0, count: max(4096, count)))
            }
            let got = bytes.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + count, raw.count - count)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw ioError(displayPath, "cannot read")
            }
            if got == 0 { break }
            count += got
        }
        guard count <= limit else { throw tooLarge(displayPath, size: count, limit: limit) }
        bytes.removeSubrange(count...)
        return bytes
    }

    private static func ioError(_ path: String, _ what: String) -> XMLError {
        let code = errno
        return XMLError(kind: .io(errno: code), file: path, message: "\(what): \(String(cString: strerror(code)))")
    }

    private static func tooLarge(_ path: String, size: Int, limit: Int) -> XMLError {
        XMLError(kind: .tooLarge(limit: limit), file: path, message: "\(size) bytes is over the \(limit)-byte limit")
    }
}
