import SystemPackage
import SystemCalls

/// A configuration problem: the file, the line when one is to blame, and,
/// for a bad setting, its name.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    var key: String?
    /// Set when the file could not be read.
    public var errno: Errno?
    var message: String

    public init(path: String, line: Int? = nil, key: String? = nil, errno: Errno? = nil, message: String) {
        self.path = path
        self.line = line
        self.key = key
        self.errno = errno
        self.message = message
    }

    public init(_ syntaxError: VirConfError) {
        self.init(path: syntaxError.path, line: syntaxError.line, message: syntaxError.message)
    }

    /// Values quoted in `message` come from the file: escaped, so that the
    /// message stays one printable line.
    public var description: String {
        let text = message.escapingControlCharacters()
        if let line { return "\(path.escapingControlCharacters()):\(line): \(text)" }
        return "\(path.escapingControlCharacters()): \(text)"
    }
}

/// The settings of libvirt's sanlock lock driver (`qemu-sanlock.conf`, or
/// `libxl-sanlock.conf` for Xen), read with the same types, defaults and
/// first-occurrence-wins rule as libvirt, plus range checks libvirt leaves to
/// sanlock (host id) or does not make (lease directory).
public struct LockManagerConfig: Sendable, Hashable {
    public static let defaultPath = "/etc/libvirt/qemu-sanlock.conf"
    static let defaultLeaseDirectory = "/var/lib/libvirt/sanlock"
    /// sanlock's highest host id: a lockspace holds at most 2000 hosts
    /// (`sanlock_admin.h`, max_hosts for 512-byte sectors).
    public static let maximumHostID: UInt64 = 2000
    /// libvirt's `MAX_CONFIG_FILE_SIZE`: a bigger file is refused.
    static let maximumFileSize = 10 * 1024 * 1024

    /// Whether libvirt makes a lease for every disk. When it does not, the
    /// lease directory only holds leases from before (a run warns).
    public var autoDiskLeases: Bool
    public var diskLeaseDirectory: String
    /// 1...2000 when set; `host_id = 0` means unset, as for libvirt.
    public var hostID: UInt64?
    /// The file the settings came from.
    public var path: String
    /// False when the file was missing and these are libvirt's defaults.
    public var fileExisted: Bool

    public init() {
        autoDiskLeases = false
        diskLeaseDirectory = Self.defaultLeaseDirectory
        hostID = nil
        path = Self.defaultPath
        fileExisted = false
    }

    /// `text` is the content of the file at `path`, so `fileExisted` is true.
    static func parse(_ text: String, path: String) throws(ConfigurationError) -> LockManagerConfig {
        try parse(bytes: Array(text.utf8), path: path)
    }

    static func parse(bytes: [UInt8], path: String) throws(ConfigurationError) -> LockManagerConfig {
        let conf: VirConf
        do {
            conf = try VirConf.parse(bytes: bytes, path: path)
        } catch {
            throw ConfigurationError(error)
        }
        return try LockManagerConfig(conf)
    }

    /// Reads the file as libvirt does at startup: a missing file means the
    /// defaults; any other failure to read it is an error.
    public static func load(path: String = defaultPath) throws(ConfigurationError) -> LockManagerConfig {
        guard !path.isEmpty else {
            throw ConfigurationError(path: path, message: "no configuration file named (empty path)")
        }
        guard let bytes = try readFile(path) else {
            // A missing file means libvirt's defaults.
            var defaults = LockManagerConfig()
            defaults.path = path
            return defaults
        }
        return try parse(bytes: bytes, path: path)
    }

    private init(_ conf: VirConf) throws(ConfigurationError) {
        self.init()
        path = conf.path
        fileExisted = true
        let reader = SettingReader(conf: conf)
        if let value = try reader.bool("auto_disk_leases") { autoDiskLeases = value }
        if let value = try reader.string("disk_lease_dir") {
            try reader.checkAbsoluteDirectory(value, key: "disk_lease_dir")
            diskLeaseDirectory = value
        }
        // 0 is libvirt's "no host id" (its default), so it reads as unset.
        if let value = try reader.unsigned32("host_id"), value != 0 {
            guard (1...Self.maximumHostID).contains(UInt64(value)) else {
                throw reader.failure("host_id", "'host_id' must be in range 1:\(Self.maximumHostID), found \(value)")
            }
            hostID = UInt64(value)
        }
        // Settings of libvirt's that the janitor has no use for: how libvirt
        // treats disks without a lease, its lockspace's io_timeout, and the
        // owner of the files it creates. libvirt refuses a file where they
        // have the wrong type or range, and so does the janitor: such a file
        // is not the configuration libvirt is running with.
        _ = try reader.bool("require_lease_for_disks")
        _ = try reader.unsigned32("io_timeout")
        _ = try reader.string("user")
        _ = try reader.string("group")
    }
}

/// Typed access to settings, with libvirt's `virConfGetValue*` rules: a
/// missing setting is nil, a setting of the wrong type or range is an error.
private struct SettingReader {
    let conf: VirConf

    func failure(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(path: conf.path, line: conf.line(of: key), key: key, message: message)
    }

    /// Like `virConfGetValueBool`: only the integers 0 and 1.
    func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = conf.value(for: key) else { return nil }
        guard case .integer(let number) = value else {
            throw failure(key, "expected 0 or 1 for '\(key)', found \(Self.describe(value))")
        }
        guard number == 0 || number == 1 else {
            throw failure(key, "'\(key)' must be 0 or 1, found \(number)")
        }
        return number == 1
    }

    /// Like `virConfGetValueString`.
    func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = conf.value(for: key) else { return nil }
        guard case .string(let string) = value else {
            throw failure(key, "expected a string for '\(key)', found \(Self.describe(value))")
        }
        return string
    }

    /// Like `virConfGetValueUInt`: a non-negative integer that fits in 32 bits.
    func unsigned32(_ key: String) throws(ConfigurationError) -> UInt32? {
        guard let value = conf.value(for: key) else { return nil }
        guard case .integer(let number) = value else {
            throw failure(key, "expected an unsigned integer for '\(key)', found \(Self.describe(value))")
        }
        guard let result = UInt32(exactly: number) else {
            throw failure(key, "'\(key)' must be in range 0:\(UInt32.max), found \(number)")
        }
        return result
    }

    /// libvirt would hand a relative directory to sanlock relative to the
    /// daemon's working directory; we refuse to guess which files it meant.
    func checkAbsoluteDirectory(_ directory: String, key: String) throws(ConfigurationError) {
        guard !directory.isEmpty else {
            throw failure(key, "'\(key)' must not be empty")
        }
        guard !directory.utf8.contains(0) else {
            throw failure(key, "'\(key)' must not contain a NUL byte")
        }
        guard directory.hasPrefix("/") else {
            throw failure(key, "'\(key)' must be an absolute path, found \"\(directory)\"")
        }
    }

    static func describe(_ value: VirConfValue) -> String {
        switch value {
        case .integer(let number): "the integer \(number)"
        case .string(let string): "the string \"\(string)\""
        case .list: "a list"
        }
    }
}

/// Reads the whole file. Symlinks are followed (configuration management
/// often links it), but the open never blocks (`O_NONBLOCK`: a FIFO or a
/// device named as the file) and only a regular file is read. nil when there
/// is no such file.
private func readFile(_ path: String) throws(ConfigurationError) -> [UInt8]? {
    do {
        return try BoundedFile.read(path: path.utf8, limit: LockManagerConfig.maximumFileSize, followSymlinks: true)
    } catch {
        switch error {
        case .open(let failure) where failure.errno == .noSuchFileOrDirectory:
            return nil
        case .open(let failure):
            throw ConfigurationError(path: path, errno: failure.errno, message: "cannot open the file: \(failure.errno)")
        case .status(let failure):
            throw ConfigurationError(path: path, errno: failure.errno, message: "cannot stat the file: \(failure.errno)")
        case .read(let failure):
            throw ConfigurationError(path: path, errno: failure.errno, message: "cannot read the file: \(failure.errno)")
        case .notRegularFile:
            throw ConfigurationError(path: path, message: "not a regular file")
        case .tooLarge:
            throw ConfigurationError(
                path: path,
                message: "file is larger than \(LockManagerConfig.maximumFileSize) bytes, libvirt's limit for configuration files")
        }
    }
}
