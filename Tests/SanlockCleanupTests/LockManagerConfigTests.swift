import Foundation
import SystemPackage
import Testing
@testable import SanlockCleanup

private let confPath = "/etc/libvirt/qemu-sanlock.conf"

/// The shape of the stock file Debian installs: every setting commented out.
private let stockShapedFile = """
    #
    # Sanlock lock manager settings for the QEMU driver.
    #
    # With automatic disk leases libvirt creates one lease per disk path in
    # the lease directory below. Every host needs a distinct host id then.
    #
    #auto_disk_leases = 1

    #
    # Where lease files are created (one per disk, named by the MD5 of its path).
    #
    #disk_lease_dir = "/var/lib/libvirt/sanlock"

    #
    # This host's id in the lockspace, unique per host, 1..2000.
    #host_id = 1

    #
    # Whether guests need a lease for every disk.
    #
    #require_lease_for_disks = 1

    #
    # Seconds; 0 keeps sanlock's default.
    #io_timeout = 10

    #
    # Owner of the files libvirt creates.
    #user = "sanlock"
    #group = "sanlock"

    """

/// A text and the error `LockManagerConfig.parse` must throw.
struct SettingErrorCase: Sendable, CustomTestStringConvertible {
    let text: String
    let line: Int
    let key: String
    let message: String

    init(_ text: String, line: Int, key: String, _ message: String) {
        self.text = text
        self.line = line
        self.key = key
        self.message = message
    }

    var testDescription: String { text.replacingOccurrences(of: "\n", with: "⏎") }
}

/// A private directory, removed when the test ends.
private final class TemporaryDirectory {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        var template = Array("\(base)/virconf-test.XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw Errno(rawValue: errno) }
        path = String(cString: created)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ text: String, to name: String) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }
}

@Suite struct LockManagerConfigDefaultsTests {
    @Test func initHoldsLibvirtDefaults() {
        let config = LockManagerConfig()
        #expect(config.autoDiskLeases == false)
        #expect(config.diskLeaseDirectory == "/var/lib/libvirt/sanlock")
        #expect(config.hostID == nil)
        #expect(config.path == "/etc/libvirt/qemu-sanlock.conf")
        #expect(config.fileExisted == false)
    }

    @Test func constants() {
        #expect(LockManagerConfig.defaultPath == "/etc/libvirt/qemu-sanlock.conf")
        #expect(LockManagerConfig.defaultLeaseDirectory == "/var/lib/libvirt/sanlock")
        #expect(LockManagerConfig.maximumHostID == 2000)
    }

    @Test(arguments: ["", "\n\n", "# only a comment\n"])
    func fileWithoutSettingsGivesDefaults(_ text: String) throws {
        let config = try LockManagerConfig.parse(text, path: "/etc/libvirt/libxl-sanlock.conf")
        var expected = LockManagerConfig()
        expected.path = "/etc/libvirt/libxl-sanlock.conf"
        expected.fileExisted = true
        #expect(config == expected)
    }

    @Test func stockShapedFileGivesDefaults() throws {
        let config = try LockManagerConfig.parse(stockShapedFile, path: confPath)
        var expected = LockManagerConfig()
        expected.fileExisted = true
        #expect(config == expected)
    }
}

@Suite struct LockManagerConfigSettingsTests {
    @Test func autoDiskLeasesSetup() throws {
        let text = """
            disk_lease_dir = "/var/lib/libvirt/sanlock"
            host_id = 1
            auto_disk_leases = 1
            """
        let config = try LockManagerConfig.parse(text, path: confPath)
        #expect(config.autoDiskLeases == true)
        #expect(config.diskLeaseDirectory == "/var/lib/libvirt/sanlock")
        #expect(config.hostID == 1)
        #expect(config.path == confPath)
        #expect(config.fileExisted == true)
    }

    @Test func hostIDZeroMeansUnsetAsForLibvirt() throws {
        let config = try LockManagerConfig.parse("host_id = 0\nauto_disk_leases = 1", path: confPath)
        #expect(config.hostID == nil)
    }

    @Test func everySetting() throws {
        let text = """
            auto_disk_leases = 1
            disk_lease_dir = '/srv/nfs/lease dir:1'   # a colon and a space
            host_id = 2000
            require_lease_for_disks = 1
            io_timeout = 2
            user = "sanlock"; group = "+176"
            """
        let config = try LockManagerConfig.parse(text, path: confPath)
        #expect(config.autoDiskLeases == true)
        #expect(config.diskLeaseDirectory == "/srv/nfs/lease dir:1")
        #expect(config.hostID == 2000)
    }

    @Test(arguments: [(1 as Int64, 1 as UInt64), (2, 2), (1999, 1999), (2000, 2000)])
    func hostIDInRange(literal: Int64, expected: UInt64) throws {
        let config = try LockManagerConfig.parse("host_id = \(literal)\n", path: confPath)
        #expect(config.hostID == expected)
    }

    @Test func hostIDWithExplicitPlus() throws {
        let config = try LockManagerConfig.parse("host_id = +17\n", path: confPath)
        #expect(config.hostID == 17)
    }

    @Test(arguments: ["io_timeout = 0", "io_timeout = 4294967295", "require_lease_for_disks = 0", "user = 'sanlock'",
                      "group = '+176'", "user = ''\ngroup = \"\""])
    func unusedSettingsWithValidValuesAreAccepted(_ text: String) throws {
        // Checked as libvirt checks them (see the error cases), then dropped.
        let config = try LockManagerConfig.parse(text + "\nhost_id = 3\n", path: confPath)
        #expect(config.hostID == 3)
    }

    @Test func firstOccurrenceWinsAndLaterBadRepetitionsAreIgnored() throws {
        let text = """
            host_id = 3
            host_id = 5000
            auto_disk_leases = 0
            auto_disk_leases = "yes"
            disk_lease_dir = "/srv/leases"
            disk_lease_dir = "relative"
            """
        let config = try LockManagerConfig.parse(text, path: confPath)
        #expect(config.hostID == 3)
        #expect(config.autoDiskLeases == false)
        #expect(config.diskLeaseDirectory == "/srv/leases")
    }

    @Test func unknownAndUnusedKeysAreIgnoredWhateverTheirType() throws {
        let text = """
            lock_manager = "sanlock"
            lock_manager_retries = [1, [2, "x"]]
            auto_disk_lease = "misspelt, so unknown"
            Host_ID = "case matters"
            host_id = 4
            """
        let config = try LockManagerConfig.parse(text, path: confPath)
        var expected = LockManagerConfig()
        expected.hostID = 4
        expected.fileExisted = true
        #expect(config == expected)
    }

    @Test func trailingSlashInLeaseDirectoryIsKeptAsWritten() throws {
        let config = try LockManagerConfig.parse("disk_lease_dir = \"/srv/leases/\"\n", path: confPath)
        #expect(config.diskLeaseDirectory == "/srv/leases/")
    }
}

@Suite struct LockManagerConfigErrorTests {
    static let settingErrors: [SettingErrorCase] = [
        // auto_disk_leases, require_lease_for_disks: virConfGetValueBool.
        SettingErrorCase("auto_disk_leases = 2", line: 1, key: "auto_disk_leases", "'auto_disk_leases' must be 0 or 1, found 2"),
        SettingErrorCase("auto_disk_leases = -1", line: 1, key: "auto_disk_leases", "'auto_disk_leases' must be 0 or 1, found -1"),
        SettingErrorCase("\nauto_disk_leases = \"1\"", line: 2, key: "auto_disk_leases",
                         "expected 0 or 1 for 'auto_disk_leases', found the string \"1\""),
        SettingErrorCase("auto_disk_leases = [1]", line: 1, key: "auto_disk_leases",
                         "expected 0 or 1 for 'auto_disk_leases', found a list"),
        SettingErrorCase("host_id = 1\nrequire_lease_for_disks = 'no'", line: 2, key: "require_lease_for_disks",
                         "expected 0 or 1 for 'require_lease_for_disks', found the string \"no\""),
        SettingErrorCase("require_lease_for_disks = 10", line: 1, key: "require_lease_for_disks",
                         "'require_lease_for_disks' must be 0 or 1, found 10"),

        // disk_lease_dir: virConfGetValueString, then absolute and non-empty.
        SettingErrorCase("disk_lease_dir = 1", line: 1, key: "disk_lease_dir",
                         "expected a string for 'disk_lease_dir', found the integer 1"),
        SettingErrorCase("disk_lease_dir = ['/a']", line: 1, key: "disk_lease_dir",
                         "expected a string for 'disk_lease_dir', found a list"),
        SettingErrorCase("# c\n\ndisk_lease_dir = \"\"", line: 3, key: "disk_lease_dir", "'disk_lease_dir' must not be empty"),
        SettingErrorCase("disk_lease_dir = \"var/lib/libvirt/sanlock\"", line: 1, key: "disk_lease_dir",
                         "'disk_lease_dir' must be an absolute path, found \"var/lib/libvirt/sanlock\""),
        SettingErrorCase("disk_lease_dir = './sanlock'", line: 1, key: "disk_lease_dir",
                         "'disk_lease_dir' must be an absolute path, found \"./sanlock\""),
        SettingErrorCase("disk_lease_dir = ' /srv'", line: 1, key: "disk_lease_dir",
                         "'disk_lease_dir' must be an absolute path, found \" /srv\""),

        // host_id: virConfGetValueUInt, then sanlock's 1...2000.
        SettingErrorCase("host_id = 2001", line: 1, key: "host_id", "'host_id' must be in range 1:2000, found 2001"),
        SettingErrorCase("host_id = 4294967295", line: 1, key: "host_id", "'host_id' must be in range 1:2000, found 4294967295"),
        SettingErrorCase("host_id = 4294967296", line: 1, key: "host_id", "'host_id' must be in range 0:4294967295, found 4294967296"),
        SettingErrorCase("host_id = -1", line: 1, key: "host_id", "'host_id' must be in range 0:4294967295, found -1"),
        SettingErrorCase("auto_disk_leases = 1\nhost_id = \"1\"", line: 2, key: "host_id",
                         "expected an unsigned integer for 'host_id', found the string \"1\""),
        SettingErrorCase("host_id = [1]", line: 1, key: "host_id", "expected an unsigned integer for 'host_id', found a list"),

        // io_timeout: virConfGetValueUInt.
        SettingErrorCase("io_timeout = 4294967296", line: 1, key: "io_timeout",
                         "'io_timeout' must be in range 0:4294967295, found 4294967296"),
        SettingErrorCase("io_timeout = -10", line: 1, key: "io_timeout", "'io_timeout' must be in range 0:4294967295, found -10"),
        SettingErrorCase("io_timeout = '10'", line: 1, key: "io_timeout",
                         "expected an unsigned integer for 'io_timeout', found the string \"10\""),

        // user, group: virConfGetValueString.
        SettingErrorCase("user = 0", line: 1, key: "user", "expected a string for 'user', found the integer 0"),
        SettingErrorCase("user = 'root'\ngroup = [\"kvm\"]", line: 2, key: "group", "expected a string for 'group', found a list"),
    ]

    @Test(arguments: settingErrors)
    func rejectsBadSetting(_ testCase: SettingErrorCase) {
        let expected = ConfigurationError(path: confPath, line: testCase.line, key: testCase.key, message: testCase.message)
        #expect(throws: expected) {
            try LockManagerConfig.parse(testCase.text, path: confPath)
        }
    }

    @Test func errorDescriptionNamesFileLineKeyAndExpectedType() {
        let error = ConfigurationError(
            path: confPath, line: 2, key: "host_id", message: "expected an unsigned integer for 'host_id', found the string \"1\"")
        #expect(error.description
            == "/etc/libvirt/qemu-sanlock.conf:2: expected an unsigned integer for 'host_id', found the string \"1\"")
    }

    @Test func syntaxErrorIsWrapped() {
        let path = "/tmp/lease dir:1/qemu-sanlock.conf"
        let expected = ConfigurationError(path: path, line: 3, message: "expected a value after '='")
        #expect(throws: expected) {
            try LockManagerConfig.parse("host_id = 1\n\ndisk_lease_dir =\n", path: path)
        }
        #expect(expected.description == "/tmp/lease dir:1/qemu-sanlock.conf:3: expected a value after '='")
    }

    @Test func wrappingKeepsPathLineAndMessage() {
        let syntax = VirConfError(path: "/x:y z.conf", line: 9, message: "unterminated list: no closing ']' before the end of the file")
        let wrapped = ConfigurationError(syntax)
        #expect(wrapped == ConfigurationError(
            path: "/x:y z.conf", line: 9, key: nil, errno: nil,
            message: "unterminated list: no closing ']' before the end of the file"))
        #expect(wrapped.description == syntax.description)
    }

    @Test func syntaxErrorWinsOverAnyTypeError() {
        // libvirt parses the whole file before reading any setting.
        #expect(throws: ConfigurationError(path: confPath, line: 2, message: "expected a value after '='")) {
            try LockManagerConfig.parse("host_id = 'x'\nio_timeout =\n", path: confPath)
        }
    }

    @Test func errorWithoutLineHasNoLineInDescription() {
        let error = ConfigurationError(path: "/a b:c", message: "cannot read the file: Is a directory")
        #expect(error.description == "/a b:c: cannot read the file: Is a directory")
    }
}

@Suite struct LockManagerConfigLoadTests {
    @Test func missingFileGivesDefaults() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/qemu-sanlock.conf"
        let config = try LockManagerConfig.load(path: path)
        var expected = LockManagerConfig()
        expected.path = path
        expected.fileExisted = false
        #expect(config == expected)
    }

    @Test func missingDirectoryGivesDefaults() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/no-such-dir/qemu-sanlock.conf"
        let config = try LockManagerConfig.load(path: path)
        #expect(config.fileExisted == false)
        #expect(config.path == path)
        #expect(config.diskLeaseDirectory == LockManagerConfig.defaultLeaseDirectory)
    }

    @Test func danglingSymlinkCountsAsMissing() throws {
        // libvirt's access(R_OK) gives ENOENT for it too.
        let directory = try TemporaryDirectory()
        let path = directory.path + "/qemu-sanlock.conf"
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: directory.path + "/gone")
        let config = try LockManagerConfig.load(path: path)
        #expect(config.fileExisted == false)
    }

    @Test func existingFileIsParsed() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("auto_disk_leases = 1\nhost_id = 1\ndisk_lease_dir = \"/srv/leases\"\n", to: "qemu-sanlock.conf")
        let config = try LockManagerConfig.load(path: path)
        #expect(config.fileExisted == true)
        #expect(config.path == path)
        #expect(config.autoDiskLeases == true)
        #expect(config.hostID == 1)
        #expect(config.diskLeaseDirectory == "/srv/leases")
    }

    @Test func pathWithColonAndSpaces() throws {
        let directory = try TemporaryDirectory()
        let subdirectory = directory.path + "/libvirt etc:2"
        try FileManager.default.createDirectory(atPath: subdirectory, withIntermediateDirectories: false)
        let path = try directory.write("host_id = 7 # here\nio_timeout = ", to: "libvirt etc:2/qemu sanlock.conf")
        #expect(throws: ConfigurationError(path: path, line: 2, message: "expected a value after '='")) {
            try LockManagerConfig.load(path: path)
        }
        _ = try directory.write("host_id = 7 # here\n", to: "libvirt etc:2/qemu sanlock.conf")
        let config = try LockManagerConfig.load(path: path)
        #expect(config.hostID == 7)
        #expect(config.path == subdirectory + "/qemu sanlock.conf")
    }

    @Test func stockShapedFileOnDisk() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(stockShapedFile, to: "qemu-sanlock.conf")
        let config = try LockManagerConfig.load(path: path)
        var expected = LockManagerConfig()
        expected.path = path
        expected.fileExisted = true
        #expect(config == expected)
    }

    @Test func emptyFileOnDisk() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("", to: "qemu-sanlock.conf")
        let config = try LockManagerConfig.load(path: path)
        #expect(config.fileExisted == true)
        #expect(config.hostID == nil)
    }

    @Test func crlfFileOnDisk() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("auto_disk_leases = 1\r\nhost_id = 5\r\nio_timeout = x\r\n", to: "qemu-sanlock.conf")
        #expect(throws: ConfigurationError(
            path: path, line: 3,
            message: "expected a value after '=' (a number, a quoted string or a list), found 'x'")) {
            try LockManagerConfig.load(path: path)
        }
    }

    @Test func directoryAtPathIsAnError() throws {
        let directory = try TemporaryDirectory()
        let expected = ConfigurationError(path: directory.path, message: "not a regular file")
        #expect(throws: expected) {
            try LockManagerConfig.load(path: directory.path)
        }
        #expect(expected.description == "\(directory.path): not a regular file")
    }

    @Test("A FIFO named as the configuration is refused without blocking")
    func fifoAtPathIsAnError() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/qemu-sanlock.conf"
        #expect(mkfifo(path, 0o600) == 0)
        // Before the fix this open blocked for ever (no writer).
        #expect(throws: ConfigurationError(path: path, message: "not a regular file")) {
            try LockManagerConfig.load(path: path)
        }
    }

    @Test("A value quoted in an error cannot forge lines or terminal escapes")
    func hostileValuesAreEscapedInErrors() throws {
        let text = "disk_lease_dir = \"rel\u{1B}[31mative\"\n"
        do {
            _ = try LockManagerConfig.parse(text, path: "/etc/x\u{1B}.conf")
            Issue.record("accepted a relative directory")
        } catch {
            #expect(!error.description.unicodeScalars.contains { $0.value < 0x20 })
            #expect(error.description.contains("\\u{1b}[31m"))
        }
    }

    @Test func fileUsedAsDirectoryIsAnError() throws {
        // Not ENOENT, so not "missing": libvirt fails here too.
        let directory = try TemporaryDirectory()
        let file = try directory.write("host_id = 1\n", to: "plain")
        let path = file + "/qemu-sanlock.conf"
        #expect(throws: ConfigurationError(path: path, errno: .notDirectory, message: "cannot open the file: Not a directory")) {
            try LockManagerConfig.load(path: path)
        }
    }

    @Test func emptyPathIsAnError() {
        #expect(throws: ConfigurationError(path: "", message: "no configuration file named (empty path)")) {
            try LockManagerConfig.load(path: "")
        }
    }

    @Test func fileOverLibvirtsSizeLimitIsAnError() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(String(repeating: "#", count: LockManagerConfig.maximumFileSize + 1), to: "huge.conf")
        #expect(throws: ConfigurationError(
            path: path, message: "file is larger than 10485760 bytes, libvirt's limit for configuration files")) {
            try LockManagerConfig.load(path: path)
        }
    }

    @Test func fileAtLibvirtsSizeLimitIsRead() throws {
        let directory = try TemporaryDirectory()
        let padding = String(repeating: "#", count: LockManagerConfig.maximumFileSize - 13)
        let text = "host_id = 8\n" + padding
        #expect(text.utf8.count == LockManagerConfig.maximumFileSize - 1)
        let path = try directory.write(text + "\n", to: "big.conf")
        let config = try LockManagerConfig.load(path: path)
        #expect(config.hostID == 8)
    }

    @Test func nonUTF8CommentOnDiskIsHarmless() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/qemu-sanlock.conf"
        let bytes = Array("# caf".utf8) + [0xE9] + Array("\nhost_id = 6\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let config = try LockManagerConfig.load(path: path)
        #expect(config.hostID == 6)
    }
}
