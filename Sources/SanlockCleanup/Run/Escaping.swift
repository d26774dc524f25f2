/// Every string read from a file, a flag or the daemon is printed through
/// this: nothing read can forge a report line or steer a terminal.
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
