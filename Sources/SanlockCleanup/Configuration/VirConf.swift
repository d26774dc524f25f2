/// A value in a virConf file: libvirt's configuration syntax, a small subset
/// of Python (`name = value` statements).
enum VirConfValue: Sendable, Hashable {
    case integer(Int64)
    case string(String)
    case list([VirConfValue])
}

/// A parse failure, located the way libvirt locates its own (`file:line: problem`).
public struct VirConfError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int
    var message: String

    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String { "\(path):\(line): \(message)" }
}

/// The statements of a virConf file, in file order.
///
/// The parser accepts what libvirt's `virconf.c` accepts (without the VMX and
/// LXC dialects) and rejects what it rejects, with a few deliberate
/// differences, all towards clearer errors or safety:
/// - integers that do not fit in 64 bits are an error (libvirt silently wraps);
/// - unterminated strings and lists that run to the end of the file are
///   reported at the line where they open (libvirt reports the last line);
/// - a file of only blanks and newlines is empty (libvirt reports "expecting
///   a name"), and `""""""` is an empty triple-quoted string even at the very
///   end of a file (libvirt needs 7 bytes left to see a triple quote);
/// - strings must be valid UTF-8;
/// - lists nest at most `maximumListDepth` deep (libvirt recurses without a
///   bound; no setting libvirt reads is a list of lists).
struct VirConf: Sendable {
    /// Deepest list nesting accepted: the parser recurses once per level, so
    /// a file of `[[[[…` must not exhaust the stack.
    static let maximumListDepth = 32

    struct Entry: Sendable, Hashable {
        public var name: String
        public var value: VirConfValue
        /// Where the statement's name starts, counting from 1.
        public var line: Int

        public init(name: String, value: VirConfValue, line: Int) {
            self.name = name
            self.value = value
            self.line = line
        }
    }

    /// The file the entries came from, as given to `parse`.
    public var path: String
    /// Every statement, repeated names included.
    var entries: [Entry]

    public init(path: String, entries: [Entry]) {
        self.path = path
        self.entries = entries
    }

    /// The first statement with this name: libvirt reads the first and
    /// ignores later repetitions.
    public func entry(for key: String) -> Entry? {
        entries.first { $0.name == key }
    }

    public func value(for key: String) -> VirConfValue? {
        entry(for: key)?.value
    }

    public func line(of key: String) -> Int? {
        entry(for: key)?.line
    }

    static func parse(_ text: String, path: String) throws(VirConfError) -> VirConf {
        try parse(bytes: Array(text.utf8), path: path)
    }

    /// Parses the raw bytes of a file: libvirt works on bytes, so a file that
    /// is not valid UTF-8 outside its strings still parses the same way.
    static func parse(bytes: [UInt8], path: String) throws(VirConfError) -> VirConf {
        var parser = VirConfParser(bytes: bytes, path: path)
        return VirConf(path: path, entries: try parser.parseFile())
    }
}

private enum Byte {
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let hash = UInt8(ascii: "#")
    static let equals = UInt8(ascii: "=")
    static let semicolon = UInt8(ascii: ";")
    static let comma = UInt8(ascii: ",")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let doubleQuote = UInt8(ascii: "\"")
    static let singleQuote = UInt8(ascii: "'")
    static let underscore = UInt8(ascii: "_")
    static let plus = UInt8(ascii: "+")
    static let minus = UInt8(ascii: "-")
    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    static func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == tab }
    /// libvirt ends lines, strings and comments at either byte, but counts
    /// lines by `\n` only: CRLF files work and keep their line numbers.
    static func isEndOfLine(_ byte: UInt8) -> Bool { byte == newline || byte == carriageReturn }
    static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
    static func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }
}

private struct VirConfParser {
    let bytes: [UInt8]
    let path: String
    var index = 0
    var line = 1

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    private var atEnd: Bool { index >= bytes.count }
    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func peek(_ offset: Int) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    private func error(_ message: String, line: Int? = nil) -> VirConfError {
        VirConfError(path: path, line: line ?? self.line, message: message)
    }

    mutating func parseFile() throws(VirConfError) -> [VirConf.Entry] {
        var entries: [VirConf.Entry] = []
        while !atEnd {
            let entry = try parseStatement()
            if let entry { entries.append(entry) }
            try parseSeparator(after: entry)
        }
        return entries
    }

    private mutating func skipBlanks() {
        while let byte = current, Byte.isBlank(byte) { index += 1 }
    }

    private mutating func skipBlanksAndNewlines() {
        while let byte = current, Byte.isBlank(byte) || Byte.isEndOfLine(byte) {
            if byte == Byte.newline { line += 1 }
            index += 1
        }
    }

    private mutating func skipToEndOfLine() {
        index = bytes[index...].firstIndex(where: Byte.isEndOfLine) ?? bytes.count
    }

    /// One statement, or nil for a comment line.
    private mutating func parseStatement() throws(VirConfError) -> VirConf.Entry? {
        skipBlanksAndNewlines()
        guard let first = current else { return nil }
        if first == Byte.hash {
            skipToEndOfLine()
            return nil
        }
        let nameLine = line
        guard Byte.isLetter(first) else {
            throw error("expected a setting name (a letter, then letters, digits or '_'), found \(describeCurrent())")
        }
        let nameStart = index
        while let byte = current, Byte.isLetter(byte) || Byte.isDigit(byte) || byte == Byte.underscore {
            index += 1
        }
        // Only ASCII letters, digits and '_' were taken: always valid UTF-8.
        let name = String(decoding: bytes[nameStart..<index], as: UTF8.self)
        skipBlanks()
        guard current == Byte.equals else {
            throw error("expected '=' after '\(name)', found \(describeCurrent())")
        }
        index += 1
        skipBlanks()
        let value = try parseValue(inListOpenedOn: nil, depth: 0)
        skipBlanks()
        if current == Byte.hash { skipToEndOfLine() }
        return VirConf.Entry(name: name, value: value, line: nameLine)
    }

    private mutating func parseSeparator(after entry: VirConf.Entry?) throws(VirConfError) {
        skipBlanks()
        guard let byte = current else { return }
        if Byte.isEndOfLine(byte) {
            skipBlanksAndNewlines()
        } else if byte == Byte.semicolon {
            index += 1
            skipBlanksAndNewlines()
        } else {
            let after = entry.map { " after the value of '\($0.name)'" } ?? ""
            throw error("expected ';' or a new line\(after), found \(describeCurrent())")
        }
    }

    /// `listLine` is the line of the innermost enclosing `[`, if any;
    /// `depth` the number of enclosing lists.
    private mutating func parseValue(inListOpenedOn listLine: Int?, depth: Int) throws(VirConfError) -> VirConfValue {
        skipBlanks()
        guard let byte = current, !Byte.isEndOfLine(byte) else {
            if let listLine { throw unclosedList(openedOn: listLine) }
            throw error("expected a value after '='")
        }
        if byte == Byte.doubleQuote || byte == Byte.singleQuote {
            return .string(try parseString())
        }
        if byte == Byte.openBracket {
            guard depth < VirConf.maximumListDepth else {
                throw error("lists nest deeper than \(VirConf.maximumListDepth) levels")
            }
            return .list(try parseList(depth: depth + 1))
        }
        if byte == Byte.plus || byte == Byte.minus || Byte.isDigit(byte) {
            return .integer(try parseInteger())
        }
        if byte == Byte.hash, listLine != nil {
            throw error("comments are not allowed inside a list (libvirt rejects them too)")
        }
        let place = listLine == nil ? "after '='" : "in the list"
        throw error("expected a value \(place) (a number, a quoted string or a list), found \(describeCurrent())")
    }

    private mutating func parseInteger() throws(VirConfError) -> Int64 {
        let start = index
        let negative = current == Byte.minus
        if current == Byte.plus || current == Byte.minus { index += 1 }
        guard let first = current, Byte.isDigit(first) else {
            throw error("expected digits after '\(negative ? "-" : "+")', found \(describeCurrent())")
        }
        // Accumulate the magnitude unsigned so that Int64.min is reachable.
        var magnitude: UInt64 = 0
        var overflow = false
        while let byte = current, Byte.isDigit(byte) {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
            magnitude = sum
            overflow = overflow || o1 || o2
            index += 1
        }
        let literal = String(decoding: bytes[start..<index], as: UTF8.self)
        let limit: UInt64 = negative ? UInt64(Int64.max) + 1 : UInt64(Int64.max)
        guard !overflow, magnitude <= limit else {
            throw error("integer \(literal) is out of range \(Int64.min)...\(Int64.max)")
        }
        if negative {
            return magnitude == limit ? Int64.min : -Int64(magnitude)
        }
        return Int64(magnitude)
    }

    private mutating func parseString() throws(VirConfError) -> String {
        let openLine = line
        let quote = bytes[index]
        if quote == Byte.doubleQuote, peek(1) == Byte.doubleQuote, peek(2) == Byte.doubleQuote {
            index += 3
            let start = index
            while index + 2 < bytes.count,
                  !(bytes[index] == Byte.doubleQuote && bytes[index + 1] == Byte.doubleQuote
                      && bytes[index + 2] == Byte.doubleQuote) {
                if bytes[index] == Byte.newline { line += 1 }
                index += 1
            }
            guard index + 2 < bytes.count else {
                throw error("unterminated string: no closing \"\"\" before the end of the file", line: openLine)
            }
            let content = bytes[start..<index]
            index += 3
            return try decode(content, line: openLine)
        }
        index += 1
        let start = index
        while let byte = current, byte != quote, !Byte.isEndOfLine(byte) { index += 1 }
        guard current == quote else {
            let quoteText = quote == Byte.doubleQuote ? "\"" : "'"
            throw error("unterminated string: no closing \(quoteText) before the end of the line")
        }
        let content = bytes[start..<index]
        index += 1
        return try decode(content, line: openLine)
    }

    private func decode(_ content: ArraySlice<UInt8>, line: Int) throws(VirConfError) -> String {
        guard let string = String(validating: content, as: UTF8.self) else {
            throw error("string is not valid UTF-8", line: line)
        }
        return string
    }

    private mutating func parseList(depth: Int) throws(VirConfError) -> [VirConfValue] {
        let openLine = line
        index += 1
        var items: [VirConfValue] = []
        skipBlanksAndNewlines()
        if current == Byte.closeBracket {
            index += 1
            return items
        }
        while true {
            items.append(try parseValue(inListOpenedOn: openLine, depth: depth))
            skipBlanksAndNewlines()
            guard let byte = current else { throw unclosedList(openedOn: openLine) }
            if byte == Byte.closeBracket {
                index += 1
                return items
            }
            if byte == Byte.hash {
                throw error("comments are not allowed inside a list (libvirt rejects them too)")
            }
            guard byte == Byte.comma else {
                throw error("expected ',' or ']' in the list, found \(describeCurrent())")
            }
            index += 1
            skipBlanksAndNewlines()
            // A trailing comma before ']' is allowed.
            if current == Byte.closeBracket {
                index += 1
                return items
            }
        }
    }

    private func unclosedList(openedOn openLine: Int) -> VirConfError {
        error("unterminated list: no closing ']' before the end of the file", line: openLine)
    }

    /// What stands at the current position, for messages.
    private func describeCurrent() -> String {
        guard let byte = current else { return "the end of the file" }
        if Byte.isEndOfLine(byte) { return "the end of the line" }
        if byte == Byte.space { return "a space" }
        if byte == Byte.tab { return "a tab" }
        if index == 0, bytes.starts(with: Byte.byteOrderMark) {
            return "a UTF-8 byte order mark (libvirt rejects it too; save the file without it)"
        }
        if (0x21...0x7E).contains(byte) { return "'\(Character(Unicode.Scalar(byte)))'" }
        // A multi-byte character: show it whole when it is valid UTF-8.
        let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
        if length > 1, index + length <= bytes.count,
           let text = String(validating: bytes[index..<index + length], as: UTF8.self),
           let scalar = text.unicodeScalars.first {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "'\(text)' (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))"
        }
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
    }
}
