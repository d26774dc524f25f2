internal import CLibXML2

/// libxml2 needs one global initialisation before any thread parses; a
/// global `let` is initialised exactly once, thread-safely.
private let libxml2Initialised: Void = xmlInitParser()

/// Parses a buffer into an `xmlDocPtr` with every network, DTD and entity
/// feature off, and with all diagnostics routed to the parse's own state
/// instead of libxml2's global handlers (which print to stderr and are shared
/// by every thread).
enum SafeParser {
    /// What this parse saw, reached from libxml2's callbacks through the
    /// context's `_private` pointer: callbacks cannot capture, and going
    /// through the context keeps concurrent parses apart without any global.
    final class State {
        let maxDepth: Int
        var firstError: XMLError?
        /// Set when a callback stopped the parser on purpose.
        var refusal: XMLError?

        init(maxDepth: Int) { self.maxDepth = maxDepth }

        static func of(_ context: UnsafeMutableRawPointer?) -> State? {
            guard let context else { return nil }
            let parser = context.assumingMemoryBound(to: xmlParserCtxt.self)
            guard let opaque = parser.pointee._private else { return nil }
            return Unmanaged<State>.fromOpaque(opaque).takeUnretainedValue()
        }
    }

    /// No XML_PARSE_NOENT (entities are never substituted), no DTDLOAD /
    /// DTDATTR / DTDVALID (no DTD is ever fetched or applied), no XINCLUDE and
    /// never HUGE (keeps libxml2's own size, depth and amplification limits).
    /// NONET additionally forbids any network fetch should something still
    /// ask for one. NOERROR/NOWARNING clear the printing SAX error callbacks,
    /// a second guard besides the structured handler below. NOBLANKS and
    /// COMPACT drop indentation text nodes and pack short text (a smaller,
    /// faster tree; nothing here modifies it). BIG_LINES keeps line numbers
    /// past 65535 exact.
    static let options: Int32 = Int32(bitPattern:
        XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue
        | XML_PARSE_NOBLANKS.rawValue | XML_PARSE_COMPACT.rawValue | XML_PARSE_BIG_LINES.rawValue)

    static func parse(_ bytes: UnsafeRawBufferPointer, url: String, limits: XMLParseLimits) throws(XMLError) -> xmlDocPtr {
        _ = libxml2Initialised
        // libxml2 takes an `int` size.
        guard bytes.count <= limits.maxBytes, bytes.count <= Int(Int32.max) else {
            throw XMLError(
                kind: .tooLarge(limit: limits.maxBytes), file: url,
                message: "\(bytes.count) bytes is over the \(limits.maxBytes)-byte limit")
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw XMLError(kind: .malformed, file: url, line: 1, message: "Document is empty")
        }
        guard let parser = xmlNewParserCtxt() else {
            throw XMLError(kind: .malformed, file: url, message: "libxml2 could not allocate a parser context")
        }
        defer { xmlFreeParserCtxt(parser) }

        let state = State(maxDepth: limits.maxDepth)
        parser.pointee._private = Unmanaged.passUnretained(state).toOpaque()
        installHandlers(parser.pointee.sax)

        let document = withExtendedLifetime(state) {
            base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                xmlCtxtReadMemory(parser, $0, Int32(bytes.count), url, nil, options)
            }
        }
        parser.pointee._private = nil

        // A callback that stopped the parser leaves a document that libxml2
        // may still call well-formed: it is a refusal all the same.
        if let refusal = state.refusal {
            if let document { xmlFreeDoc(document) }
            throw refusal
        }
        guard let document else {
            throw state.firstError ?? lastError(of: parser, url: url)
                ?? XMLError(kind: .malformed, file: url, message: "libxml2 rejected the document")
        }
        guard xmlDocGetRootElement(document) != nil else {
            xmlFreeDoc(document)
            throw XMLError(kind: .malformed, file: url, message: "no root element")
        }
        return document
    }

    /// The handlers live in this parser context's own SAX block (allocated
    /// by `xmlNewParserCtxt`), so they affect no other parse.
    private static func installHandlers(_ sax: UnsafeMutablePointer<xmlSAXHandler>) {
        // Structured errors of this context come here and nowhere else:
        // libxml2 then neither prints nor consults the per-thread handlers.
        sax.pointee.serror = { context, error in
            guard let state = State.of(context), let error, state.firstError == nil else { return }
            guard error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
            state.firstError = XMLError(libxml2: error.pointee, kind: .malformed)
        }
        // Called for any <!DOCTYPE ...>, before an internal subset is read:
        // stopping here means no entity is ever declared, let alone expanded
        // or fetched (XXE, billion laughs).
        sax.pointee.internalSubset = { context, _, _, _ in
            guard let context else { return }
            let parser = context.assumingMemoryBound(to: xmlParserCtxt.self)
            if let state = State.of(context), state.refusal == nil {
                state.refusal = XMLError(
                    kind: .doctypeForbidden, file: SafeParser.fileName(of: parser),
                    line: Int(xmlSAX2GetLineNumber(context)),
                    message: "DOCTYPE declarations are not accepted (libvirt never writes one)")
            }
            xmlStopParser(parser)
        }
        // Depth check, then libxml2's own tree builder. The parent elements
        // are on the name stack (`nameNr`), the new one is not yet.
        sax.pointee.startElementNs = { context, localName, prefix, uri, namespaceCount, namespaces,
            attributeCount, defaultedCount, attributes in
            guard let context else { return }
            let parser = context.assumingMemoryBound(to: xmlParserCtxt.self)
            if let state = State.of(context), Int(parser.pointee.nameNr) + 1 > state.maxDepth {
                if state.refusal == nil {
                    state.refusal = XMLError(
                        kind: .tooDeep(limit: state.maxDepth), file: SafeParser.fileName(of: parser),
                        line: Int(xmlSAX2GetLineNumber(context)),
                        message: "elements nest deeper than \(state.maxDepth)")
                }
                xmlStopParser(parser)
                return
            }
            xmlSAX2StartElementNs(
                context, localName, prefix, uri, namespaceCount, namespaces,
                attributeCount, defaultedCount, attributes)
        }
    }

    private static func fileName(of parser: UnsafeMutablePointer<xmlParserCtxt>) -> String? {
        guard let input = parser.pointee.input, let name = input.pointee.filename else { return nil }
        return String(cString: name)
    }

    /// The context's own last error (never the per-thread global one).
    private static func lastError(of parser: UnsafeMutablePointer<xmlParserCtxt>, url: String) -> XMLError? {
        guard let error = xmlCtxtGetLastError(parser), error.pointee.code != 0 else { return nil }
        var result = XMLError(libxml2: error.pointee, kind: .malformed)
        if result.file == nil { result.file = url }
        return result
    }
}

extension XMLError {
    /// Copies what libxml2 reported; its strings belong to libxml2 and are
    /// gone once the context is freed.
    init(libxml2 error: xmlError, kind: Kind) {
        var message = error.message.map { String(cString: $0) } ?? "libxml2 error \(error.code)"
        while message.last == "\n" || message.last == " " { message.removeLast() }
        self.init(
            kind: kind,
            file: error.file.map { String(cString: $0) },
            line: error.line > 0 ? Int(error.line) : nil,
            column: error.int2 > 0 ? Int(error.int2) : nil,
            message: message,
            libxml2Code: error.code)
    }
}
