internal import SystemCalls
internal import SystemPackage

/// Reads a whole regular file, refusing it before reading when it is larger
/// than the limit. libxml2 never opens files itself here: it only ever sees
/// bytes we read, so no loader, catalog or URL scheme is involved.
enum BoundedFileReader {
    /// `BoundedFile` opens with O_NONBLOCK: a FIFO named `x.xml` must not
    /// hang the janitor in open(); it is refused as not a regular file.
    /// Regular files ignore the flag. And with O_NOFOLLOW: libvirt never makes
    /// a symlink there, and whoever did may point it anywhere (a device,
    /// another user's file): it is refused, never followed.
    static func read(pathBytes: [UInt8], displayPath: String, limit: Int) throws(XMLError) -> [UInt8] {
        do throws(BoundedFile.Failure) {
            return try BoundedFile.read(path: pathBytes, limit: limit)
        } catch {
            switch error {
            case .open(let cause) where cause.errno == .tooManySymbolicLinkLevels:
                throw XMLError(kind: .io(errno: cause.errno.rawValue), file: displayPath, message: "a symbolic link (never followed)")
            case .open(let cause):
                throw ioError(displayPath, "cannot open", cause)
            case .status(let cause):
                throw ioError(displayPath, "cannot stat", cause)
            case .notRegularFile:
                throw XMLError(kind: .notRegularFile, file: displayPath, message: "not a regular file")
            case .tooLarge(let size):
                throw XMLError(kind: .tooLarge(limit: limit), file: displayPath,
                               message: "\(size) bytes is over the \(limit)-byte limit")
            case .read(let cause):
                throw ioError(displayPath, "cannot read", cause)
            }
        }
    }

    private static func ioError(_ path: String, _ what: String, _ cause: SystemCallError) -> XMLError {
        XMLError(kind: .io(errno: cause.errno.rawValue), file: path, message: "\(what): \(cause.errno)")
    }
}
