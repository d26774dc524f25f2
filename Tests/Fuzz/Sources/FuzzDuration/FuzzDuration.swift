// Duration text (--min-age): DurationText.seconds, and DurationText.format
// of what it returns and of arbitrary Doubles (the report formats ages).
//
// Input: the whole input is the text; its first 8 bytes, read as a Double's
// bit pattern, are also formatted.
import FuzzSupport
@testable import SanlockCleanup

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDuration(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var reader = FuzzReader(start, count)
    let text = String(decoding: reader.bytes, as: UTF8.self)

    do {
        let seconds = try DurationText.seconds(text)
        invariant(seconds.isFinite && seconds >= 0, "'\(text)' parsed to \(seconds)")
        let formatted = DurationText.format(seconds)
        checkShape(formatted, of: seconds)
        // What format prints must read back as the same (rounded) duration;
        // past 2^52 s the sum of units is no longer exact in a Double.
        if seconds < 0x1p52 {
            let again = try? DurationText.seconds(formatted)
            invariant(again == seconds.rounded(), "'\(text)' → \(seconds) → '\(formatted)' → \(String(describing: again))")
        }
    } catch {
        _ = error.description
    }

    let value = Double(bitPattern: reader.integer(UInt64.self))
    let formatted = DurationText.format(value)
    invariant(!formatted.isEmpty, "format(\(value)) is empty")
    if value.isFinite { checkShape(formatted, of: value) }
    return 0
}

/// `0s`, or units in decreasing order (`1d2h3m4s`), each at most once;
/// past DurationText.maximum a number of years (`250y`) or `forever`; a
/// negative duration is its magnitude's text after a `-`.
private func checkShape(_ formatted: String, of seconds: Double) {
    if seconds < 0 {
        invariant(formatted.hasPrefix("-"), "format(\(seconds)) = '\(formatted)' has no '-'")
        checkShape(String(formatted.dropFirst()), of: -seconds)
        return
    }
    if seconds > DurationText.maximum {
        let years = formatted.dropLast()
        invariant(formatted == "forever" || (formatted.last == "y" && !years.isEmpty && years.allSatisfy(\.isASCII) && Int(years) != nil),
                  "format(\(seconds)) = '\(formatted)'")
        return
    }
    invariant(!formatted.isEmpty, "format(\(seconds)) is empty")
    var units = Substring("dhms")
    var digits = 0
    for character in formatted {
        if character.isASCII, character.isNumber {
            digits += 1
        } else if digits > 0, let position = units.firstIndex(of: character) {
            units = units[units.index(after: position)...]
            digits = 0
        } else {
            invariant(false, "format(\(seconds)) = '\(formatted)'")
        }
    }
    invariant(digits == 0, "format(\(seconds)) = '\(formatted)' ends without a unit")
}
