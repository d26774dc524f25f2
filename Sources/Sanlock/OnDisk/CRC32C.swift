/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as sanlock computes
/// its leader checksums: seeded with ~1 and without a final inversion, so it
/// is not the "standard" CRC-32C value of the same bytes.
package enum CRC32C {
    static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
        return crc
    }

    package static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = ~1) -> UInt32 {
        var crc = seed
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc
    }
}
