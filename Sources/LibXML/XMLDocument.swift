internal import CLibXML2

/// A parsed document. Owns its `xmlDocPtr` and frees it when the last
/// reference (including every `XMLNode` taken from it) is gone.
///
/// Not `Sendable`: libxml2 trees are not safe to read from two threads while
/// anything mutates them, and the nodes handed out point into the tree.
/// Parse in the task that uses the result and keep only Swift values.
public final class XMLDocument {
    let pointer: xmlDocPtr
    /// The file path or URL the document was parsed as (used in messages).
    public let url: String

    private init(pointer: xmlDocPtr, url: String) {
        self.pointer = pointer
        self.url = url
    }

    deinit { xmlFreeDoc(pointer) }

    /// Parses a file: it is refused from its size, then read whole by us and
    /// parsed from memory with `path` as the URL in messages.
    public static func parse(file path: String, limits: XMLParseLimits = .default) throws(XMLError) -> XMLDocument {
        try parse(filePathBytes: Array(path.utf8), displayPath: path, limits: limits)
    }

    /// Like `parse(file:)` for a path that may not be valid UTF-8 (directory
    /// entries are bytes); `displayPath` is what messages show.
    public static func parse(
        filePathBytes: [UInt8], displayPath: String, limits: XMLParseLimits = .default
    ) throws(XMLError) -> XMLDocument {
        let bytes = try BoundedFileReader.read(pathBytes: filePathBytes, displayPath: displayPath, limit: limits.maxBytes)
        return try parse(bytes: bytes, url: displayPath, limits: limits)
    }

    public static func parse(bytes: [UInt8], url: String, limits: XMLParseLimits = .default) throws(XMLError) -> XMLDocument {
        // `withUnsafeBytes` rethrows untyped errors; carry the typed one out.
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(XMLError) -> xmlDocPtr in try SafeParser.parse(raw, url: url, limits: limits) }
        }
        return XMLDocument(pointer: try result.get(), url: url)
    }

    public static func parse(string: String, url: String, limits: XMLParseLimits = .default) throws(XMLError) -> XMLDocument {
        try parse(bytes: Array(string.utf8), url: url, limits: limits)
    }

    /// The document element (a parsed document always has one).
    public var root: XMLNode {
        XMLNode(document: self, pointer: xmlDocGetRootElement(pointer)!)
    }

    /// The element nodes an XPath expression selects, in document order.
    /// Anchor expressions at the root (`/domain/devices/disk`): a `//`
    /// search would also find the nested elements of the same name.
    public func select(_ expression: String) throws(XMLError) -> [XMLNode] {
        guard let context = xmlXPathNewContext(pointer) else {
            throw XMLError(kind: .xpath, file: url, message: "libxml2 could not allocate an XPath context")
        }
        defer { xmlXPathFreeContext(context) }
        // XPath errors go to the context's own handler, never to stderr.
        context.pointee.error = { _, _ in }

        guard let result = xmlXPathEvalExpression(expression, context) else {
            let reported = context.pointee.lastError
            var error = XMLError(libxml2: reported, kind: .xpath)
            error.file = url
            error.message = "XPath \(expression): \(error.message)"
            throw error
        }
        defer { xmlXPathFreeObject(result) }
        guard result.pointee.type == XPATH_NODESET, let set = result.pointee.nodesetval,
              let table = set.pointee.nodeTab else { return [] }
        var nodes: [XMLNode] = []
        nodes.reserveCapacity(Int(set.pointee.nodeNr))
        for index in 0..<Int(set.pointee.nodeNr) {
            if let node = table[index], node.pointee.type == XML_ELEMENT_NODE {
                nodes.append(XMLNode(document: self, pointer: node))
            }
        }
        return nodes
    }
}
