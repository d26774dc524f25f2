import CSanlock
import SystemCalls
import SystemPackage

/// What the daemon's memory holds: every registered process and every lease
/// a process holds, as `sanlock client status` shows them. Reading it costs
/// no disk I/O and leaves the processes alone (see the shim).
public struct DaemonStatus: Sendable, Hashable {
    /// A process registered with the daemon (libvirt registers each qemu,
    /// under the guest's name).
    public struct Client: Sendable, Hashable {
        public let pid: Int32
        public let name: String

        public init(pid: Int32, name: String) {
            self.pid = pid
            self.name = name
        }
    }

    /// One holder's token on a lease.
    public struct Token: Sendable, Hashable {
        /// The daemon's list: `held` for a lease in force; `add` while an
        /// acquire is under way; `rem` and `orphan` for leases on their way
        /// out (their pid is the last holder's).
        public enum List: String, Sendable, Hashable {
            case held, add, rem, orphan, unknown
        }

        public let pid: Int32
        public let lockspace: String
        public let name: String
        public let path: String
        public let offset: UInt64
        public let shared: Bool
        /// The lease version at the acquire (meaningless for shared tokens).
        public let lver: UInt64
        public let list: List

        public init(pid: Int32, lockspace: String, name: String, path: String, offset: UInt64 = 0,
                    shared: Bool, lver: UInt64, list: List = .held) {
            self.pid = pid
            self.lockspace = lockspace
            self.name = name
            self.path = path
            self.offset = offset
            self.shared = shared
            self.lver = lver
            self.list = list
        }

        public var isHeld: Bool { list == .held }
    }

    public let clients: [Client]
    public let tokens: [Token]

    public init(clients: [Client], tokens: [Token]) {
        self.clients = clients
        self.tokens = tokens
    }

    /// Held tokens on lease `name` of `lockspace`.
    public func holders(of name: String, in lockspace: String) -> [Token] {
        tokens.filter { $0.isHeld && $0.name == name && $0.lockspace == lockspace }
    }

    /// Why a status reply could not be decoded.
    public enum DecodeError: Error, Sendable, Hashable {
        case truncated(record: Int)
        case badHeader(magic: UInt32)
        case tooManyDisks(record: Int, count: UInt32)
    }

    /// Decodes the reply after its header: records to the end of `bytes`.
    /// Every length comes from the daemon and is checked before use.
    public static func decode(records bytes: UnsafeRawBufferPointer) throws(DecodeError) -> DaemonStatus {
        let stateSize = MemoryLayout<vsc_sanlk_state>.size
        let resourceSize = MemoryLayout<sanlk_resource>.size
        let diskSize = MemoryLayout<sanlk_disk>.size
        let lockspaceSize = MemoryLayout<sanlk_lockspace>.size
        var clients: [Client] = []
        var tokens: [Token] = []
        var offset = 0
        var record = 0
        func take(_ count: Int) throws(DecodeError) -> UnsafeRawBufferPointer {
            guard count >= 0, count <= bytes.count - offset else { throw .truncated(record: record) }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
        }
        while offset < bytes.count {
            let state = try take(stateSize).loadUnaligned(as: vsc_sanlk_state.self)
            let text = try take(Int(state.str_len))
            // Compared as the daemon sends it: any 32-bit value may come.
            switch state.type {
            case UInt32(VSC_SANLK_STATE_CLIENT):
                var fields = state
                clients.append(Client(pid: Int32(bitPattern: state.data32), name: fixedString(&fields.name)))
            case UInt32(VSC_SANLK_STATE_LOCKSPACE):
                _ = try take(lockspaceSize)
            case UInt32(VSC_SANLK_STATE_RESOURCE):
                var resource = try take(resourceSize).loadUnaligned(as: sanlk_resource.self)
                // sanlock resources have at most SANLK_MAX_DISKS (4) disks.
                guard resource.num_disks <= 8 else { throw .tooManyDisks(record: record, count: resource.num_disks) }
                var disks: [sanlk_disk] = []
                for _ in 0..<Int(resource.num_disks) {
                    disks.append(try take(diskSize).loadUnaligned(as: sanlk_disk.self))
                }
                guard var disk = disks.first else { break }
                tokens.append(Token(
                    pid: Int32(bitPattern: state.data32),
                    lockspace: fixedString(&resource.lockspace_name), name: fixedString(&resource.name),
                    path: fixedString(&disk.path), offset: disk.offset,
                    shared: resource.flags & UInt32(SANLK_RES_SHARED) != 0, lver: state.data64,
                    list: Token.List(statusText: text)))
            default:
                // Daemon, host and renewal records carry nothing more.
                break
            }
            record += 1
        }
        return DaemonStatus(clients: clients, tokens: tokens)
    }

    /// `key=value` words, NUL-terminated text.
    static func settings(_ text: UnsafeRawBufferPointer) -> [String: String] {
        let end = text.firstIndex(of: 0) ?? text.count
        var settings: [String: String] = [:]
        for word in String(decoding: text[..<end], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = word.firstIndex(of: "=") else { continue }
            settings[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return settings
    }
}

extension DaemonStatus.Token.List {
    /// The record's text starts `list=held flags=… …` (NUL-terminated).
    init(statusText text: UnsafeRawBufferPointer) {
        let end = text.firstIndex(of: 0) ?? text.count
        let words = String(decoding: text[..<end], as: UTF8.self).split(separator: " ")
        let value = words.first { $0.hasPrefix("list=") }?.dropFirst("list=".count)
        self = value.flatMap { Self(rawValue: String($0)) } ?? .unknown
    }
}

extension SanlockClient {
    /// Limit on a status reply: a record is at most about 9 KiB (a resource
    /// with four disks and its text), so this allows some 7000 tokens.
    static let statusReplyLimit = 64 << 20
    /// SM_MAGIC, the first word of every message of the daemon's protocol.
    static let statusMagic: UInt32 = 0x0428_2010

    /// The daemon's status: registered processes and the leases they hold.
    public static func status() throws(SanlockError) -> DaemonStatus {
        let reply = try DaemonDeadline.call(.status) { () -> Result<[UInt8], SanlockError> in
            Result { () throws(SanlockError) in try statusReply(debug: 0) }
        }.get()
        let headerSize = MemoryLayout<vsc_sm_header>.size
        // A reply the tool cannot read is an I/O error, not a crash.
        let decoded = reply.withUnsafeBytes { bytes -> DaemonStatus? in
            guard bytes.count >= headerSize, bytes.loadUnaligned(as: vsc_sm_header.self).magic == statusMagic else {
                return nil
            }
            return try? DaemonStatus.decode(records: UnsafeRawBufferPointer(rebasing: bytes[headerSize...]))
        }
        guard let decoded else { throw SanlockError(.status, code: SanlockCode(.ioError)) }
        return decoded
    }

    /// The daemon's settings, as `sanlock client status -D` prints them
    /// first (`our_host_name`, `max_worker_threads`, ...): the `key=value`
    /// words of the debug status's first record, the daemon's own. The rest
    /// of that reply (records laid out for debugging) is not read.
    public static func daemonSettings() throws(SanlockError) -> DaemonSettings {
        let reply = try DaemonDeadline.call(.status) { () -> Result<[UInt8], SanlockError> in
            Result { () throws(SanlockError) in try statusReply(debug: 1) }
        }.get()
        let headerSize = MemoryLayout<vsc_sm_header>.size, stateSize = MemoryLayout<vsc_sanlk_state>.size
        let settings = reply.withUnsafeBytes { bytes -> [String: String]? in
            guard bytes.count >= headerSize + stateSize, bytes.loadUnaligned(as: vsc_sm_header.self).magic == statusMagic else {
                return nil
            }
            let state = bytes.loadUnaligned(fromByteOffset: headerSize, as: vsc_sanlk_state.self)
            let textStart = headerSize + stateSize
            guard state.type == UInt32(VSC_SANLK_STATE_DAEMON), Int(state.str_len) <= bytes.count - textStart else { return nil }
            return DaemonStatus.settings(UnsafeRawBufferPointer(rebasing: bytes[textStart..<(textStart + Int(state.str_len))]))
        }
        guard let settings else { throw SanlockError(.status, code: SanlockCode(.ioError)) }
        return DaemonSettings(values: settings)
    }

    /// One status request and its whole reply, on a connection of its own.
    private static func statusReply(debug: UInt32) throws(SanlockError) -> [UInt8] {
        let socket = vsc_send_status_command(debug)
        guard socket >= 0 else { throw SanlockError(.status, code: socket) }
        let descriptor = FileDescriptor(rawValue: socket)
        defer { descriptor.closeIgnoringErrors() }
        do {
            return try BoundedFile.read(from: descriptor, limit: statusReplyLimit)
        } catch {
            switch error {
            case .read(let failure): throw SanlockError(.status, code: SanlockCode(failure.errno))
            default: throw SanlockError(.status, code: SanlockCode(.messageTooLong))
            }
        }
    }
}

/// The daemon's own settings (`SanlockClient.daemonSettings`).
public struct DaemonSettings: Sendable, Hashable {
    public let values: [String: String]

    public init(values: [String: String]) { self.values = values }

    /// The name the daemon joins lockspaces with (`-e`, or one it made up
    /// when it started).
    public var hostName: String? { values["our_host_name"].flatMap { $0.isEmpty ? nil : $0 } }
    /// How many requests the daemon serves at once (`max_worker_threads`).
    public var workerThreads: Int? { values["max_worker_threads"].flatMap { Int($0) } }
}
