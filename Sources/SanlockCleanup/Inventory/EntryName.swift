/// The name of a directory entry exactly as the kernel returned it. Linux
/// names are bytes, not text: they may hold newlines, `:`, `*` or invalid
/// UTF-8, and every system call gets the original bytes back.
public struct EntryName: Sendable, Hashable, Comparable, CustomStringConvertible {
    let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The name as text when it is valid UTF-8.
    var string: String? { String(validating: bytes, as: UTF8.self) }

    /// A one-line, printable rendering: control characters, backslashes and
    /// bytes that are not UTF-8 are escaped (`\n`, `\\`, `\xff`), so a hostile
    /// name can never forge report lines.
    var escaped: String {
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
    var isAutoLeaseName: Bool {
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
