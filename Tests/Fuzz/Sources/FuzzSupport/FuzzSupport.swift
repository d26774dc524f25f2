/// Helpers shared by the fuzz targets: reading structured values out of
/// libFuzzer's bytes, making sanlock checksums valid, and failing loudly.

/// Reads values from the front of the fuzz input. Past the end every read
/// yields zeros, so any input decodes to something and short inputs stay
/// meaningful to the fuzzer.
public struct FuzzReader {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public init(_ start: UnsafeRawPointer?, _ count: Int) {
        self.init(Array(UnsafeRawBufferPointer(start: start, count: count)))
    }

    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func byte() -> UInt8 {
        defer { offset += 1 }
        return offset < bytes.count ? bytes[offset] : 0
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// Little-endian, like every sanlock field.
    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for index in 0..<(T.bitWidth / 8) { value |= T(byte()) << (8 * index) }
        return value
    }

    public mutating func take(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in byte() }
    }

    /// One length byte (reduced modulo `maxLength + 1`), then that many bytes.
    public mutating func lengthPrefixed(maxLength: Int) -> [UInt8] {
        take(Int(byte()) % (maxLength + 1))
    }

    /// Text as a Swift `String`: invalid UTF-8 becomes U+FFFD, as any
    /// string the tool got from libxml2 or a lossy decode would.
    public mutating func string(maxLength: Int) -> String {
        String(decoding: lengthPrefixed(maxLength: maxLength), as: UTF8.self)
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = max(offset, bytes.count) }
        return offset < bytes.count ? Array(bytes[offset...]) : []
    }
}

/// Traps with a message libFuzzer reports as a crash (and saves the input).
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// sanlock's leader checksum (CRC-32C, seed ~1, no final inversion) over the
/// first 168 bytes, stored at byte 168. Mutated leaders almost never carry a
/// valid one, and every interesting decision sits behind that check, so the
/// targets also try each input with its checksums made valid.
public enum LeaderChecksum {
    public static let coveredLength = 168

    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func compute(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = ~1
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc
    }

    /// Rewrites the checksum of the record at `offset`, if it fits.
    public static func fix(_ bytes: inout [UInt8], at offset: Int = 0) {
        guard offset + coveredLength + 4 <= bytes.count else { return }
        let crc = compute(bytes[offset..<(offset + coveredLength)])
        for index in 0..<4 { bytes[offset + coveredLength + index] = UInt8(truncatingIfNeeded: crc >> (8 * index)) }
    }

    /// Rewrites the checksum at the start of every `sectorSize`-byte sector.
    public static func fixAll(_ bytes: inout [UInt8], sectorSize: Int) {
        for offset in stride(from: 0, to: bytes.count, by: sectorSize) { fix(&bytes, at: offset) }
    }
}

/// A Unicode scalar a terminal or log reader treats as a control: C0, DEL
/// and C1 (general category Cc), and the format characters that break lines
/// or reorder text (line and paragraph separators, bidi embeddings,
/// overrides and isolates).
public func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
        || (0x2028...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
}
