/// Bounds on what a parse may consume. libvirt's status XML is tens of
/// kilobytes and about ten elements deep; anything near these limits is not
/// something libvirt wrote.
public struct XMLParseLimits: Sendable, Hashable {
    /// Largest document accepted, in bytes. A file is refused from its size
    /// before a byte is read.
    public var maxBytes: Int
    /// Deepest element nesting accepted (the root element is depth 1).
    /// libxml2 itself stops at 256 without `XML_PARSE_HUGE`, which is never
    /// set, so a larger value here changes nothing.
    public var maxDepth: Int

    public init(maxBytes: Int = 16 << 20, maxDepth: Int = 256) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
    }

    public static let `default` = XMLParseLimits()
}
