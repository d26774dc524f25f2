/// Why a document could not be read, parsed or queried, with where it
/// happened when that is known. Carries only values, never libxml2 pointers.
public struct XMLError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// `open`, `fstat` or `read` failed with this errno.
        case io(errno: Int32)
        /// The path names a directory, FIFO, device or socket.
        case notRegularFile
        /// The document is larger than `XMLParseLimits.maxBytes`.
        case tooLarge(limit: Int)
        /// libxml2 found the document not well-formed (or could not decode it).
        case malformed
        /// The document has a `<!DOCTYPE>`. libvirt never writes one, and
        /// refusing it outright means no entity declaration is ever processed.
        case doctypeForbidden
        /// Elements nest deeper than `XMLParseLimits.maxDepth`.
        case tooDeep(limit: Int)
        /// An XPath expression could not be evaluated.
        case xpath
    }

    public var kind: Kind
    /// The file (or the URL given for an in-memory document).
    public var file: String?
    public var line: Int?
    public var column: Int?
    /// libxml2's message, or ours when libxml2 said nothing.
    public var message: String
    /// libxml2's `xmlParserErrors` / `xmlXPathError` code, when it raised one.
    public var libxml2Code: Int32?

    public init(
        kind: Kind, file: String?, line: Int? = nil, column: Int? = nil,
        message: String, libxml2Code: Int32? = nil
    ) {
        self.kind = kind
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.libxml2Code = libxml2Code
    }

    /// `file:line:column: message`, the parts that are known.
    public var description: String {
        var location = file ?? "<memory>"
        if let line { location += ":\(line)" }
        if let column, line != nil { location += ":\(column)" }
        return "\(location): \(message)"
    }
}
