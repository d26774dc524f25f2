/// Durations on the command line: `0`, `90s`, `30m`, `2h`, `1d`, `1w`, or
/// several together (`1h30m`). A bare number means seconds.
public enum DurationText {
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var text: String
        public var description: String {
            "invalid duration '\(text)': use a number with a unit s, m, h, d or w (e.g. 30m, 2h, 1h30m, 0)"
        }
    }

    static let unitSeconds: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    public static func seconds(_ text: String) throws(ParseError) -> Double {
        let trimmed = text.trimming(" ")
        guard !trimmed.isEmpty else { throw ParseError(text: text) }
        if let plain = Double(trimmed), plain >= 0, plain.isFinite { return plain }
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

    /// `3600` → `1h`, `5400` → `1h30m`, `0` → `0s`.
    public static func format(_ seconds: Double) -> String {
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
