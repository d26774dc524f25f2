/// Durations on the command line: `0`, `90s`, `30m`, `2h`, `1d`, `1w`, or
/// several together (`1h30m`). A bare number means seconds.
public enum DurationText {
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var text: String
        public var description: String {
            "invalid duration '\(text.escapingControlCharacters())': use a number with a unit s, m, h, d or w (e.g. 30m, 2h, 1h30m, 0), at most 100 years"
        }
    }

    static let unitSeconds: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    /// The longest duration accepted: 100 years (5218 weeks). Anything longer
    /// is a typo, and bounding it keeps every later sum and conversion exact.
    static let maximum: Double = 5218 * 604_800

    public static func seconds(_ text: String) throws(ParseError) -> Double {
        let value = try unboundedSeconds(text)
        guard value <= maximum else { throw ParseError(text: text) }
        return value
    }

    private static func unboundedSeconds(_ text: String) throws(ParseError) -> Double {
        let trimmed = text.trimming(" ")
        guard !trimmed.isEmpty else { throw ParseError(text: text) }
        // Only digits and one '.': Double() alone would also take "1e3",
        // "0x10" and "inf".
        if trimmed.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let plain = Double(trimmed) {
            return plain
        }
        var total = 0.0
        var number = ""
        for character in trimmed {
            if character.isASCII, character.isNumber || character == "." {
                number.append(character)
            } else if let unit = unitSeconds[character], let value = Double(number), value.isFinite {
                total += value * unit
                number = ""
            } else {
                throw ParseError(text: text)
            }
        }
        guard number.isEmpty else { throw ParseError(text: text) }
        return total
    }

    /// `3600` → `1h`, `5400` → `1h30m`, `0` → `0s`. Negative durations are
    /// formatted as their magnitude with a `-`; ones beyond 100 years (an
    /// mtime far in the past) as a number of years.
    public static func format(_ seconds: Double) -> String {
        guard seconds.isFinite else { return seconds.isNaN ? "?" : seconds > 0 ? "forever" : "-forever" }
        if seconds < 0 { return "-" + format(-seconds) }
        if seconds > maximum {
            let years = (seconds / 31_557_600).rounded(.down)
            return Int(exactly: years).map { "\($0)y" } ?? "forever"
        }
        var remaining = Int(seconds.rounded())
        if remaining == 0 { return "0s" }
        var parts = ""
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] where remaining >= size {
            parts += "\(remaining / size)\(unit)"
            remaining %= size
        }
        return parts
    }
}

extension String {
    /// The string without `character` at either end.
    func trimming(_ character: Character) -> String {
        var slice = Substring(self)
        while slice.first == character { slice.removeFirst() }
        while slice.last == character { slice.removeLast() }
        return String(slice)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (for reports and metrics).
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
