// Temporary until the virConf parser lands.
public struct LockManagerConfig: Sendable {
    public static let defaultPath = "/etc/libvirt/qemu-sanlock.conf"
    public var diskLeaseDirectory = "/var/lib/libvirt/sanlock"
    public var hostID: UInt64?
    public static func load(path: String) throws(ConfigurationError) -> LockManagerConfig { LockManagerConfig() }
}
public struct ConfigurationError: Error, CustomStringConvertible { public var description: String }
