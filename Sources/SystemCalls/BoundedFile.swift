import SystemPackage

/// Reads a regular file into memory with a bound on its size: the one file
/// reader of the janitor (the configuration, guest XML, the previous metrics
/// file). The file is opened without following a symlink unless asked
/// (`O_NOFOLLOW`: refused with ELOOP), without blocking on a FIFO
/// (`O_NONBLOCK`: refused below as not a regular file) and never becomes a
/// controlling terminal.
public enum BoundedFile {
    public enum Failure: Error, Sendable, Hashable {
        case open(SystemCallError)
        case status(SystemCallError)
        case notRegularFile
        /// `size` bytes (as fstat said, or as many as were read) is over the limit.
        case tooLarge(size: Int)
        case read(SystemCallError)
    }

    /// The whole file, refused before reading when fstat says it is larger
    /// than `limit`. Read until the end rather than trusting st_size: the
    /// file may grow between fstat and read, and must still not exceed the
    /// limit.
    /// `followSymlinks` is for the one file an admin may link on purpose:
    /// the configuration (configuration management often links it).
    public static func read(path: some Sequence<UInt8>, limit: Int, followSymlinks: Bool = false) throws(Failure) -> [UInt8] {
        try read(path: path, limit: limit, prefix: false, followSymlinks: followSymlinks)
    }

    /// Its first `limit` bytes at most, whatever its size; a read error ends
    /// the read with what came before it. For files whose content is only a
    /// hint.
    public static func readPrefix(path: some Sequence<UInt8>, limit: Int) throws(Failure) -> [UInt8] {
        try read(path: path, limit: limit, prefix: true, followSymlinks: false)
    }

    private static func read(
        path: some Sequence<UInt8>, limit: Int, prefix: Bool, followSymlinks: Bool
    ) throws(Failure) -> [UInt8] {
        let fd: FileDescriptor
        do {
            var options: FileDescriptor.OpenOptions = [.closeOnExec, .noControllingTerminal, .nonBlocking]
            if !followSymlinks { options.insert(.noFollow) }
            fd = try .open(path: path, .readOnly, options: options)
        } catch {
            throw .open(error)
        }
        defer { fd.closeIgnoringErrors() }
        let status: Stat
        do {
            status = try fd.status()
        } catch {
            throw .status(error)
        }
        guard status.type == .regular else { throw .notRegularFile }
        let size = Int(status.size)
        guard prefix || size <= limit else { throw .tooLarge(size: size) }

        // One byte more than st_size: the read that returns 0 needs room.
        return try read(from: fd, limit: limit, prefix: prefix, expectedSize: prefix ? min(size + 1, limit) : size + 1)
    }

    /// Everything `fd` gives until the end (a file, a socket the peer
    /// closes), refused once it exceeds `limit`.
    public static func read(from fd: FileDescriptor, limit: Int) throws(Failure) -> [UInt8] {
        try read(from: fd, limit: limit, prefix: false, expectedSize: 4096)
    }

    private static func read(from fd: FileDescriptor, limit: Int, prefix: Bool, expectedSize: Int) throws(Failure) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: expectedSize)
        var count = 0
        while true {
            if count == bytes.count {
                if prefix, count >= limit { break }
                guard count <= limit else { throw .tooLarge(size: count) }
                let more = max(4096, count)
                bytes.append(contentsOf: repeatElement(0, count: prefix ? min(more, limit - count) : more))
            }
            let got: Int
            do throws(SystemCallError) {
                got = try bytes.withUnsafeMutableBytes { raw in
                    Result { () throws(SystemCallError) in
                        try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[count...]), retryOnInterrupt: true)
                    }
                }.get()
            } catch {
                if prefix { break }
                throw .read(error)
            }
            if got == 0 { break }
            count += got
        }
        guard prefix || count <= limit else { throw .tooLarge(size: count) }
        bytes.removeSubrange(count...)
        return bytes
    }
}
