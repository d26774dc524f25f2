/// The name of a directory entry exactly as the kernel returned it. Linux
/// names are bytes, not text: they may hold newlines, `:`, `*` or invalid
/// UTF-8, and every system call gets the original bytes back.
public struct EntryName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The name as text when it is valid UTF-8.
    public var string: String? { String(validating: bytes, as: UTF8.self) }

    /// A one-line, printable rendering: control characters, backslashes and
    /// bytes that are not UTF-8 are escaped (`\n`, `\\`, `\xff`), so a hostile
    /// name can never forge report lines.
    public var escaped: String {
        guard let text = string else {
            return bytes.map { byte in
                (0x20..<0x7F).contains(byte) && byte != UInt8(ascii: "\\")
                    ? String(UnicodeScalar(byte)) : Self.hexEscape(byte)
            }.joined()
        }
        return text.escapingControlCharacters(backslash: true)
    }

    public var description: String { escaped }

    /// libvirt names auto leases by the MD5 of the disk path: 32 lowercase hex.
    public var isAutoLeaseName: Bool {
        bytes.count == 32 && bytes.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    public static func < (lhs: EntryName, rhs: EntryName) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    private static func hexEscape(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16)
        return "\\x" + (hex.count == 1 ? "0" + hex : hex)
    }
}

extension String {
    /// The text with every character that could forge a line or move a
    /// terminal's cursor escaped: C0 and C1 controls, DEL, and the Unicode
    /// format characters that reorder or hide text (bidi overrides and
    /// isolates, zero-width characters). `\n`, `\t` and `\r` read as such,
    /// the others as `\u{1b}`. With `backslash`, `\` becomes `\\` too, so
    /// that the rendering is unambiguous (names); without, a message that
    /// embeds already escaped names is not escaped twice.
    public func escapingControlCharacters(backslash: Bool = false) -> String {
        var result = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\\" where backslash: result += "\\\\"
            case _ where Self.mustEscape(scalar):
                result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F, 0x80..<0xA0: true
        // Zero-width and direction marks, the line and paragraph separators
        // (some terminals and log viewers break lines on them), bidi
        // embeddings, overrides and isolates, the BOM / zero-width no-break
        // space.
        case 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2064, 0x2066...0x2069, 0xFEFF: true
        default: false
        }
    }
}
